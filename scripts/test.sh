#!/usr/bin/env bash
# Install everything the tests need (Python packages into .venv; Debian packages and n8n through
# scripts/install-test-deps.sh), then run the whole test suite.
# Extra arguments go to pytest (e.g. scripts/test.sh -k webhooks).
# KYC_SKIP_SYSTEM_DEPS=1 skips the Debian/n8n step (their tests then skip with a reason).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${KYC_SKIP_SYSTEM_DEPS:-0}" != 1 ]; then
  scripts/install-test-deps.sh
fi
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'
exec .venv/bin/python -m pytest "$@"
