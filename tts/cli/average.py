"""`voxflow average`: one model whose weights are the mean of a run's last checkpoints (`tts.train.averaging`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tts.errors import UserError

__all__ = ["register", "run"]

_EPILOG = """examples:
  voxflow average runs/lj -o lj_averaged.safetensors              # every step checkpoint the run kept
  voxflow average runs/lj --last 3 -o lj_averaged.safetensors     # its newest three
  voxflow average a.safetensors b.safetensors c.safetensors -o mean.safetensors --half

Average checkpoints of one run, late in training (the loss levelled off), a few hundred steps
apart: the mean smooths out the noise of the last steps and often speaks more clearly than the
last checkpoint alone (docs/training.md). A run keeps its newest `train.keep_checkpoints` step
folders (3 by default) every `train.checkpoint_every` steps. The output is a normal checkpoint
with the last file's config, speakers and step, and the files it averaged in its metadata.
"""


def register(subparsers, formatter_class) -> None:
    parser = subparsers.add_parser("average", help="average the weights of a run's last checkpoints",
                                   epilog=_EPILOG, formatter_class=formatter_class,
                                   description="Write one checkpoint whose weights are the mean of several "
                                               "checkpoints of one training run.")
    parser.add_argument("sources", type=Path, nargs="+", metavar="SRC",
                        help="a training run folder, or two or more .safetensors checkpoints of one run")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="DST", help="output .safetensors file")
    parser.add_argument("--last", type=int, metavar="N",
                        help="with a run folder: average its newest N step checkpoints (default: all it kept)")
    parser.add_argument("--half", action="store_true", help="store floating-point weights as float16 (half the size)")
    parser.add_argument("--force", action="store_true", help="overwrite DST if it exists")
    parser.set_defaults(func=run)


def _checkpoint_files(sources: list[Path], last: int | None) -> list[Path]:
    from tts.train.averaging import run_checkpoints

    if len(sources) == 1 and sources[0].is_dir():
        return run_checkpoints(sources[0], last)
    if last is not None:
        raise UserError("--last applies to a run folder; with checkpoint files, name the ones to average")
    for source in sources:
        if source.is_dir():
            raise UserError(f"{source}: a folder; give one run folder alone, or checkpoint files")
        if not source.is_file():
            raise UserError(f"{source}: no such file")
    return sources


def run(args: argparse.Namespace) -> int:
    from tts.train.averaging import average_checkpoints, save_average

    output = args.output
    if output.suffix != ".safetensors":
        raise UserError(f"{output}: the output must end in .safetensors")
    if output.exists() and not args.force:
        raise UserError(f"{output} already exists; pass --force to overwrite it")
    files = _checkpoint_files(args.sources, args.last)
    if any(output.resolve() == path.resolve() for path in files):
        raise UserError(f"{output}: the output must not be one of the checkpoints it averages")
    checkpoint = average_checkpoints(files)
    save_average(output, checkpoint, half=args.half)
    steps = [source["step"] for source in json.loads(checkpoint.metadata["averaged_from"])]
    floating = [tensor for tensor in checkpoint.state_dict.values() if tensor.is_floating_point()]
    precision = "float16" if args.half else str(floating[0].dtype).removeprefix("torch.") if floating else "-"
    print(f"wrote {output}: the mean of {len(files)} {checkpoint.kind} checkpoints "
          f"(steps {', '.join('?' if step is None else str(step) for step in steps)}); "
          f"{sum(tensor.numel() for tensor in floating):,} values, {precision}, {output.stat().st_size / 1e6:.1f} MB")
    return 0
