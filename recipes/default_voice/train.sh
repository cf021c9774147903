#!/usr/bin/env bash
# The bundled default voice, from nothing: a synthetic corpus, a tiny multi-speaker Tacotron 2-GST
# trained with guided attention, exported in half precision into the package.
#
#   bash recipes/default_voice/train.sh            # resumable: run it again after a stop
#   STEPS=30000 WORK=/data/voxflow bash recipes/default_voice/train.sh
#
# On 2 CPU cores (torch 2.13, 2 threads) a step takes about 0.5 s when nothing else runs; a GPU
# is used automatically when present. See docs/voices.md for the measured results.
set -euo pipefail
cd "$(dirname "$0")/../.."
WORK=${WORK:-work/default_voice}
STEPS=${STEPS:-30000}
CORPUS=$WORK/corpus
RUN=$WORK/tacotron2

# 1. 4000 WordNet sentences spoken by four flite voices (about 2.6 hours of audio, ~4 minutes).
voxflow corpus build --out "$CORPUS" --voices slt,rms,awb,kal16 --sentences 4000 --seed 0 --max-words 14
voxflow data check "$CORPUS" -q

# 2. Train (or continue training) the mel generator.
if [ -f "$RUN/config.json" ]; then
  voxflow train tacotron2 --data "$CORPUS" --out "$RUN" --resume --set train.max_steps="$STEPS"
else
  voxflow train tacotron2 --data "$CORPUS" --out "$RUN" --config recipes/default_voice/tacotron2.json \
    --set train.max_steps="$STEPS"
fi

# 3. Export the final weights into the package (float16 storage), then measure them.
voxflow convert "$RUN/model.safetensors" -o tts/default_voice/voice.safetensors --half --force
python benchmarks/intelligibility.py --exclude "$CORPUS/metadata.csv" --json "$WORK/intelligibility.json"
