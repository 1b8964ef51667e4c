#!/usr/bin/env bash
# Issue 25, item 4: capacity by measurement. Today's size (small_keys) and a wider one (medium_keys: convs 24/24/48,
# dense 384, LSTMs 128, dropout 0.2; 2.3x the compute) trained from scratch on the same corpus, side by side, one CPU
# thread each (the same CPU budget), with snapshots every STEPS_SMALL / STEPS_MEDIUM steps; then real_dev for every
# snapshot not scored yet, appended to runs/capacity/CONFIG/curve.csv (note F1 per CPU-hour: steps x seconds per step,
# from steps.log).
#   bash scripts/capacity.sh [SHARED_DATA] [MINUTES]
# Runs for MINUTES of wall time (default 90), then stops both runs at their last checkpoint (every 100 steps), scores
# the snapshots and saves each run's weights (without Adam's state), step and curve in models/training/capacity/CONFIG.
# Re-running resumes both runs from their checkpoints; in a fresh clone, from those saved weights (--init-model with
# --initial-step: the step count and the schedule go on, Adam's moments start anew).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data}
MINUTES=${2:-90}
PY=.venv/bin/python
CORPUS=data/generated/capacity
OUT=runs/capacity
mkdir -p "$OUT"
if [ ! -f "$CORPUS/.done" ]; then
    $PY -m piano_transcription.corpus "$DATA" "$CORPUS" --train 2400 --validation 32 --mix maps=0.4,sfz=0.6 --seed 5 \
        --levers detune,rooms,bass
    touch "$CORPUS/.done"
fi
pids=()
for run in small_keys:600 medium_keys:250; do
    config=${run%%:*}; keep=${run##*:}
    init=()
    saved=models/training/capacity/$config
    if [ ! -f "$OUT/$config/checkpoint.keras" ] && [ -f "$saved/model.keras" ]; then  # a later session
        init=(--init-model "$saved/model.keras" --initial-step "$(cat "$saved/step.txt")")
        mkdir -p "$OUT/$config" && cp "$saved/curve.csv" "$OUT/$config/curve.csv" 2>/dev/null || true
    fi
    $PY -m piano_transcription.training.train "$CORPUS" "$OUT/$config" --config "$config" --steps 100000 \
        --batch-size 8 --crop-seconds 10 --steps-per-epoch 500 --save-every 100 --validation-steps 2 \
        --keep-every "$keep" --threads 1 --seed 0 "${init[@]}" >> "$OUT/$config.log" 2>&1 &
    pids+=($!)
done
sleep $((MINUTES * 60)) || true
kill "${pids[@]}" 2>/dev/null || true
wait || true
for config in small_keys medium_keys; do
    todo=()
    for snap in "$OUT/$config"/snapshots/step_*.keras; do
        [ -f "$snap" ] || continue
        grep -q "$(basename "$snap")" "$OUT/$config/curve.csv" 2>/dev/null || todo+=("$snap")
    done
    if [ ${#todo[@]} -gt 0 ]; then
        $PY benchmarks/real_dev.py --data "$DATA/maps/real_dev" --model "${todo[@]}" --csv "$OUT/$config/curve.csv"
    fi
done
for config in small_keys medium_keys; do  # what the next session goes on from
    [ -f "$OUT/$config/checkpoint.keras" ] || continue
    mkdir -p "models/training/capacity/$config"
    $PY - "$OUT/$config" "models/training/capacity/$config" <<'PY'
import sys
from pathlib import Path

import keras

from piano_transcription.model import custom_objects, load_model, save_model
from piano_transcription.training.train import loss_objects

run, saved = Path(sys.argv[1]), Path(sys.argv[2])
checkpoint = keras.saving.load_model(str(run / "checkpoint.keras"), custom_objects={**custom_objects(), **loss_objects()})
step = int(checkpoint.optimizer.iterations.numpy())
save_model(load_model(run / "checkpoint.keras"), saved / "model.keras")  # weights only: compile=False drops Adam
(saved / "step.txt").write_text(f"{step}\n")
print(f"{run}: step {step} saved in {saved}")
PY
    for f in curve.csv log.csv config.json; do [ -f "$OUT/$config/$f" ] && cp "$OUT/$config/$f" "models/training/capacity/$config/"; done
    grep "^step" "$OUT/$config.log" > "models/training/capacity/$config/steps.log" || true
done
