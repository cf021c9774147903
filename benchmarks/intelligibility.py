"""How intelligible is a voice? Word error rate of an offline recogniser, beside its teachers'.

Synthesizes held-out sentences (WordNet examples that are not in the voice's training text) with
the voice, once per speaker, and with the teacher engines that spoke its training corpus (flite
voices), transcribes everything with pocketsphinx (`tts.intelligibility`) and prints a table of
WER per system and speaker; also the real-time factor of synthesis on this machine.

    python benchmarks/intelligibility.py                          # the bundled default voice
    python benchmarks/intelligibility.py --model RUN/model.safetensors --exclude data/synth/metadata.csv
    python benchmarks/intelligibility.py --sentences 50 --json results.json

The goal for shipped voices: WER within 0.10 of the teachers' on the same sentences.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from tts import Synthesizer
from tts.audio import load_audio
from tts.corpus.engines import get_engine
from tts.corpus.sentences import read_sentences
from tts.intelligibility import transcribe, word_error_rate


def held_out_sentences(count: int, seed: int, exclude: list[Path]) -> list[str]:
    """`count` WordNet sentences of 4-12 words, none of them in the `exclude` metadata files."""
    seen = set()
    for metadata in exclude:
        for line in metadata.read_text(encoding="utf-8").splitlines():
            fields = line.split("|")
            if len(fields) > 1:
                seen.add(fields[1].strip().lower())
    candidates = read_sentences("wordnet", seed=seed, min_words=4, max_words=12)
    chosen = [sentence for sentence in candidates if sentence.lower() not in seen][:count]
    if len(chosen) < count:
        raise SystemExit(f"only {len(chosen)} held-out sentences available")
    return chosen


def teacher_transcripts(voice: str, sentences: list[str]) -> list[str]:
    engine = get_engine("flite")
    hypotheses = []
    with tempfile.TemporaryDirectory() as folder:
        for index, sentence in enumerate(sentences):
            wav = engine.synthesize(voice, sentence, Path(folder) / f"{index}.wav")
            hypotheses.append(transcribe(load_audio(wav, 16000), 16000))
    return hypotheses


def voice_transcripts(synth: Synthesizer, speaker: str | None, sentences: list[str],
                      seed: int) -> tuple[list[str], float, float]:
    """Transcripts, seconds of audio made, and seconds it took."""
    hypotheses, audio_seconds, wall_seconds = [], 0.0, 0.0
    for index, sentence in enumerate(sentences):
        start = time.perf_counter()
        result = synth.synthesize(sentence, speaker=speaker, seed=seed + index)
        wall_seconds += time.perf_counter() - start
        audio_seconds += result.duration
        hypotheses.append(transcribe(result.audio, result.sample_rate))
    return hypotheses, audio_seconds, wall_seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="mel generator checkpoint (default: the bundled voice)")
    parser.add_argument("--vocoder", help="vocoder checkpoint (default: the voice's own, else Griffin-Lim)")
    parser.add_argument("--sentences", type=int, default=50)
    parser.add_argument("--seed", type=int, default=12345, help="chooses the held-out sentences")
    parser.add_argument("--exclude", type=Path, action="append", default=[],
                        help="metadata.csv whose sentences are training text (repeatable)")
    parser.add_argument("--speakers", help="comma-separated speakers to test (default: all, and as teachers)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    synth = Synthesizer.from_pretrained(args.model, vocoder=args.vocoder)
    speakers = args.speakers.split(",") if args.speakers else list(synth.speakers) or [None]
    sentences = held_out_sentences(args.sentences, args.seed, args.exclude)
    rows = []
    for speaker in speakers:
        hypotheses, audio_seconds, wall_seconds = voice_transcripts(synth, speaker, sentences, args.seed)
        row = {"speaker": speaker, "voice_wer": word_error_rate(sentences, hypotheses),
               "real_time_factor": audio_seconds / wall_seconds}
        if speaker in get_engine("flite").voices:
            row["teacher_wer"] = word_error_rate(sentences, teacher_transcripts(speaker, sentences))
        rows.append(row)
        print(f"  {speaker}: done", file=sys.stderr)

    print(f"\nIntelligibility: {len(sentences)} held-out sentences, pocketsphinx WER "
          f"(torch {torch.__version__}, {args.threads} threads)\n")
    print(f"{'speaker':<10} {'voice WER':>10} {'teacher WER':>12} {'gap':>6} {'synthesis x real time':>22}")
    for row in rows:
        teacher = row.get("teacher_wer")
        gap = f"{row['voice_wer'] - teacher:+.2f}" if teacher is not None else "-"
        print(f"{str(row['speaker']):<10} {row['voice_wer']:>10.3f} "
              f"{(f'{teacher:.3f}' if teacher is not None else '-'):>12} {gap:>6} {row['real_time_factor']:>22.1f}")
    mean = float(np.mean([row["voice_wer"] for row in rows]))
    print(f"\nmean voice WER {mean:.3f}")
    if args.json:
        args.json.write_text(json.dumps({"sentences": sentences, "rows": rows, "mean_voice_wer": mean}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
