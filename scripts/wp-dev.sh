#!/usr/bin/env bash
# Start a local bridge, the Persona stand-in and the test WordPress with the plugin from wp-plugin/
# (as the tests do: Debian's wordpress, php-cli and MariaDB must be installed), and keep them
# running until Ctrl-C. For trying the plugin by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python tests/wp/devsite.py
