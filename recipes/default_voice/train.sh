#!/usr/bin/env bash
# The bundled voices, from nothing: a synthetic corpus, a tiny multi-speaker Tacotron 2-GST that
# learns to align, the Mellotron built on it (the same network plus an F0 input), a last Mellotron
# stage that feeds the decoder its own output (scheduled sampling), which is what ships as the
# default voice (plain synthesis, GST style, pitch and rhythm transfer, singing); then a Flowtron
# whose text encoder starts from the Mellotron's (sampling, posterior style, latent interpolation).
#
#   bash recipes/default_voice/train.sh            # resumable: run it again after a stop
#   FEEDBACK_STEPS=20000 WORK=/data/voxflow bash recipes/default_voice/train.sh
#
# On 2 CPU cores (torch 2.13) a Mellotron step (batch 16) takes about 0.5 s with 2 threads on an
# idle machine; a GPU is used automatically when present. docs/voices.md has the measured results
# and how long the shipped weights trained.
set -euo pipefail
cd "$(dirname "$0")/../.."
WORK=${WORK:-work/default_voice}
TACOTRON2_STEPS=${TACOTRON2_STEPS:-7000}
MELLOTRON_STEPS=${MELLOTRON_STEPS:-30000}
FEEDBACK_STEPS=${FEEDBACK_STEPS:-20000}
FLOWTRON_STEPS=${FLOWTRON_STEPS:-40000}
CORPUS=$WORK/corpus
TACOTRON2=$WORK/tacotron2
MELLOTRON=$WORK/mellotron
FEEDBACK=$WORK/mellotron_feedback
FLOWTRON=$WORK/flowtron

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
share_cache() {  # the mel/F0 caches of step 2 serve every later run
  if [ ! -d "$1/cache" ] && [ -d "$TACOTRON2/cache" ]; then
    mkdir -p "$1" && cp -al "$TACOTRON2/cache" "$1/cache"
  fi
}
share_cache "$MELLOTRON"
train mellotron "$MELLOTRON" recipes/default_voice/mellotron.json "$MELLOTRON_STEPS" \
  --warm-start "$TACOTRON2/model.safetensors"

# 4. Exposure bias: teacher-forced, the Mellotron is far clearer than when it runs on its own
#    output. This stage (batch 32) feeds the decoder's own previous output back, detached, at half
#    of the steps (decoder.self_feedback 0.5), so it learns to continue from its own predictions.
share_cache "$FEEDBACK"
train mellotron "$FEEDBACK" recipes/default_voice/mellotron_feedback.json "$FEEDBACK_STEPS" \
  --warm-start "$MELLOTRON/model.safetensors"

# 5. Flowtron, one flow, with the attention prior and CTC; its embedding, text encoder and speaker
#    table start from step 3's Mellotron (Flowtron.text_state_dict), the flow from scratch. It
#    does not need step 4: on two machines (or cores) the two can run side by side.
share_cache "$FLOWTRON"
train flowtron "$FLOWTRON" recipes/default_voice/flowtron.json "$FLOWTRON_STEPS" \
  --warm-start "$MELLOTRON/model.safetensors"

# 6. Export the final weights into the package (float16 storage), then measure them.
voxflow convert "$FEEDBACK/model.safetensors" -o tts/default_voice/voice.safetensors --half --force
voxflow convert "$FLOWTRON/model.safetensors" -o tts/default_voice/flowtron.safetensors --half --force
for voice in mellotron flowtron; do
  python benchmarks/intelligibility.py --model "$voice" --exclude "$CORPUS/metadata.csv" \
    --json "$WORK/intelligibility_$voice.json"
done
python benchmarks/pitch_transfer.py --exclude "$CORPUS/metadata.csv" --json "$WORK/pitch_transfer.json"
