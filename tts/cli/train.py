"""`voxflow train KIND`: train a model on a data set with the shared engine.

Single process: `voxflow train tacotron2 --data DIR --out RUN`. Several processes:
`voxflow train tacotron2 ... --nproc 2` starts them through torchrun (`torch.distributed.run`),
each running `python -m tts.train tacotron2 ...`, the same command without the launcher options;
`torchrun --nproc_per_node 2 -m tts.train tacotron2 ...` does the same by hand, and takes every
torchrun option (several machines: docs/training.md). DDP; the engine reads torchrun's
environment. A stopped run (Ctrl-C, SIGTERM, a crash) continues with `--resume`.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

from tts.errors import UserError

__all__ = ["register", "run", "launch", "worker_argv"]


_EPILOG = """examples:
  voxflow train tacotron2 --data data/LJSpeech-1.1 --out runs/lj --config small
  voxflow train tacotron2 --data data/synthetic --out runs/tiny --config tiny --set train.max_steps=5000
  voxflow train tacotron2 --data data/my_voice --out runs/my_voice --config my.json --set train.batch_size=8
  voxflow train tacotron2 --data data/my_voice --out runs/my_voice --resume
  voxflow train tacotron2 --data data/new_voice --out runs/new --warm-start tacotron2_statedict.pt \\
      --ignore-layers embedding.weight --set train.learning_rate=3e-4
  voxflow train tacotron2 --data data/lj --out runs/lj2 --nproc 2 --set train.batch_size=8
  torchrun --nproc_per_node 2 -m tts.train tacotron2 --data data/lj --out runs/lj2
  voxflow train tacotron2 --data /shared/lj --out /shared/runs/lj --nproc 8 --nnodes 2 --rdzv-endpoint node0:29500

configs: a preset (nvidia, small, tiny) or a JSON file {"preset": "small", "model": {...}, "train": {...}};
--set model.KEY=VALUE / train.KEY=VALUE overrides any field. The run folder holds config.json,
model.safetensors (the latest weights), checkpoints/ and TensorBoard logs/. train.batch_size is per
process: an optimizer step trains on batch_size × processes × train.grad_accumulation items.
See docs/training.md for several processes or machines, mixed precision and broken data files.
"""

# Options of the launcher (`--nproc` ...), not passed on to the training processes it starts.
_LAUNCHER_OPTIONS = ("nproc", "nnodes", "rdzv_endpoint")


def register(subparsers, formatter_class) -> None:
    parser = subparsers.add_parser("train", help="train a model on a data set", epilog=_EPILOG,
                                   formatter_class=formatter_class,
                                   description="Train a model with the shared engine (checkpoints, resume, TensorBoard).")
    from tts.train.task import TRAINABLE_KINDS

    parser.add_argument("kind", choices=TRAINABLE_KINDS, help="which model to train")
    parser.add_argument("--data", type=Path, required=True, help="LJSpeech folder or NVIDIA filelist")
    parser.add_argument("--out", type=Path, required=True, help="run folder for checkpoints and logs")
    parser.add_argument("--config", help="preset name (nvidia, small, tiny) or a .json config file (default: small)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field, e.g. train.batch_size=8 or model.decoder.rnn_dim=512")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    parser.add_argument("--warm-start", type=Path, metavar="CKPT",
                        help="start from this checkpoint's weights (voxflow .safetensors or NVIDIA .pt)")
    parser.add_argument("--ignore-layers", default="", metavar="A,B",
                        help="with --warm-start: layers (key prefixes) to keep freshly initialised")
    parser.add_argument("--freeze", default="", metavar="A,B", help="layers (key prefixes) not to train")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    launch = parser.add_argument_group("several processes (DDP through torchrun; see docs/training.md)")
    launch.add_argument("--nproc", type=int, metavar="N",
                        help="start N training processes on this machine (torchrun --nproc_per_node N); "
                             "gloo on CPU, nccl on GPU with one GPU per process")
    launch.add_argument("--nnodes", type=int, default=1, metavar="M",
                        help="with --nproc: the number of machines; run the same command on each")
    launch.add_argument("--rdzv-endpoint", metavar="HOST:PORT",
                        help="with --nnodes > 1: where the machines meet (c10d rendezvous, e.g. the first one's host)")
    parser.set_defaults(func=run, train_parser=parser)


def _names(value: str) -> list[str]:
    return [name.strip() for name in value.split(",") if name.strip()]


def worker_argv(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[str]:
    """The parsed command line again, minus the launcher options: what each process runs.

    Rebuilt from the parser's own options, so an option added later is passed on too."""
    argv: list[str] = []
    for action in parser._actions:  # argparse keeps no public list of a parser's options
        value = getattr(args, action.dest, None)
        if action.dest in (*_LAUNCHER_OPTIONS, "help") or value is None or value == action.default:
            continue
        if not action.option_strings:  # the positional KIND
            argv.insert(0, str(value))
        elif action.nargs == 0:  # a flag (store_true)
            argv.append(action.option_strings[-1])
        else:
            for item in value if isinstance(value, list) else [value]:
                argv += [action.option_strings[-1], str(item)]
    return argv


def launch(args: argparse.Namespace) -> int:
    """Run this command in `args.nproc` processes per machine under torchrun; its exit status."""
    if args.nproc < 1 or args.nnodes < 1:
        raise UserError(f"--nproc and --nnodes: expected positive numbers, found {args.nproc} and {args.nnodes}")
    if "LOCAL_RANK" in os.environ:
        raise UserError("--nproc starts torchrun itself; drop it when running under torchrun")
    _configs(args)  # a mistake in --config or --set is one clear line here, not one per process
    command = [sys.executable, "-m", "tts.train.launcher", "--nproc_per_node", str(args.nproc)]
    if args.nnodes > 1:
        if not args.rdzv_endpoint:
            raise UserError("--nnodes > 1 needs --rdzv-endpoint HOST:PORT, the same on every machine")
        command += ["--nnodes", str(args.nnodes), "--rdzv_backend", "c10d", "--rdzv_endpoint", args.rdzv_endpoint]
    else:
        command.append("--standalone")  # a private rendezvous on a free port
    command += ["-m", "tts.train", *(["-v"] if args.verbose else []), *worker_argv(args.train_parser, args)]
    process = subprocess.Popen(command)
    # SIGTERM (a job scheduler) goes on to torchrun, which passes it to the workers: they save and stop.
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: process.send_signal(signal.SIGTERM))
    try:
        while True:
            try:
                code = process.wait()
                return code if code >= 0 else 128 - code
            except KeyboardInterrupt:  # Ctrl-C reached torchrun and the workers too; wait while they save
                continue
    finally:
        signal.signal(signal.SIGTERM, previous)


def _configs(args: argparse.Namespace):
    """The task class, model config and train config the command asks for."""
    from tts.train import read_run_config, task_for
    from tts.train.config import TrainConfig
    from tts.train.setup import apply_split_overrides, resolve_configs

    task_class = task_for(args.kind)
    if args.resume:
        if args.config or args.warm_start:
            raise UserError("--resume continues a run with its own config; drop --config and --warm-start")
        saved = read_run_config(args.out)
        if saved["kind"] != args.kind:
            raise UserError(f"{args.out} holds a {saved['kind']} run, not {args.kind}")
        model_config = task_class.config_class.from_dict(saved["model"])
        train_config = TrainConfig.from_dict(saved["train"])
        if any(item.startswith("model.") for item in args.overrides):
            raise UserError("--resume cannot change the model config; only train.* may be overridden")
        model_config, train_config = apply_split_overrides(model_config, train_config, args.overrides)
    else:
        model_config, train_config = resolve_configs(task_class, args.config, args.overrides)
    if args.ignore_layers and not args.warm_start:
        raise UserError("--ignore-layers only applies with --warm-start")
    return task_class, model_config, train_config


def run(args: argparse.Namespace) -> int:
    if args.nproc is not None:
        return launch(args)
    if args.nnodes != 1 or args.rdzv_endpoint:
        raise UserError("--nnodes and --rdzv-endpoint only apply with --nproc")
    from tts.train import Trainer

    task_class, model_config, train_config = _configs(args)
    trainer = Trainer(task_class(model_config), train_config, args.out, args.data, resume=args.resume,
                      warm_start_from=args.warm_start, ignore_layers=_names(args.ignore_layers),
                      freeze_layers=_names(args.freeze), progress_bar=not args.no_progress)
    progress = trainer.fit()
    if trainer.dist.is_main:
        skipped = (f"; skipped {trainer.skipped_items} item loads that failed ({len(trainer.bad_items)} "
                   "distinct items, see the warnings)" if trainer.skipped_items else "")
        print(f"stopped at step {progress.step}; weights in {args.out / 'model.safetensors'}{skipped}", file=sys.stderr)
    trainer.dist.close()
    return 0
