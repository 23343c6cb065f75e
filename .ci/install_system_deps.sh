#!/usr/bin/env bash
# System packages the CI needs beyond the Python venv (Debian/Ubuntu, as root; idempotent):
#   slurm-wlm munge  - a real one-node SLURM cluster for tests/test_slurm.py (tools/slurm_cluster.sh starts it)
#   chromium         - headless browser for the docs-site test (no display needed: run with --headless)
# Only packages not yet installed are fetched; a second run does nothing.
set -euo pipefail
PACKAGES=(slurm-wlm munge chromium)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then echo "system deps: all installed (${PACKAGES[*]})"; exit 0; fi
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y --no-install-recommends "${missing[@]}"
echo "system deps: installed ${missing[*]}"
