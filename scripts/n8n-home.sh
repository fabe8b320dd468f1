#!/usr/bin/env bash
# Print the folder that holds (or will hold) the pinned n8n install: KYC_N8N_HOME when set, else
# /var/cache/kyc-bridge/n8n when that can be written (CI runs as root), else
# ~/.cache/kyc-bridge/n8n. Never inside the repository. tests/n8n_runtime.py uses the same rule.
set -euo pipefail
if [[ -n "${KYC_N8N_HOME:-}" ]]; then
  echo "$KYC_N8N_HOME"
elif mkdir -p /var/cache/kyc-bridge/n8n 2>/dev/null && [[ -w /var/cache/kyc-bridge/n8n ]]; then
  echo /var/cache/kyc-bridge/n8n
else
  echo "${XDG_CACHE_HOME:-$HOME/.cache}/kyc-bridge/n8n"
fi
