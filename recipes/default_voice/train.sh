#!/usr/bin/env bash
# The bundled default voice, from nothing: a synthetic corpus, a tiny multi-speaker Tacotron 2-GST
# that learns to align, then the Mellotron built on it (the same network plus an F0 input), which
# is what ships: plain synthesis, GST style, pitch and rhythm transfer, singing.
#
#   bash recipes/default_voice/train.sh            # resumable: run it again after a stop
#   MELLOTRON_STEPS=40000 WORK=/data/voxflow bash recipes/default_voice/train.sh
#
# On 2 CPU cores (torch 2.13) a step takes about 0.5 s with 2 threads on an idle machine, 0.9 s
# with 1 thread on one core; a GPU is used automatically when present. docs/voices.md has the
# measured results and how long the shipped weights trained.
set -euo pipefail
cd "$(dirname "$0")/../.."
WORK=${WORK:-work/default_voice}
TACOTRON2_STEPS=${TACOTRON2_STEPS:-7000}
MELLOTRON_STEPS=${MELLOTRON_STEPS:-30000}
CORPUS=$WORK/corpus
TACOTRON2=$WORK/tacotron2
MELLOTRON=$WORK/mellotron

# 1. 4000 WordNet sentences spoken by four flite voices (about 2.6 hours of audio, ~4 minutes).
voxflow corpus build --out "$CORPUS" --voices slt,rms,awb,kal16 --sentences 4000 --seed 0 --max-words 14
voxflow data check "$CORPUS" -q

# Train a new run, or continue one that was stopped (Ctrl-C / SIGTERM save a checkpoint first).
train() {  # kind run config max_steps [extra args...]
  local kind=$1 run=$2 config=$3 steps=$4
  shift 4
  if [ -f "$run/config.json" ]; then
    voxflow train "$kind" --data "$CORPUS" --out "$run" --resume --set train.max_steps="$steps" --no-progress
  else
    voxflow train "$kind" --data "$CORPUS" --out "$run" --config "$config" --set train.max_steps="$steps" \
      --no-progress "$@"
  fi
}

# 2. Alignment first: Tacotron 2-GST with guided attention (monotonic, diagonal by step ~2000).
train tacotron2 "$TACOTRON2" recipes/default_voice/tacotron2.json "$TACOTRON2_STEPS"

# 3. Mellotron warm-started from it: the F0 input starts with zero weights (the model computes
#    exactly the Tacotron 2's output), a quarter of the clips train without their contour so the
#    model can still choose the pitch itself. The mel/F0 caches of step 2 are reused.
if [ ! -d "$MELLOTRON/cache" ] && [ -d "$TACOTRON2/cache" ]; then
  mkdir -p "$MELLOTRON" && cp -al "$TACOTRON2/cache" "$MELLOTRON/cache"
fi
train mellotron "$MELLOTRON" recipes/default_voice/mellotron.json "$MELLOTRON_STEPS" \
  --warm-start "$TACOTRON2/model.safetensors"

# 4. Export the final weights into the package (float16 storage), then measure them.
voxflow convert "$MELLOTRON/model.safetensors" -o tts/default_voice/voice.safetensors --half --force
python benchmarks/intelligibility.py --exclude "$CORPUS/metadata.csv" --json "$WORK/intelligibility.json"
python benchmarks/pitch_transfer.py --exclude "$CORPUS/metadata.csv" --json "$WORK/pitch_transfer.json"
