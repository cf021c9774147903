"""`python -m tts.train KIND ...` is `voxflow train KIND ...`, for launchers that start a module:

    torchrun --nproc_per_node 2 -m tts.train tacotron2 --data data/lj --out runs/lj

(`voxflow train ... --nproc 2` runs exactly that.) A leading `-v` logs progress details, as
`voxflow -v train` does.
"""

from __future__ import annotations

import sys

from tts.cli import main


def _cli_argv(argv: list[str]) -> list[str]:
    verbose = argv[:1] if argv[:1] in (["-v"], ["--verbose"]) else []
    return [*verbose, "train", *argv[len(verbose):]]


if __name__ == "__main__":
    sys.exit(main(_cli_argv(sys.argv[1:])))
