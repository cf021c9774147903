"""How smooth are a voice's mels? Their fine detail beside the teachers', on the same sentences.

An over-smoothed mel (the blur of a model trained towards the mean or median of what could come
next) keeps its broad shape but loses detail. Three kinds of it, each the standard deviation of
something, per mel band, pooled over every frame of every held-out sentence:

- over time: a band's level around its sentence mean (the "global variance" of statistical
  parametric synthesis);
- frame to frame: the change from one frame to the next (how sharp the transitions are);
- across frequency: a frame's level minus its own average over the 9 nearest bands (formant
  peaks and valleys; in the low bands also the pitch harmonics).

Each is reported as the voice's over its teacher's (1.0: as much detail as the teacher; 0.5:
half), per speaker and for the low, middle and high third of the bands. It needs no recogniser,
so it runs in about a minute: a cheaper check than `intelligibility.py` of whether a change
sharpens the spectra, not of whether the speech is clearer.

    python benchmarks/spectral_detail.py                                   # the bundled voice
    python benchmarks/spectral_detail.py --model RUN/model.safetensors --exclude CORPUS/metadata.csv
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import uniform_filter1d

from tts import Synthesizer
from tts.api import bundled_training_corpus
from tts.audio import load_audio, mel_spectrogram
from tts.corpus.engines import get_engine
from tts.corpus.sentences import held_out_sentences

KINDS = ("over_time", "frame_to_frame", "across_frequency")
NEIGHBOUR_BANDS = 9  # wide enough to span a formant peak and its valleys at 80 bands


def detail(mels: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Per kind, the standard deviation per band (n_mels,) over all frames of `mels` ((n_mels, n_frames) each)."""
    over_time = np.concatenate([mel - mel.mean(axis=1, keepdims=True) for mel in mels], axis=1)
    frame_to_frame = np.concatenate([np.diff(mel, axis=1) for mel in mels], axis=1)
    across = np.concatenate([mel - uniform_filter1d(mel, NEIGHBOUR_BANDS, axis=0, mode="nearest") for mel in mels],
                            axis=1)
    return {"over_time": over_time.std(axis=1), "frame_to_frame": frame_to_frame.std(axis=1),
            "across_frequency": across.std(axis=1)}


def detail_ratios(voice: list[np.ndarray], teacher: list[np.ndarray]) -> dict[str, dict[str, float]]:
    """Per kind, the voice's detail over the teacher's: over all bands and per third of the bands
    (the root-mean-square of each side's per-band values, so loud and quiet bands weigh alike)."""
    ours, theirs = detail(voice), detail(teacher)
    n_mels = len(ours["over_time"])
    thirds = {"all": slice(0, n_mels), "low": slice(0, n_mels // 3), "middle": slice(n_mels // 3, 2 * n_mels // 3),
              "high": slice(2 * n_mels // 3, n_mels)}
    return {kind: {name: float(np.sqrt(np.mean(ours[kind][bands] ** 2) / np.mean(theirs[kind][bands] ** 2)))
                   for name, bands in thirds.items()} for kind in KINDS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="mel generator checkpoint (default: the bundled voice)")
    parser.add_argument("--sentences", type=int, default=20)
    parser.add_argument("--seed", type=int, default=12345, help="chooses the held-out sentences")
    parser.add_argument("--exclude", type=Path, action="append", default=[],
                        help="metadata.csv (or corpus.json) whose sentences are training text (repeatable; "
                             "default for a bundled voice: the corpus it learnt from)")
    parser.add_argument("--speakers", help="comma-separated flite voices among the model's speakers (default: all)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    synth = Synthesizer.from_pretrained(args.model)
    engine = get_engine("flite")
    speakers = args.speakers.split(",") if args.speakers else [s for s in synth.speakers if s in engine.voices]
    if not speakers:
        parser.error(f"none of the voice's speakers ({', '.join(synth.speakers) or 'none'}) is a flite voice")
    sentences = held_out_sentences(args.sentences, args.seed, args.exclude or bundled_training_corpus(args.model))
    audio_config = synth.voice.audio
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for speaker in speakers:
            voice_mels, teacher_mels = [], []
            for index, sentence in enumerate(sentences):
                voice_mels.append(synth.synthesize(sentence, speaker=speaker, seed=args.seed + index).mel)
                wav = engine.synthesize(speaker, sentence, Path(folder) / f"{speaker}_{index}.wav")
                teacher_mels.append(mel_spectrogram(load_audio(wav, audio_config.sample_rate), audio_config).numpy())
            rows.append({"speaker": speaker, **detail_ratios(voice_mels, teacher_mels)})
            print(f"  {speaker}: done", file=sys.stderr)

    print(f"\nSpectral detail: the voice's over its teacher's (1.0 = as much), {len(sentences)} held-out "
          f"sentences per speaker\n")
    print("| speaker | over time | frame to frame | across frequency | across frequency: low / middle / high bands |")
    print("|---|---|---|---|---|")
    for row in rows:
        across = row["across_frequency"]
        print(f"| {row['speaker']} | {row['over_time']['all']:.2f} | {row['frame_to_frame']['all']:.2f} | "
              f"{across['all']:.2f} | {across['low']:.2f} / {across['middle']:.2f} / {across['high']:.2f} |")
    if args.json:
        args.json.write_text(json.dumps({"sentences": sentences, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
