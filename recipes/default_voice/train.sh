#!/usr/bin/env bash
# The bundled voices, from nothing: a synthetic corpus, a tiny multi-speaker Tacotron 2-GST that
# learns to align, the Mellotron built on it (the same network plus an F0 input), then that
# Mellotron polished by training on its own output (scheduled sampling) and then with an L1 loss
# (the mean of its last checkpoints), an optional stage grown to wider LSTMs, then a refiner
# trained on the decoder's free-running output, then deepened (that model ships as the default
# voice: plain synthesis, GST style, pitch and rhythm transfer, singing); then a Flowtron whose
# text encoder starts from the Mellotron's (sampling, posterior style, latent interpolation; not
# shipped yet: docs/voices.md).
#
#   bash recipes/default_voice/train.sh            # resumable: run it again after a stop
#   WIDE_STEPS=20000 FLOWTRON_STEPS=0 WORK=/data/voxflow bash recipes/default_voice/train.sh
#
# On 2 CPU cores (torch 2.13) a Mellotron step (batch 16) takes about 0.5 s with 2 threads on an
# idle machine, about 1.1 s with self-feedback (stage 4), a step of the wide stage (batch 32)
# about 2.7 s; a GPU is used automatically when present. Run nothing else heavy beside a
# training: two jobs on two cores slow each other far more than twice (OpenMP threads wait on
# each other). docs/voices.md has the measured results and how long the shipped weights trained.
set -euo pipefail
cd "$(dirname "$0")/../.."
WORK=${WORK:-work/default_voice}
TACOTRON2_STEPS=${TACOTRON2_STEPS:-7000}
MELLOTRON_STEPS=${MELLOTRON_STEPS:-30000}
POLISH_STEPS=${POLISH_STEPS:-4500}
WIDE_STEPS=${WIDE_STEPS:-0}
FLOWTRON_STEPS=${FLOWTRON_STEPS:-40000}
CORPUS=$WORK/corpus
TACOTRON2=$WORK/tacotron2
MELLOTRON=$WORK/mellotron
POLISH=$WORK/mellotron_polish
WIDE=$WORK/mellotron_wide
FLOWTRON=$WORK/flowtron

# 1. 4000 WordNet sentences spoken by four flite voices (about 2.6 hours of audio, ~4 minutes).
voxflow corpus build --out "$CORPUS" --voices slt,rms,awb,kal16 --sentences 4000 --seed 0 --max-words 14
voxflow data check "$CORPUS" -q

# Train a new run, or continue one that was stopped (Ctrl-C / SIGTERM save a checkpoint first).
# Every run reads the clips' mels and F0 from one cache (train.cache_dir, keyed on the audio file
# and the settings), so each is computed once for the whole recipe; a resumed run keeps its own.
train() {  # kind run config max_steps [extra args...]
  local kind=$1 run=$2 config=$3 steps=$4
  shift 4
  if [ -f "$run/config.json" ]; then
    voxflow train "$kind" --data "$CORPUS" --out "$run" --resume --set train.max_steps="$steps" --no-progress
  else
    voxflow train "$kind" --data "$CORPUS" --out "$run" --config "$config" --set train.max_steps="$steps" \
      --set train.cache_dir="$WORK/cache" --no-progress "$@"
  fi
}

# 2. Alignment first: Tacotron 2-GST with guided attention (monotonic, diagonal by step ~2000).
train tacotron2 "$TACOTRON2" recipes/default_voice/tacotron2.json "$TACOTRON2_STEPS"

# 3. Mellotron warm-started from it: the F0 input starts with zero weights (the model computes
#    exactly the Tacotron 2's output), a quarter of the clips train without their contour so the
#    model can still choose the pitch itself.
train mellotron "$MELLOTRON" recipes/default_voice/mellotron.json "$MELLOTRON_STEPS" \
  --warm-start "$TACOTRON2/model.safetensors"

# 4. Polish: exposure bias. Teacher-forced, the Mellotron is far clearer than when it runs on its
#    own output. The same network now reads its own previous output (detached) instead of the
#    true frame at 30 % of the decoder steps (decoder.self_feedback 0.3), at a lower learning rate
#    (5e-4, halving every 5000 steps). Step 4b continues from step 4500 of this stage; the numbers
#    of both beside stage 3's are in docs/voices.md.
train mellotron "$POLISH" recipes/default_voice/mellotron_polish.json "$POLISH_STEPS" \
  --warm-start "$MELLOTRON/model.safetensors"
VOICE=$POLISH

# 4b. The same stage with an L1 mel loss (the median of the frames that could come next, where
#     MSE trains towards their blurred mean), 4000 steps from step 4's end at its final learning
#     rate, then the mean of the last three checkpoints (steps 3000, 3500, 4000). The shipped
#     voice; docs/voices.md has the decision rule and its numbers. L1_STEPS=0 skips it.
L1_STEPS=${L1_STEPS:-4000}
L1=$WORK/mellotron_l1
if [ "$L1_STEPS" -gt 0 ]; then
  train mellotron "$L1" recipes/default_voice/mellotron_polish.json "$L1_STEPS" \
    --warm-start "$POLISH/model.safetensors" --set model.mel_loss=l1 --set train.learning_rate=0.00027
  voxflow average "$L1" --last 3 -o "$L1/averaged.safetensors" --force
  VOICE=$L1
fi

# 5. Optional (WIDE_STEPS > 0; not in the shipped weights): capacity. This stage grows the
#    attention and decoder LSTMs to 512 units and the postnet to 256 channels (function-
#    preserving: its step 0 speaks exactly like the model it starts from) and feeds the decoder
#    its own output at half of the steps (self_feedback 0.5). Batch 32. After 1000 steps it was
#    not yet clearer than step 3's model (docs/voices.md).
if [ "$WIDE_STEPS" -gt 0 ]; then
  train mellotron "$WIDE" recipes/default_voice/mellotron_wide.json "$WIDE_STEPS" \
    --warm-start "$VOICE/model.safetensors"
  VOICE=$WIDE
fi

VOICE_WEIGHTS=$VOICE/model.safetensors
[ -f "$VOICE/averaged.safetensors" ] && VOICE_WEIGHTS=$VOICE/averaged.safetensors

# 5b. The refiner (model.refiner): a conv stack that turns the decoder's free-running mel into
#     the final one, reading each frame's attention context (text, style, speaker). It trains
#     alone, every other weight frozen, on rehearsals: the decoder runs free with the attention
#     of a teacher-forced pass forced, so its frames line up with the recording. The config has
#     the shipped network's sizes; after the wide stage, pass its sizes too. REFINER_STEPS=0
#     skips it.
REFINER_STEPS=${REFINER_STEPS:-6000}
REFINER=$WORK/mellotron_refiner
if [ "$REFINER_STEPS" -gt 0 ]; then
  wide_sizes=()
  [ "$WIDE_STEPS" -gt 0 ] && wide_sizes=(--set model.attention.rnn_dim=512 --set model.decoder.rnn_dim=512
                                         --set model.postnet.channels=256 --set model.decoder.self_feedback=0.5)
  train mellotron "$REFINER" recipes/default_voice/mellotron_refiner.json "$REFINER_STEPS" \
    --warm-start "$VOICE_WEIGHTS" "${wide_sizes[@]}"
  VOICE_WEIGHTS=$REFINER/model.safetensors
fi

# 5c. The refiner deepened, 6 blocks → 10: the trained blocks carry over and the four new ones
#     start as identities (the same output), then 4500 more steps at a lower learning rate.
#     DEEP_REFINER_STEPS=0 skips it.
DEEP_REFINER_STEPS=${DEEP_REFINER_STEPS:-4500}
DEEP_REFINER=$WORK/mellotron_refiner_deep
if [ "$REFINER_STEPS" -gt 0 ] && [ "$DEEP_REFINER_STEPS" -gt 0 ]; then
  train mellotron "$DEEP_REFINER" recipes/default_voice/mellotron_refiner_deep.json "$DEEP_REFINER_STEPS" \
    --warm-start "$VOICE_WEIGHTS" "${wide_sizes[@]}"
  VOICE_WEIGHTS=$DEEP_REFINER/model.safetensors
fi

# 5d. Optional (ADVERSARIAL_STEPS > 0; not in the shipped weights): the refiner fine-tuned against
#     an adversarial critic (model.refiner.adversarial, a GAN post-filter; the critic lives in the
#     run's training state only). 1500 steps of it scored within the noise of the shipped refiner
#     (docs/voices.md).
ADVERSARIAL_STEPS=${ADVERSARIAL_STEPS:-0}
GAN_REFINER=$WORK/mellotron_refiner_gan
if [ "$REFINER_STEPS" -gt 0 ] && [ "$ADVERSARIAL_STEPS" -gt 0 ]; then
  train mellotron "$GAN_REFINER" recipes/default_voice/mellotron_refiner_gan.json "$ADVERSARIAL_STEPS" \
    --warm-start "$VOICE_WEIGHTS" "${wide_sizes[@]}"
  VOICE_WEIGHTS=$GAN_REFINER/model.safetensors
fi

# 6. Export the default voice into the package (float16 storage) and measure it.
voxflow convert "$VOICE_WEIGHTS" -o tts/default_voice/voice.safetensors --half --force
python benchmarks/intelligibility.py --sentences 50 --json "$WORK/intelligibility_mellotron.json"
python benchmarks/pitch_transfer.py --clips 20 --json "$WORK/pitch_transfer.json"

# 7. Flowtron, one flow, taught to align by step 3's Mellotron: the Mellotron's teacher-forced
#    attention over each batch is the flow's attention target (model.loss.alignment_teacher; no
#    prior), and its embedding, text encoder and speaker table start the Flowtron's
#    (Flowtron.text_state_dict); the flow starts from scratch. With the prior and CTC alone the
#    attention had not aligned after 2300 steps on 2 cores. It does not need steps 4-5: on two
#    machines they can run side by side. FLOWTRON_STEPS=0 skips it.
if [ "$FLOWTRON_STEPS" -gt 0 ]; then
  train flowtron "$FLOWTRON" recipes/default_voice/flowtron.json "$FLOWTRON_STEPS" \
    --warm-start "$MELLOTRON/model.safetensors" --set model.loss.alignment_teacher="$MELLOTRON/model.safetensors"
  voxflow convert "$FLOWTRON/model.safetensors" -o tts/default_voice/flowtron.safetensors --half --force
  python benchmarks/intelligibility.py --model flowtron --sentences 50 --json "$WORK/intelligibility_flowtron.json"
fi
