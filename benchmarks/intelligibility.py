"""How intelligible is a voice? Word error rate of an offline recogniser, beside its teachers'.

Synthesizes held-out sentences (WordNet examples that are not in the voice's training text) with
the voice, once per speaker, and with the teacher engines that spoke its training corpus (flite
voices), transcribes everything with pocketsphinx (`tts.intelligibility`) and prints a table of
WER per system and speaker. More columns separate the voice's errors from the vocoder's and the
recogniser's: "copy" is the teacher's audio turned into a mel and back through the voice's
vocoder (the best this vocoder allows), with the copy's mel distance to the teacher's mel beside
Griffin-Lim's (how a WaveGlow is compared with it); then the real-time factor of synthesis on
this machine, in process and for `voxflow say` end to end (process start, model load, a 10-word
sentence). A bundled voice is tested on sentences outside the corpus it learnt from (its
`corpus.json`); a checkpoint on sentences outside the `--exclude` corpora.

    python benchmarks/intelligibility.py                          # the bundled default voice
    python benchmarks/intelligibility.py --model flowtron         # the bundled Flowtron, once one ships
    python benchmarks/intelligibility.py --model RUN/model.safetensors --exclude data/synth/metadata.csv
    python benchmarks/intelligibility.py --sentences 50 --json results.json
    python benchmarks/intelligibility.py --model RUN/checkpoints/step_004000/model.safetensors \
        --exclude data/synth/metadata.csv --no-teachers  # a checkpoint's WER only

The goal for shipped voices: WER within 0.10 of the teachers' on the same sentences.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tts import Synthesizer
from tts.api import bundled_training_corpus
from tts.audio import load_audio, mel_spectrogram
from tts.corpus.engines import get_engine
from tts.corpus.sentences import held_out_sentences
from tts.intelligibility import transcribe, word_error_rate


def teacher_transcripts(voice: str, sentences: list[str], synth: Synthesizer) -> dict[str, Any]:
    """Transcripts of the flite teacher's audio and of that audio copied through the voice's mel and
    vocoder, and the copy's mel distance (mean |log-mel difference| against the teacher's mel)
    through the voice's vocoder and through Griffin-Lim."""
    from vocoders import load_vocoder

    engine = get_engine("flite")
    audio_config = synth.voice.audio
    vocoders = {"vocoder": synth.vocoder, "griffin_lim": load_vocoder("griffin_lim", audio_config, synth.device)}
    direct, copied, distances = [], [], {name: [] for name in vocoders}
    with tempfile.TemporaryDirectory() as folder:
        for index, sentence in enumerate(sentences):
            wav = engine.synthesize(voice, sentence, Path(folder) / f"{index}.wav")
            direct.append(transcribe(load_audio(wav, 16000), 16000))
            mel = mel_spectrogram(load_audio(wav, audio_config.sample_rate), audio_config)
            for name, vocoder in vocoders.items():
                with torch.no_grad():
                    audio = vocoder(mel.unsqueeze(0).to(synth.device))[0].float().cpu().numpy()
                if name == "vocoder":
                    copied.append(transcribe(audio, audio_config.sample_rate))
                copy_mel = mel_spectrogram(audio, audio_config)
                frames = min(mel.shape[-1], copy_mel.shape[-1])
                distances[name].append(float((copy_mel[:, :frames] - mel[:, :frames]).abs().mean()))
    return {"teacher_wer": word_error_rate(sentences, direct), "copy_synthesis_wer": word_error_rate(sentences, copied),
            "copy_mel_distance": float(np.mean(distances["vocoder"])),
            "griffin_lim_mel_distance": float(np.mean(distances["griffin_lim"]))}


def say_real_time_factor(model: str | None, vocoder: str | None, threads: int) -> dict[str, float]:
    """`voxflow say` on a 10-word sentence in a fresh process: audio seconds per wall second."""
    sentence = "The quick brown fox jumps over the lazy dog once again."
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "say.wav"
        command = ["voxflow", "say", sentence, "-o", str(out)]
        command += ["--model", model] if model else []
        command += ["--vocoder", vocoder] if vocoder else []
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
        wall = time.perf_counter() - start
        duration = len(load_audio(out, 16000)) / 16000
    return {"audio_seconds": duration, "wall_seconds": wall, "real_time_factor": duration / wall}


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
                        help="metadata.csv (or corpus.json) whose sentences are training text (repeatable; "
                             "default for a bundled voice: the corpus it learnt from)")
    parser.add_argument("--speakers", help="comma-separated speakers to test (default: all, and as teachers)")
    parser.add_argument("--no-teachers", action="store_true",
                        help="only the voice's WER, about 3 x faster: for comparing checkpoints (the teacher "
                             "and copy columns do not depend on the voice's weights)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    synth = Synthesizer.from_pretrained(args.model, vocoder=args.vocoder)
    speakers = args.speakers.split(",") if args.speakers else list(synth.speakers) or [None]
    sentences = held_out_sentences(args.sentences, args.seed, args.exclude or bundled_training_corpus(args.model))
    rows = []
    for speaker in speakers:
        hypotheses, audio_seconds, wall_seconds = voice_transcripts(synth, speaker, sentences, args.seed)
        row = {"speaker": speaker, "voice_wer": word_error_rate(sentences, hypotheses),
               "real_time_factor": audio_seconds / wall_seconds, "hypotheses": hypotheses}
        if speaker in get_engine("flite").voices and not args.no_teachers:
            row.update(teacher_transcripts(speaker, sentences, synth))
        rows.append(row)
        print(f"  {speaker}: done", file=sys.stderr)

    print(f"\nIntelligibility: {len(sentences)} held-out sentences, pocketsphinx WER "
          f"(torch {torch.__version__}, {args.threads} threads)\n")
    print(f"{'speaker':<10} {'voice WER':>10} {'teacher WER':>12} {'gap':>6} {'copy WER':>9} "
          f"{'copy mel dist':>14} {'GL mel dist':>12} {'synthesis x real time':>22}")

    def cell(value: float | None, width: int) -> str:
        return f"{(f'{value:.3f}' if value is not None else '-'):>{width}}"

    for row in rows:
        teacher = row.get("teacher_wer")
        gap = f"{row['voice_wer'] - teacher:+.2f}" if teacher is not None else "-"
        print(f"{str(row['speaker']):<10} {row['voice_wer']:>10.3f} {cell(teacher, 12)} {gap:>6} "
              f"{cell(row.get('copy_synthesis_wer'), 9)} {cell(row.get('copy_mel_distance'), 14)} "
              f"{cell(row.get('griffin_lim_mel_distance'), 12)} {row['real_time_factor']:>22.1f}")
    print(f"(vocoder: {type(synth.vocoder).__name__}; mel distances are of the teacher's mel copied "
          "through it and through Griffin-Lim)")
    mean = float(np.mean([row["voice_wer"] for row in rows]))
    print(f"\nmean voice WER {mean:.3f}")
    say = say_real_time_factor(args.model, args.vocoder, args.threads)
    print(f"voxflow say, 10 words, fresh process: {say['audio_seconds']:.2f} s of audio in "
          f"{say['wall_seconds']:.2f} s ({say['real_time_factor']:.2f} x real time)")
    if args.json:
        args.json.write_text(json.dumps({"sentences": sentences, "rows": rows, "mean_voice_wer": mean,
                                         "voxflow_say": say}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
