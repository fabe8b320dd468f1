#!/usr/bin/env bash
# Install kyc-bridge into .venv and run the demo on SQLite (Ctrl-C stops it).
# Extra arguments go to `kyc-bridge demo` (e.g. scripts/demo.sh --port 8080).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e .
exec .venv/bin/kyc-bridge demo "$@"
