#!/usr/bin/env bash
# Install kyc-bridge and its test dependencies into .venv, then run the whole test suite.
# Extra arguments go to pytest (e.g. scripts/test.sh -k webhooks).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'
exec .venv/bin/python -m pytest "$@"
