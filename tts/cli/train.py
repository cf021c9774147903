"""`voxflow train KIND`: train a model on a data set with the shared engine.

Single process: `voxflow train tacotron2 --data DIR --out RUN`. Several processes or machines:
`torchrun --nproc_per_node 2 -m tts.cli train tacotron2 ...` (DDP; the engine reads torchrun's
environment). A stopped run (Ctrl-C, SIGTERM, a crash) continues with `--resume`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tts.errors import UserError

__all__ = ["register", "run"]


_EPILOG = """examples:
  voxflow train tacotron2 --data data/LJSpeech-1.1 --out runs/lj --config small
  voxflow train tacotron2 --data data/synthetic --out runs/tiny --config tiny --set train.max_steps=5000
  voxflow train tacotron2 --data data/my_voice --out runs/my_voice --config my.json --set train.batch_size=8
  voxflow train tacotron2 --data data/my_voice --out runs/my_voice --resume
  voxflow train tacotron2 --data data/new_voice --out runs/new --warm-start tacotron2_statedict.pt \\
      --ignore-layers embedding.weight --set train.learning_rate=3e-4
  torchrun --nproc_per_node 2 -m tts.cli train tacotron2 --data data/lj --out runs/lj2

configs: a preset (nvidia, small, tiny) or a JSON file {"preset": "small", "model": {...}, "train": {...}};
--set model.KEY=VALUE / train.KEY=VALUE overrides any field. The run folder holds config.json,
model.safetensors (the latest weights), checkpoints/ and TensorBoard logs/.
"""


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
    parser.set_defaults(func=run)


def _names(value: str) -> list[str]:
    return [name.strip() for name in value.split(",") if name.strip()]


def run(args: argparse.Namespace) -> int:
    from tts.train import Trainer, read_run_config, task_for
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
    trainer = Trainer(task_class(model_config), train_config, args.out, args.data, resume=args.resume,
                      warm_start_from=args.warm_start, ignore_layers=_names(args.ignore_layers),
                      freeze_layers=_names(args.freeze), progress_bar=not args.no_progress)
    progress = trainer.fit()
    print(f"stopped at step {progress.step}; weights in {args.out / 'model.safetensors'}", file=sys.stderr)
    trainer.dist.close()
    return 0
