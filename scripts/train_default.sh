#!/usr/bin/env bash
# The recipe of the shipped default model (see piano_transcription/models/README.md), end to end, resumable:
#   bash scripts/train_default.sh [SHARED_DATA] [STAGE1_STEPS] [STAGE2_STEPS] [STAGE3_STEPS] [STAGE4_STEPS]
# SHARED_DATA: the shared data folder (default ../shared/data): performance_midi/, maps/, pianos/, impulse_responses/.
# Re-running continues each stage from its checkpoint (runs/stage1, runs/real, runs/keyhead, runs/stage4).
#   Stage 1 (the first default model, config small): MAESTRO MIDI through Salamander, FluidR3 and TimGM6mb,
#           simulated rooms.
#   Stage 2 (real recordings): stage 1 fine-tuned with the sustain-pedal head on MAPS's software pianos,
#           MAESTRO MIDI through the sampled grands (sfizz) and FluidSynth, measured and simulated rooms; the
#           step-2500 snapshot was chosen on real_dev.
#   Stage 3 (note lengths): the key head trained alone on the stage-2 model (every other weight frozen, so the
#           notes, pedal and real_dev scores stay exactly as they were), on a corpus whose renders know the keys.
#   Stage 4 (the shipped weights): every weight fine-tuned from stage 3 on the same corpus, a cosine decay over
#           3200 steps (about 5.5 h on a 2-core CPU; resumable); its last step is the default model.
# Then the thresholds, the TFLite exports and the real-recordings benchmark (real_dev: measured, never trained on).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data}
STEPS1=${2:-4250}
STEPS2=${3:-2750}
STEPS3=${4:-600}
STEPS4=${5:-3200}
EXTRA_APT_PACKAGES="fluid-soundfont-gm musescore-general-soundfont-small npm" bash scripts/setup.sh
PY=.venv/bin/python
MODELS=piano_transcription/models

$PY -m piano_transcription.corpus "$DATA" data/generated/corpus_stage1 --train 3200 --validation 96 \
    --mix salamander=0.5,fluidsynth=0.5 --rooms simulated
$PY -m piano_transcription.training.train data/generated/corpus_stage1 runs/stage1 --config small --steps "$STEPS1" \
    --batch-size 4 --steps-per-epoch 250 --save-every 250 --validation-steps 24

$PY -m piano_transcription.corpus "$DATA" data/generated/corpus_real --train 2000 --validation 96
$PY -m piano_transcription.training.train data/generated/corpus_real runs/real --config small --pedal \
    --init-model runs/stage1/model.keras --steps "$STEPS2" --batch-size 4 --steps-per-epoch 250 --save-every 250 \
    --validation-steps 12 --keep-every 500

$PY -m piano_transcription.corpus "$DATA" data/generated/corpus_keys --train 2400 --validation 96 \
    --mix maps=0.4,sfz=0.6 --seed 1
$PY -m piano_transcription.training.train data/generated/corpus_keys runs/keyhead --config small_keys \
    --init-model runs/real/snapshots/step_002500.keras --trainable keys --steps "$STEPS3" --batch-size 8 \
    --crop-seconds 10 --learning-rate 1e-3 --cosine-decay --steps-per-epoch 300 --save-every 150 --validation-steps 6

$PY -m piano_transcription.training.train data/generated/corpus_keys runs/stage4 --config small_keys \
    --init-model runs/keyhead/model.keras --steps "$STEPS4" --batch-size 8 --crop-seconds 10 --learning-rate 3e-4 \
    --cosine-decay --steps-per-epoch 400 --save-every 100 --validation-steps 6 --keep-every 400

# The model without its optimizer state (the snapshots hold Adam's moments too: 34 MB instead of 12 MB)
$PY -c "from piano_transcription.model import load_model, save_model; \
save_model(load_model('runs/stage4/model.keras'), '$MODELS/default.keras')"
# Global thresholds onset 0.5 / frame 0.3 (benchmarks/real_dev.py --sweep) (2-fold cross-validation) and offset 0.5 (--offsets; see the model card)
$PY -c "import json; json.dump({'onset': [0.5] * 88, 'frame': [0.3] * 88, 'offset': 0.5}, open('$MODELS/default.thresholds.json', 'w'), indent=1)"
$PY benchmarks/real_dev.py --data "$DATA/maps/real_dev" --sweep --model $MODELS/default.keras
$PY benchmarks/real_dev.py --data "$DATA/maps/real_dev" --offsets --model $MODELS/default.keras
$PY benchmarks/durations.py --corpus data/generated/corpus_keys --model $MODELS/default.keras
rm -f $MODELS/default.tflite $MODELS/default.fp16.tflite
.venv/bin/piano-transcribe export-tflite $MODELS/default.keras -o $MODELS/default.tflite
.venv/bin/piano-transcribe export-tflite $MODELS/default.keras -o $MODELS/default.fp16.tflite --float16
cp $MODELS/default.thresholds.json $MODELS/default.fp16.thresholds.json
$PY benchmarks/real_dev.py --data "$DATA/maps/real_dev" --basic-pitch \
    --model $MODELS/default.keras $MODELS/default.tflite $MODELS/default.fp16.tflite
$PY benchmarks/accuracy.py --midi-root "$DATA/performance_midi"
