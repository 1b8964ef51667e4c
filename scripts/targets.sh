#!/usr/bin/env bash
# Issue 25, item 3: binary against regression onset/offset targets (Kong et al. 2021), measured on the real recordings:
#   bash scripts/targets.sh [SHARED_DATA] [EXCERPTS] [STEPS] [INIT_MODEL]
# One corpus of EXCERPTS training excerpts (the stage-3/4 mix, seed 4, levers detune, rooms and bass: pieces and places
# the earlier runs did not train on; every shard holds both kinds of targets), then two fine-tunes of INIT_MODEL with
# the same steps, learning rate, seed and batches, one per kind of target, then real_dev with --diagnose for each.
# The regression run's model.thresholds.json says timing=regression (sub-frame times); the binary run is also scored
# with that timing (runs/targets/binary_timed), which tells the decoder's part from the training's.
# Resumable: the finished corpus, runs and result files are kept.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data}
EXCERPTS=${2:-800}
STEPS=${3:-600}
INIT=${4:-models/training/levers_long/model.keras}
PY=.venv/bin/python
CORPUS=data/generated/regression
OUT=runs/targets
mkdir -p "$OUT"
if [ ! -f "$CORPUS/.done" ]; then  # written after a whole build
    $PY -m piano_transcription.corpus "$DATA" "$CORPUS" --train "$EXCERPTS" --validation 16 \
        --mix maps=0.4,sfz=0.6 --seed 4 --levers detune,rooms,bass
    touch "$CORPUS/.done"
fi
real_dev() {  # MODEL RESULT
    if [ ! -f "$2" ]; then
        $PY benchmarks/real_dev.py --data "$DATA/maps/real_dev" --diagnose --model "$1" > "$2.tmp" && mv "$2.tmp" "$2"
    fi
}
for targets in regression binary; do
    if [ ! -f "$OUT/$targets/model.keras" ]; then
        $PY -m piano_transcription.training.train "$CORPUS" "$OUT/$targets" --config small_keys --init-model "$INIT" \
            --steps "$STEPS" --batch-size 8 --crop-seconds 10 --learning-rate 1e-4 --cosine-decay \
            --steps-per-epoch "$STEPS" --save-every 50 --validation-steps 2 --seed 0 --targets "$targets"
    fi
    # the shipped thresholds; the training wrote timing=regression beside a regression model
    $PY - "$OUT/$targets/model.keras" "$targets" <<'PY'
import json, sys
from piano_transcription.predictor import read_sidecar, thresholds_path
path, targets = sys.argv[1:]
shipped = json.loads(open("piano_transcription/models/default.thresholds.json").read())
timing = "regression" if targets == "regression" else "frames"
thresholds_path(path).write_text(json.dumps({**shipped, "timing": timing}, indent=1))
PY
    real_dev "$OUT/$targets/model.keras" "$OUT/$targets/real_dev.txt"
done
mkdir -p "$OUT/binary_timed"
cp "$OUT/binary/model.keras" "$OUT/binary_timed/model.keras"
$PY - <<'PY'
import json
shipped = json.loads(open("piano_transcription/models/default.thresholds.json").read())
open("runs/targets/binary_timed/model.thresholds.json", "w").write(json.dumps({**shipped, "timing": "regression"}, indent=1))
PY
real_dev "$OUT/binary_timed/model.keras" "$OUT/binary_timed/real_dev.txt"
