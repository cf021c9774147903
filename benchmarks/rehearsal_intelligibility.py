"""Is it the timing or the spectra? A voice's word error rate when each held-out sentence is
*rehearsed* on its teacher's recording, beside free inference on the same sentences.

A rehearsal is what a refiner trains on (`Tacotron2.rehearse`): a teacher-forced pass over the
flite teacher's recording gives the decoder its attention (so the teacher's timing), Mellotron's
decoder reads the recording's F0 (or no contour with `--no-f0`), the decoder runs free on its own
output, and the refiner (if any) and the voice's vocoder finish it. Two columns per speaker: the
GST style of the recording itself and the style inference takes without a reference. If the
rehearsed voice were much clearer than the free one, the errors would be in the timing; if not,
in the spectra the model writes.

    python benchmarks/rehearsal_intelligibility.py --seed 1 --free A1.json --json R1.json

`--free` takes an `intelligibility.py --json` run of the same voice, sentences and exclude, for
its per-speaker WER beside these. Speakers must be flite voices (the teachers).
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
from tts.corpus.engines import get_engine
from tts.corpus.sentences import held_out_sentences
from tts.intelligibility import transcribe, word_error_rate

STYLES = {"own_style": True, "default_style": False}  # rehearse with the recording's GST style, or without


def rehearsed_transcripts(synth: Synthesizer, speaker: str, sentences: list[str], seed: int,
                          use_f0: bool, folder: Path) -> dict[str, list[str]]:
    """Per style, the transcripts of each sentence rehearsed on the teacher's recording of it."""
    voice, model = synth.voice, synth.voice.model
    audio_config = model.config.audio
    pitch = getattr(model.config, "pitch", None)
    hypotheses: dict[str, list[str]] = {name: [] for name in STYLES}
    for index, sentence in enumerate(sentences):
        wav = get_engine("flite").synthesize(speaker, sentence, folder / f"{speaker}_{index}.wav")
        audio = load_audio(wav, audio_config.sample_rate)
        mel = mel_spectrogram(audio, audio_config).to(synth.device)
        n_frames = mel.size(1)
        tokens = torch.tensor([voice.tokens(sentence)], device=synth.device)
        inputs = {}
        if pitch is not None:  # a Mellotron reads the recording's contour, or none
            f0 = extract_f0(audio, audio_config.sample_rate, pitch.f0_min, pitch.f0_max, pitch.harm_thresh,
                            pitch.method, audio_config.win_length, audio_config.hop_length)
            f0 = np.pad(f0, (0, max(0, n_frames - len(f0))))[:n_frames] * float(use_f0)
            inputs["f0"] = torch.from_numpy(f0.astype(np.float32))[None].to(synth.device)
        for name, own_style in STYLES.items():
            torch.manual_seed(seed + index)  # a vocoder's random draws (Griffin-Lim's first phases)
            with torch.no_grad():
                rehearsed = model.rehearse(tokens, torch.tensor([tokens.size(1)]), mel[None], torch.tensor([n_frames]),
                                           torch.tensor([voice.speaker_id(speaker)]),
                                           torch.tensor([own_style]), torch.Generator().manual_seed(seed + index),
                                           **inputs)
                mel_out = model.refine(rehearsed) if model.refiner is not None else rehearsed.mel_postnet
                wave = synth.vocoder(mel_out)[0].float().cpu().numpy()
            hypotheses[name].append(transcribe(wave, audio_config.sample_rate))
    return hypotheses


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="mel generator checkpoint (default: the bundled voice)")
    parser.add_argument("--sentences", type=int, default=50)
    parser.add_argument("--seed", type=int, default=12345, help="chooses the held-out sentences")
    parser.add_argument("--exclude", type=Path, action="append", default=[],
                        help="metadata.csv (or corpus.json) of training text (default: a bundled voice's corpus)")
    parser.add_argument("--speakers", help="comma-separated flite speakers (default: all the voice's)")
    parser.add_argument("--no-f0", action="store_true", help="rehearse without the recording's F0 (Mellotron)")
    parser.add_argument("--free", type=Path, help="intelligibility.py --json of the same sentences: its WER column")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    synth = Synthesizer.from_pretrained(args.model)
    speakers = args.speakers.split(",") if args.speakers else list(synth.speakers)
    sentences = held_out_sentences(args.sentences, args.seed, args.exclude or bundled_training_corpus(args.model))
    free = None
    if args.free is not None:
        record = json.loads(args.free.read_text(encoding="utf-8"))
        if record["sentences"] != sentences:
            parser.error(f"{args.free}: its sentences are not these (same --seed, --sentences and --exclude?)")
        free = {row["speaker"]: row["voice_wer"] for row in record["rows"]}
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for speaker in speakers:
            hypotheses = rehearsed_transcripts(synth, speaker, sentences, args.seed, not args.no_f0, Path(folder))
            rows.append({"speaker": speaker, "hypotheses": hypotheses,
                         **{name: word_error_rate(sentences, found) for name, found in hypotheses.items()},
                         "free": free.get(speaker) if free else None})
            print(f"  {speaker}: done", file=sys.stderr)

    print(f"\nRehearsed on the teacher's recording ({'no F0' if args.no_f0 else 'its F0'}), "
          f"{len(sentences)} held-out sentences, pocketsphinx WER\n")
    print("| speaker | free inference | rehearsed, own style | rehearsed, default style |\n|---|---|---|---|")
    for row in rows:
        free_cell = f"{row['free']:.3f}" if row["free"] is not None else "-"
        print(f"| {row['speaker']} | {free_cell} | {row['own_style']:.3f} | {row['default_style']:.3f} |")
    means = {name: float(np.mean([row[name] for row in rows])) for name in STYLES}
    print(f"| mean | {np.mean([row['free'] for row in rows]):.3f} |" if free else "| mean | - |", end="")
    print(f" {means['own_style']:.3f} | {means['default_style']:.3f} |")
    if args.json:
        args.json.write_text(json.dumps({"sentences": sentences, "no_f0": args.no_f0, "rows": rows,
                                         "means": means}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
