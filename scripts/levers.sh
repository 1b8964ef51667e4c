#!/usr/bin/env bash
# Issue 25's ablation of the training-audio levers, each measured alone on the real recordings:
#   bash scripts/levers.sh [SHARED_DATA] [EXCERPTS] [STEPS] [RUNS...]
# For each run: a corpus of EXCERPTS training excerpts (the stage-3/4 mix, maps=0.4,sfz=0.6, seed 2: pieces and
# places the shipped model never trained on) with one lever of piano_transcription.corpus.augment switched on
# (the baseline: none; the log-mel runs train on the baseline's corpus), then a fine-tune of the shipped weights
# with the same steps, learning rate and seed, then real_dev with --diagnose.  Each lever draws from its own random
# streams, so the corpora hold the same pieces, places, renderers and other augmentation draws: one lever's effect
# is one measured difference.  Resumable: finished corpora, runs and result files are kept.
# Runs: baseline detune rooms dynamics bass gain chain (default: all), or levers together: detune+rooms.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data}
EXCERPTS=${2:-240}
STEPS=${3:-150}
shift $(( $# < 3 ? $# : 3 ))
RUNS=${*:-baseline detune rooms dynamics bass gain chain}
PY=.venv/bin/python
OUT=data/generated/levers
MODELS=piano_transcription/models
mkdir -p "$OUT" runs/levers
for run in $RUNS; do
    case $run in
        baseline|gain|chain) corpus=baseline; levers="" ;;
        *) corpus=$run; levers=${run//+/,} ;;  # "detune+rooms": both levers
    esac
    mel=""
    case $run in gain|chain) mel="--mel-augment $run" ;; esac
    if [ ! -f "$OUT/$corpus/.done" ]; then  # written after a whole build
        $PY -m piano_transcription.corpus "$DATA" "$OUT/$corpus" --train "$EXCERPTS" --validation 16 \
            --mix maps=0.4,sfz=0.6 --seed 2 --levers "$levers"
        touch "$OUT/$corpus/.done"
    fi
    # shellcheck disable=SC2086  # $mel is empty or two words
    $PY -m piano_transcription.training.train "$OUT/$corpus" "runs/levers/$run" --config small_keys \
        --init-model $MODELS/default.keras --steps "$STEPS" --batch-size 8 --crop-seconds 10 --learning-rate 1e-4 \
        --cosine-decay --steps-per-epoch "$STEPS" --save-every 50 --validation-steps 2 --seed 0 $mel
    cp $MODELS/default.thresholds.json "runs/levers/$run/model.thresholds.json"
    if [ ! -f "runs/levers/$run/real_dev.txt" ]; then
        $PY benchmarks/real_dev.py --data "$DATA/maps/real_dev" --diagnose --model "runs/levers/$run/model.keras" \
            > "runs/levers/$run/real_dev.tmp" && mv "runs/levers/$run/real_dev.tmp" "runs/levers/$run/real_dev.txt"
    fi
done
