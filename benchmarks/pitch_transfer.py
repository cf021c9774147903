"""Does Mellotron follow a reference's pitch? F0 frame error of pitch transfer on held-out clips.

For each held-out reference clip (from a corpus folder, lines the voice was not trained on, or
any LJSpeech-layout folder), Mellotron speaks the clip's transcript with the reference's rhythm
and pitch; the result is vocoded (Griffin-Lim unless --vocoder), its F0 re-extracted with the
same tracker, and compared frame by frame with the reference contour: FFE, GPE, VDE
(`tts.conditioning.metrics`). As a floor, the same text with the model's own pitch (rhythm
transferred, pitch not) is scored against the same reference.

    python benchmarks/pitch_transfer.py --model mellotron.safetensors --data data/heldout --clips 20
    python benchmarks/pitch_transfer.py --model RUN/model.safetensors --data data/synth --skip 3900 --json pt.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from tts import Synthesizer
from tts.audio import load_audio
from tts.conditioning.f0 import extract_f0
from tts.conditioning.metrics import pitch_errors
from tts.data import load_utterances


def _score(synth: Synthesizer, utterance, transfer_pitch: bool, seed: int):
    config = synth.voice.config.pitch
    rate = synth.sample_rate
    reference = load_audio(utterance.audio_path, rate)
    reference_f0 = extract_f0(reference, rate, config.f0_min, config.f0_max, config.harm_thresh, config.method)
    out = synth.synthesize(utterance.text, speaker=utterance.speaker, rhythm=utterance.audio_path,
                           pitch=utterance.audio_path if transfer_pitch else None, seed=seed, prenet_dropout=0.0)
    result_f0 = extract_f0(out.audio, rate, config.f0_min, config.f0_max, config.harm_thresh, config.method)
    n_frames = min(len(reference_f0), len(result_f0))
    return pitch_errors(reference_f0[:n_frames], result_f0[:n_frames])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a Mellotron checkpoint")
    parser.add_argument("--vocoder", help="vocoder checkpoint (default: Griffin-Lim)")
    parser.add_argument("--data", type=Path, required=True, help="LJSpeech-layout folder of reference clips")
    parser.add_argument("--skip", type=int, default=0, help="use clips from this line on (held out of training)")
    parser.add_argument("--clips", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    synth = Synthesizer.from_pretrained(args.model, vocoder=args.vocoder)
    if "pitch" not in synth.capabilities:
        raise SystemExit(f"{args.model} is a {synth.kind} voice; pitch transfer needs Mellotron")
    utterances = load_utterances(args.data)[args.skip:args.skip + args.clips]
    rows = {"transferred": [], "own pitch": []}
    for index, utterance in enumerate(utterances):
        rows["transferred"].append(_score(synth, utterance, True, index))
        rows["own pitch"].append(_score(synth, utterance, False, index))
    print(f"\nPitch transfer: {len(utterances)} reference clips from {args.data} (from line {args.skip + 1}), "
          f"vocoder {args.vocoder or 'Griffin-Lim'}, torch {torch.__version__}\n")
    print(f"{'pitch':<12} {'FFE':>7} {'GPE':>7} {'VDE':>7}")
    summary = {}
    for name, errors in rows.items():
        means = {key: float(np.mean([getattr(e, key) for e in errors])) for key in ("ffe", "gpe", "vde")}
        summary[name] = means
        print(f"{name:<12} {means['ffe']:>7.3f} {means['gpe']:>7.3f} {means['vde']:>7.3f}")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
