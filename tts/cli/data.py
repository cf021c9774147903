"""`voxflow data check`: find everything wrong with a training data set before training on it.

Prints one line per finding (`PATH:LINE: severity kind: message`), then a summary; exits 1 when
there is an error (or, with `--strict`, any warning), else 0.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tts.data_check import DEFAULT_CLEANERS, check_dataset
from tts.errors import UserError

__all__ = ["register", "run"]

_EPILOG = """examples:
  voxflow data check data/LJSpeech-1.1
  voxflow data check filelists/libritts_train.txt --symbol-set flowtron --json report.json
  voxflow data check data/my_voice --sample-rate 22050 --min-seconds 1 --max-seconds 12 --strict

checks: format, empty-text, unknown-characters, duplicate-text (warning), missing-audio,
unreadable-audio, too-short, too-long, sample-rate (warning), silent, clipping (warning),
duplicate-audio, missing-speaker.
"""


def register(subparsers, formatter_class) -> None:
    parser = subparsers.add_parser("data", help="check training data sets", formatter_class=formatter_class,
                                   description="Tools for training data sets (LJSpeech folders, NVIDIA filelists).")
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    check = actions.add_parser("check", help="report every problem of a data set, with file and line",
                               epilog=_EPILOG, formatter_class=formatter_class,
                               description="Check every line and audio file of a data set; exit 1 on errors.")
    check.add_argument("path", type=Path, metavar="DIR_OR_FILELIST",
                       help="an LJSpeech folder (metadata.csv + wavs/) or an NVIDIA filelist (path|text[|speaker])")
    check.add_argument("--symbol-set", choices=tuple(DEFAULT_CLEANERS), default="tacotron2",
                       help="the text path whose symbols the text must fit (default: tacotron2)")
    check.add_argument("--cleaners", type=_cleaner_list,
                       help="comma-separated cleaners (default: english_cleaners for tacotron2, "
                            "flowtron_cleaners for flowtron and mellotron)")
    check.add_argument("--sample-rate", type=int, default=22050, help="expected sample rate in Hz (default: 22050)")
    check.add_argument("--min-seconds", type=float, default=0.5, help="shortest clip allowed (default: 0.5)")
    check.add_argument("--max-seconds", type=float, default=20.0, help="longest clip allowed (default: 20)")
    check.add_argument("--json", type=Path, metavar="REPORT.json", help="also write the findings and summary as JSON")
    check.add_argument("--strict", action="store_true", help="exit 1 on warnings too")
    check.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    check.set_defaults(func=run)


def _cleaner_list(value: str) -> list[str]:
    cleaners = [name.strip() for name in value.split(",") if name.strip()]
    if not cleaners:
        raise argparse.ArgumentTypeError("expected one or more cleaner names, separated by commas")
    return cleaners


def run(args: argparse.Namespace) -> int:
    if args.json is not None and not args.json.parent.is_dir():
        raise UserError(f"--json {args.json}: the folder {args.json.parent} does not exist")
    report = check_dataset(args.path, symbol_set=args.symbol_set, cleaners=args.cleaners,
                           sample_rate=args.sample_rate, min_seconds=args.min_seconds,
                           max_seconds=args.max_seconds, progress=not args.quiet)
    for finding in report.findings:
        print(finding)
    if report.findings:
        print()
    print(report.summary())
    if args.json is not None:
        report.write_json(args.json)
    return 1 if report.failed(strict=args.strict) else 0
