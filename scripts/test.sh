#!/usr/bin/env bash
# The whole test suite, then the linters and the layer contracts.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pytest -q "$@"
ruff check distilabel_nb tests bench
mypy
lint-imports
