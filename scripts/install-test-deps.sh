#!/usr/bin/env bash
# Install what the test suite needs beyond Python packages (idempotent; fast when all is there):
#   - Debian packages for the WordPress plugin and browser tests: Chromium, PHP, WordPress, PHPUnit,
#     php-codesniffer, MariaDB (the plugin tests run their own server on a socket), gettext, openssl,
#     php-zip (WordPress writes personal-data exports as zip files);
#   - node 24 and the pinned n8n 2.41.1, cached outside the repository (scripts/n8n-install.sh).
# Debian packages need root; without it, missing packages are reported and the tests that need them
# skip with a reason (or fail under CI=true).
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(chromium php-cli php-mysql php-curl php-xml php-mbstring php-intl php-zip wordpress
  wordpress-theme-twentytwentythree phpunit php-codesniffer mariadb-server mariadb-client nginx
  gettext openssl)

install_packages() {
  local missing=() pkg own_policy=0
  for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  if [ ${#missing[@]} -eq 0 ]; then echo "install-test-deps: Debian packages already installed"; return 0; fi
  if [ "$(id -u)" != 0 ]; then
    echo "install-test-deps: not root, cannot install: ${missing[*]} (their tests will skip)" >&2
    return 0
  fi
  echo "install-test-deps: installing ${missing[*]}"
  if [ ! -e /usr/sbin/policy-rc.d ]; then   # apt must start no services (nginx, MariaDB, php-fpm)
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; own_policy=1
  fi
  apt-get update -qq
  # nginx is named so that `wordpress` (depends: apache2 | httpd) does not pull apache2; it is never started.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
  if [ "$own_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
}

time install_packages
# node 24 + n8n: ~6 min cold, instant when the cache outside the repository is warm.
echo "install-test-deps: n8n in $(scripts/n8n-home.sh)"
time scripts/n8n-install.sh >/dev/null
