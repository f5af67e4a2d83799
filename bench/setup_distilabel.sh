#!/usr/bin/env bash
# Creates bench/.venv-distilabel with distilabel 1.5.3, the reference the benchmark compares
# against. Separate from the project's environment so that distilabel's pins never touch it.
# Safe to run again: an existing venv with the right version is kept.
set -euo pipefail
cd "$(dirname "$0")"
VENV=.venv-distilabel
PY="${PYTHON:-python3}"
if [ -x "$VENV/bin/python" ] \
    && "$VENV/bin/python" -c "import distilabel.pipeline, distilabel as d, sys; sys.exit(d.__version__ != '1.5.3')" \
    2>/dev/null; then
  echo "distilabel 1.5.3 already in bench/$VENV"
  exit 0
fi
rm -rf "$VENV"
"$PY" -m venv "$VENV"
# distilabel builds its Distiset through `datasets`; the pins in distilabel-constraints.txt
# keep the versions of its time. Nothing here reaches the Hugging Face Hub: the benchmark
# runs with HF_HUB_OFFLINE=1 and telemetry off.
LOG="$(mktemp)"
if ! "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
    -c distilabel-constraints.txt "distilabel==1.5.3" datasets requests >"$LOG" 2>&1; then
  cat "$LOG"
  exit 1
fi
rm -f "$LOG"
# Smoke test: a two-step pipeline, offline, in a throw-away cache.
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 DISTILABEL_CACHE_DIR="$TMP" \
  "$VENV/bin/python" - <<'PY'
from distilabel.pipeline import Pipeline
from distilabel.steps import LoadDataFromDicts, StepInput, step


@step(inputs=["text"], outputs=["n"])
def Count(inputs: StepInput):
    for row in inputs:
        row["n"] = len(row["text"])
    yield inputs


with Pipeline(name="smoke") as pipeline:
    LoadDataFromDicts(data=[{"text": "a" * i} for i in range(10)]) >> Count()
ds = pipeline.run(use_cache=False)
rows = ds["default"]["train"]
assert sorted(rows["n"]) == list(range(10)), rows["n"]
print("distilabel", __import__("distilabel").__version__, "works offline")
PY
