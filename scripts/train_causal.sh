#!/usr/bin/env bash
# The recipe of the live low-latency model (piano_transcription/models/causal.keras: piano-transcribe live --mode
# causal), end to end, resumable (re-running continues the run from runs/causal/checkpoint.keras):
#   bash scripts/train_causal.sh [SHARED_DATA] [STEPS]
# 1. A corpus like the shipped model's last one (MAPS's software pianos and MAESTRO MIDI through the sampled grands,
#    rooms, microphones; another seed): 1200 excerpts of 20 s, one worker.
# 2. The starting point: the shipped model with each bidirectional LSTM turned into a forward LSTM of twice the units
#    (the forward direction copied, its backward direction silenced; piano_transcription/training/causal.py).
# 3. Fine-tuning every weight: batch 8 x 10 s crops, Adam 5e-4 with a cosine decay over STEPS, one CPU thread in the
#    background (nice), snapshots every 250 steps; the shipped snapshot is picked on real_dev (validation only).
# 4. The onset threshold (rendered validation split), the shipped files, the TFLite step model, the live benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data}
STEPS=${2:-2000}
PY=${PY:-.venv/bin/python}
export OMP_NUM_THREADS=1 TF_CPP_MIN_LOG_LEVEL=2

$PY -m piano_transcription.corpus "$DATA" data/generated/corpus_causal --train 1200 --validation 32 \
    --mix maps=0.4,sfz=0.6 --workers 1 --seed 2
[ -f runs/causal_init.keras ] || $PY -m piano_transcription.training.causal init \
    piano_transcription/models/default.keras runs/causal_init.keras
nice -n 10 $PY -m piano_transcription.training.train data/generated/corpus_causal runs/causal --config small_causal \
    --init-model runs/causal_init.keras --steps "$STEPS" --batch-size 8 --crop-seconds 10 --learning-rate 5e-4 \
    --cosine-decay --steps-per-epoch 250 --save-every 50 --validation-steps 4 --keep-every 250 --threads 1
# The onset threshold chosen on the corpus's rendered validation split (frame 0.3 and offset 0.5 as the shipped
# model's), then each snapshot measured on real_dev (validation only: it picks the snapshot, nothing else):
SNAPSHOT=${SNAPSHOT:-runs/causal/snapshots/step_$(printf %06d "$STEPS").keras}
$PY -m piano_transcription.training.causal thresholds "$SNAPSHOT" data/generated/corpus_causal
$PY benchmarks/real_dev.py --data "$DATA/maps/real_dev" --model "$SNAPSHOT"
# Shipped: the snapshot without Adam's state, its thresholds, its TFLite step model; then the live benchmark
MODELS=piano_transcription/models
$PY -c "from piano_transcription.model import load_model, save_model; \
save_model(load_model('$SNAPSHOT'), '$MODELS/causal.keras')"
cp "${SNAPSHOT%.keras}.thresholds.json" $MODELS/causal.thresholds.json
$PY -c "from piano_transcription.live.causal import export_causal_tflite; \
export_causal_tflite('$MODELS/causal.keras', '$MODELS/causal.tflite')"
$PY benchmarks/live_latency.py --modes causal causal-tflite
