"""Does Mellotron follow a reference's pitch? F0 frame error of pitch transfer on held-out clips.

For each held-out reference clip, Mellotron speaks the clip's transcript with the reference's
rhythm and pitch. The references are either spoken on the spot by the flite teachers of the
voice's speakers, for WordNet sentences that are not in the training text (`--exclude`), or
read from an LJSpeech-layout folder (`--data`, `--skip` lines the voice was not trained on).
The result is vocoded (Griffin-Lim unless --vocoder), its F0 re-extracted with the
same tracker, and compared frame by frame with the reference contour: FFE, GPE, VDE
(`tts.conditioning.metrics`). Two reference rows: "copy" is the reference itself turned
into a mel and back through the same vocoder (the error the vocoder and tracker alone cause,
the best any model can score), and as a floor, the same text with the model's own pitch (rhythm
transferred, pitch not) is scored against the same reference.

    python benchmarks/pitch_transfer.py                                         # the bundled voice
    python benchmarks/pitch_transfer.py --model RUN/model.safetensors --exclude data/synth/metadata.csv
    python benchmarks/pitch_transfer.py --model mellotron.safetensors --data data/heldout --clips 20
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from tts import Synthesizer
from tts.api import bundled_training_corpus
from tts.audio import load_audio, mel_spectrogram
from tts.conditioning.f0 import extract_f0
from tts.conditioning.metrics import pitch_errors
from tts.corpus.engines import get_engine
from tts.corpus.sentences import held_out_sentences
from tts.data import Utterance, load_utterances


def _score(synth: Synthesizer, utterance, mode: str, seed: int):
    """Pitch errors of one clip; mode "transferred", "own pitch" or "copy"."""
    config = synth.voice.config.pitch
    rate = synth.sample_rate
    reference = load_audio(utterance.audio_path, rate)
    reference_f0 = extract_f0(reference, rate, config.f0_min, config.f0_max, config.harm_thresh, config.method)
    if mode == "copy":
        mel = mel_spectrogram(reference, synth.voice.audio).unsqueeze(0).to(synth.device)
        with torch.no_grad():
            audio = synth.vocoder(mel)[0].float().cpu().numpy()
    else:
        audio = synth.synthesize(utterance.text, speaker=utterance.speaker, rhythm=utterance.audio_path,
                                 pitch=utterance.audio_path if mode == "transferred" else None, seed=seed,
                                 prenet_dropout=0.0).audio
    result_f0 = extract_f0(audio, rate, config.f0_min, config.f0_max, config.harm_thresh, config.method)
    n_frames = min(len(reference_f0), len(result_f0))
    return pitch_errors(reference_f0[:n_frames], result_f0[:n_frames])


def teacher_references(synth: Synthesizer, count: int, seed: int, exclude: list[Path],
                       folder: Path) -> list[Utterance]:
    """Held-out sentences spoken by the flite voices among the model's speakers, in turn."""
    engine = get_engine("flite")
    speakers = [speaker for speaker in synth.speakers if speaker in engine.voices]
    if not speakers:
        raise SystemExit(f"none of the voice's speakers ({', '.join(synth.speakers)}) is a flite voice; pass --data")
    references = []
    for index, sentence in enumerate(held_out_sentences(count, seed, exclude)):
        speaker = speakers[index % len(speakers)]
        wav = engine.synthesize(speaker, sentence, folder / f"{index}.wav")
        references.append(Utterance(audio_path=wav, text=sentence, speaker=speaker, source=folder, line=index + 1))
    return references


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a Mellotron checkpoint (default: the bundled voice)")
    parser.add_argument("--vocoder", help="vocoder checkpoint (default: Griffin-Lim)")
    parser.add_argument("--data", type=Path, help="LJSpeech-layout folder of reference clips "
                        "(default: flite teachers speak held-out sentences)")
    parser.add_argument("--skip", type=int, default=0, help="with --data: use clips from this line on")
    parser.add_argument("--exclude", type=Path, action="append", default=[],
                        help="without --data: metadata.csv (or corpus.json) whose sentences are training text "
                             "(repeatable; default for a bundled voice: the corpus it learnt from)")
    parser.add_argument("--seed", type=int, default=54321, help="chooses the held-out sentences")
    parser.add_argument("--clips", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    synth = Synthesizer.from_pretrained(args.model, vocoder=args.vocoder)
    if "pitch" not in synth.capabilities:
        raise SystemExit(f"{args.model} is a {synth.kind} voice; pitch transfer needs Mellotron")
    with tempfile.TemporaryDirectory() as folder:
        if args.data:
            utterances = load_utterances(args.data)[args.skip:args.skip + args.clips]
            source = f"{args.data} (from line {args.skip + 1})"
        else:
            exclude = args.exclude or bundled_training_corpus(args.model)
            utterances = teacher_references(synth, args.clips, args.seed, exclude, Path(folder))
            source = "flite teachers, held-out sentences"
        rows = {"transferred": [], "own pitch": [], "copy": []}
        for index, utterance in enumerate(utterances):
            for mode, errors in rows.items():
                errors.append(_score(synth, utterance, mode, index))
    print(f"\nPitch transfer: {len(utterances)} reference clips from {source}, "
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
