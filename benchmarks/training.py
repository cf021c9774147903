"""Training throughput of the shared engine: steps/s and samples/s for 1 and 2 processes.

    python benchmarks/training.py                   # CPU (gloo), and CUDA (nccl) when present
    python benchmarks/training.py --quick --json out.json

Trains a tiny Tacotron 2 (preset "tiny", random init) on the committed 16-clip corpus
(`tests/fixtures/corpus_small`, or `--data`) with the real engine, each configuration started by
torchrun (`--standalone`) exactly as `voxflow train --nproc N` starts it. Every configuration
trains on the same global batch (8 by default), split as processes × batch × grad_accumulation:
1 × 8, 1 × 4 × 2 and 2 × 4 on CPU; on CUDA 1 × 8, and 2 × 4 when there are two GPUs. CPU runs
share `--threads` torch threads between their processes (2 processes × 1 thread against 1 × 2).

A step is timed from one optimizer step's first forward pass to the next one's, on rank 0: data
loading (mels from the run's cache, filled before training starts), forward, backward, the DDP
all-reduce and the optimizer, as training runs them. After two warm-up steps, the table gives the
median. samples/s = global batch × steps/s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tts.train.config import TrainConfig  # noqa: E402
from tts.train.engine import Trainer  # noqa: E402
from tts.train.tacotron2_task import Tacotron2Task  # noqa: E402

# (processes, batch per process, grad_accumulation): the same global batch, split three ways.
CPU_SPLITS = ((1, 8, 1), (1, 4, 2), (2, 4, 1))


class _TimedTacotron2(Tacotron2Task):
    """Records when each optimizer step's first micro-batch is scored."""

    def __init__(self, model_config) -> None:
        super().__init__(model_config)
        self.started: dict[int, float] = {}

    def compute_loss(self, model, batch):
        self.started.setdefault(self.step, time.perf_counter())
        return super().compute_loss(model, batch)


def worker(args: argparse.Namespace) -> None:
    """One training process (started by torchrun): train, then rank 0 writes the step times."""
    torch.set_num_threads(args.threads)
    model_config, _ = Tacotron2Task.preset("tiny")
    never = 10 ** 9  # no validation, logging or intermediate checkpoints inside the timed steps
    config = TrainConfig(batch_size=args.batch, grad_accumulation=args.accumulation, max_steps=args.warmup + args.steps,
                         checkpoint_every=never, validate_every=never, log_every=never, val_size=0, seed=0)
    task = _TimedTacotron2(model_config)
    trainer = Trainer(task, config, args.out, args.data, progress_bar=False)
    dataset, dist = trainer.data_sets.train, trainer.dist
    for utterance in dataset.utterances[dist.rank::dist.world_size]:  # fill the mel cache: time training alone
        dataset.mel(utterance)
    dist.barrier()
    trainer.fit()
    if trainer.dist.is_main:
        starts = [task.started[step] for step in sorted(task.started)]
        seconds = [later - earlier for earlier, later in zip(starts, starts[1:])][args.warmup:]
        args.result.write_text(json.dumps({"seconds_per_step": seconds, "device": trainer.device.type,
                                           "amp": str(trainer.autocast_dtype or "fp32")}), encoding="utf-8")
    trainer.dist.close()


def bench(device: str, processes: int, batch: int, accumulation: int, args: argparse.Namespace) -> dict:
    """Train one configuration under torchrun; its median step time."""
    threads = max(1, args.threads // processes) if device == "cpu" else args.threads
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""  # the engine picks gloo on CPU when it sees no GPU
    with tempfile.TemporaryDirectory() as folder:
        result = Path(folder) / "result.json"
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes),
                   str(Path(__file__).resolve()), "--worker", "--out", str(Path(folder) / "run"),
                   "--data", str(args.data), "--result", str(result), "--batch", str(batch),
                   "--accumulation", str(accumulation), "--steps", str(args.steps), "--warmup", str(args.warmup),
                   "--threads", str(threads)]
        finished = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
        if finished.returncode != 0:
            raise SystemExit(f"training with {processes} process(es) on {device} failed:\n{finished.stderr[-3000:]}")
        measured = json.loads(result.read_text(encoding="utf-8"))
    seconds = statistics.median(measured["seconds_per_step"])
    global_batch = processes * batch * accumulation
    return {"device": measured["device"], "amp": measured["amp"], "processes": processes, "batch": batch,
            "grad_accumulation": accumulation, "global_batch": global_batch, "threads_per_process": threads,
            "steps": len(measured["seconds_per_step"]), "seconds_per_step": seconds, "steps_per_second": 1 / seconds,
            "samples_per_second": global_batch / seconds}


def _splits(device: str) -> list[tuple[int, int, int]]:
    if device == "cpu":
        return list(CPU_SPLITS)
    return [(1, 8, 1)] + ([(2, 4, 1)] if torch.cuda.device_count() >= 2 else [])


def _row(row: dict) -> str:
    split = f"{row['processes']} × {row['batch']}" + (f" × {row['grad_accumulation']}" if row["grad_accumulation"] > 1
                                                       else "")
    return (f"| tiny, {row['device']} ({row['amp']}) | {split} | {row['processes']} | {row['seconds_per_step']:.3f} | "
            f"{row['steps_per_second']:.2f} | {row['samples_per_second']:.1f} |")


def format_table(rows: list[dict]) -> str:
    """A Markdown table of the results."""
    lines = ["| config | processes × batch × accumulation | processes | s/step | steps/s | samples/s |",
             "|---|---|---|---|---|---|"]
    return "\n".join(lines + [_row(row) for row in rows])


def _header(args: argparse.Namespace, devices: list[str]) -> list[str]:
    lines = [f"torch {torch.__version__}, Python {platform.python_version()}, "
             f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
             f"{args.threads} torch threads on CPU in all; data {args.data}"]
    if "cuda" in devices:
        lines.append(f"CUDA: {torch.cuda.get_device_name(0)} × {torch.cuda.device_count()}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines.append(f"{args.steps} timed steps after {args.warmup} warm-up steps; load average at start {load:.2f}"
                 + (f"; note: {args.note}" if args.note else ""))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--quick", action="store_true", help="fewer timed steps (a smoke run)")
    parser.add_argument("--steps", type=int, help="timed optimizer steps per configuration (default 20; quick 6)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads shared by a run's processes")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="auto: CPU, and CUDA when present")
    parser.add_argument("--data", type=Path, default=ROOT / "tests" / "fixtures" / "corpus_small",
                        help="an LJSpeech folder or filelist (default: the committed 16-clip corpus)")
    parser.add_argument("--note", default="", help="a line for the header (e.g. what else ran on the machine)")
    for name in ("--out", "--result", "--batch", "--accumulation", "--warmup"):  # worker-only
        parser.add_argument(name, help=argparse.SUPPRESS, type=Path if name in ("--out", "--result") else int)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    args.steps = args.steps or (6 if args.quick else 20)
    args.warmup = 2  # allocator, oneDNN kernel choice, DDP's first buckets
    devices = ["cpu"] if args.device in ("auto", "cpu") else []
    if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()):
        devices.append("cuda")
    header = _header(args, devices)
    print("\n".join(header))
    rows = []
    for device in devices:
        for processes, batch, accumulation in _splits(device):
            rows.append(bench(device, processes, batch, accumulation, args))
            print(_row(rows[-1]), flush=True)
    print()
    print(format_table(rows))
    if args.json:
        args.json.write_text(json.dumps({"header": header, "quick": args.quick, "results": rows}, indent=2) + "\n",
                             encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
