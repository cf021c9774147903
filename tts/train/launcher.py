"""`python -m tts.train.launcher ARGS` is `torchrun ARGS` that stops on a signal with one line.

`voxflow train --nproc` starts this. On SIGTERM or SIGINT torchrun passes the signal to its
workers (each finishes its step, saves and exits) and then raises `SignalException`, whose
traceback says nothing the user can act on. Here it becomes one line and exit status 128 + the
signal's number, as a shell reports a process stopped by a signal. Worker failures keep
torchrun's own report.
"""

from __future__ import annotations

import signal
import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    from torch.distributed import run
    from torch.distributed.elastic.multiprocessing.api import SignalException

    try:
        run.main(argv)
    except SignalException as stop:
        name = signal.Signals(stop.sigval).name
        print(f"voxflow train: stopped by {name}; the workers save their step before they exit "
              "(continue with --resume)", file=sys.stderr)
        return 128 + int(stop.sigval)
    return 0


if __name__ == "__main__":
    sys.exit(main())
