"""The `voxflow` command line: a thin argparse layer over the Python API.

Each subcommand lives in its own module with `register(subparsers)`, which adds its parser and
sets `func` to a function `(args) -> int`. User mistakes raise `tts.errors.UserError`; `main`
prints them as one line on stderr and exits 1, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from tts.errors import UserError

__all__ = ["main", "build_parser"]

# Subcommand modules, in the order `voxflow --help` lists them.
_COMMANDS = ("say", "corpus", "data", "train", "average", "convert", "demo")


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the hand-written examples in epilogs as they are laid out."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voxflow",
        description="voxflow: neural speech synthesis (Tacotron 2-GST, Mellotron, Flowtron, WaveGlow).",
        formatter_class=_HelpFormatter,
        epilog="Run `voxflow COMMAND --help` for the options and examples of each command.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMANDS:
        importlib.import_module(f"tts.cli.{name}").register(subparsers, _HelpFormatter)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as error:
        print(f"voxflow {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"voxflow {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
