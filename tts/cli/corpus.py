"""`voxflow corpus build`: make a multi-speaker training corpus with Debian's speech engines.

A thin layer over `tts.corpus.build_corpus`: parses the options, builds (or resumes) the corpus
and prints one summary line.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tts.corpus import ENGINES, SOURCES

__all__ = ["register", "run"]

_EPILOG = """examples:
  voxflow corpus build --out data/flite4 --sentences 2000
  voxflow corpus build --out data/slt_rms --voices slt,rms --sentences 500 --seed 1 --max-words 12
  voxflow corpus build --out data/hts --engine festival --source fortunes --no-prosody

Rerunning the same command after an interruption makes only the missing clips; rerunning it
with a larger --sentences grows the corpus, keeping every clip it has.
"""


def register(subparsers, formatter_class) -> None:
    parser = subparsers.add_parser("corpus", help="build a synthetic training corpus", formatter_class=formatter_class,
                                   description="Synthetic training corpora spoken by real speech engines.")
    commands = parser.add_subparsers(dest="corpus_command", metavar="COMMAND", required=True)
    build = commands.add_parser("build", help="speak real sentences with flite/festival into an LJSpeech folder",
                                epilog=_EPILOG, formatter_class=formatter_class,
                                description="Build (or resume) a multi-speaker corpus in LJSpeech layout:\n"
                                            "DIR/metadata.csv (id|text|normalized_text|speaker) and DIR/wavs/ID.wav\n"
                                            "(22050 Hz mono 16-bit); DIR/corpus.json records the settings.")
    build.add_argument("--out", type=Path, required=True, metavar="DIR",
                       help="the corpus folder (new, or one to resume)")
    build.add_argument("--engine", choices=list(ENGINES), default="flite", help="speech engine (default: flite)")
    build.add_argument("--voices", help="comma-separated voices; flite: slt,rms,awb,kal16 (the default); "
                                        "festival: slt_hts; espeak-ng: en_us,en_gb,en_us_f,en_gb_f")
    build.add_argument("--sentences", type=int, default=1000, metavar="N", help="number of clips (default: 1000)")
    build.add_argument("--seed", type=int, default=0, help="picks the sentences and the prosody (default: 0)")
    build.add_argument("--source", choices=list(SOURCES), default="wordnet",
                       help="sentence source: WordNet usage examples or the fortunes files (default: wordnet)")
    build.add_argument("--prosody", action=argparse.BooleanOptionalAction, default=True,
                       help="vary speaking rate and pitch per clip (default: on)")
    build.add_argument("--min-words", type=int, default=3, help="shortest sentence in words (default: 3)")
    build.add_argument("--max-words", type=int, default=20, help="longest sentence in words (default: 20)")
    build.add_argument("--workers", type=int, default=2, help="engine processes run at once (default: 2)")
    build.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tts.corpus import build_corpus

    voices = [voice.strip() for voice in args.voices.split(",") if voice.strip()] if args.voices else None
    out = build_corpus(args.out, engine=args.engine, voices=voices, n_sentences=args.sentences, seed=args.seed,
                       source=args.source, prosody=args.prosody, min_words=args.min_words,
                       max_words=args.max_words, workers=args.workers)
    n_clips = sum(1 for line in (out / "metadata.csv").read_text(encoding="utf-8").splitlines() if line.strip())
    print(f"{out}: {n_clips} clips in LJSpeech layout (metadata.csv, wavs/)")
    return 0
