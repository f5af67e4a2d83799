#!/usr/bin/env bash
# One-time set-up on a fresh Debian machine (run as root): system packages, then the
# package itself with every extra the tests use. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v dot >/dev/null || ! command -v chromium >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends graphviz chromium fonts-dejavu-core >/dev/null
fi
python3 -m pip install -q --disable-pip-version-check -e ".[notebook,llm,ray,dev]"
