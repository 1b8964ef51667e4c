#!/usr/bin/env bash
# Set up (idempotent) and transcribe the bundled demo recording with the shipped model:
# writes output/demo/demo.mid and output/demo/demo.png and prints the note F1 against the true MIDI.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export TF_CPP_MIN_LOG_LEVEL=2 MPLBACKEND=Agg
exec .venv/bin/piano-transcribe demo -o output/demo --overwrite "$@"
