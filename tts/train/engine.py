"""The training loop every model shares: optimizer, schedule, AMP, checkpoints, resume, logging.

    trainer = Trainer(task, TrainConfig(...), run="runs/my_voice", data="data/my_voice")
    trainer.fit()      # until train.max_steps, or until SIGINT/SIGTERM (it saves, then stops)

- Checkpoints every `checkpoint_every` steps and at exit, atomically (see `tts.train.state`);
  `resume=True` continues from the newest one with the model, optimizer, scaler, step, position
  in the epoch and RNG state restored, so an interrupted run follows the same path as an
  uninterrupted one.
- A non-finite loss or gradient skips the step; `max_bad_steps` in a row stop the run with advice.
- Validation every `validate_every` steps: mean losses, and the task's figures/audio, to
  TensorBoard in `RUN/logs`. tqdm shows the loss and steps/s.
- Several processes under `torchrun`: DDP, each rank its share of the batches, rank 0 writes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
from pathlib import Path
from typing import Any, Sequence

import torch
from torch.nn.parallel import DistributedDataParallel

from tts.checkpoint import read_checkpoint
from tts.data import LengthBucketSampler
from tts.errors import TrainingError
from tts.train.config import TrainConfig, learning_rate_at
from tts.train.distributed import Distributed
from tts.train.state import Progress, latest_step_dir, load_train_state, prune_checkpoints, save_step
from tts.train.task import Task, move_to
from tts.train.warm_start import freeze, warm_start

__all__ = ["Trainer", "read_run_config"]

log = logging.getLogger(__name__)


def read_run_config(run: Path) -> dict[str, Any]:
    path = Path(run) / "config.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise TrainingError(f"{path}: cannot read the run's config ({error})") from None


class Trainer:
    """Trains `task`'s model on `data`, writing everything into the run folder `run`."""

    def __init__(self, task: Task, config: TrainConfig, run: str | Path, data: str | Path, *,
                 resume: bool = False, warm_start_from: str | Path | None = None,
                 ignore_layers: Sequence[str] = (), freeze_layers: Sequence[str] = (),
                 progress_bar: bool = True, distributed: Distributed | None = None) -> None:
        self.task, self.config, self.run, self.data = task, config, Path(run), Path(data)
        self.dist = distributed or Distributed.from_env()
        self.device = self.dist.device()
        self.progress_bar = progress_bar and self.dist.is_main
        self.progress = Progress()
        self._check_run_folder(resume)
        torch.manual_seed(config.seed + self.dist.rank)
        self.data_sets = task.build_data(self.data, self.run / "cache", config.val_size, config.seed)
        self.model = task.build_model().to(self.device)
        if warm_start_from is not None and not resume:
            self._warm_start(Path(warm_start_from), ignore_layers)
        freeze(self.model, freeze_layers)
        self.optimizer = torch.optim.Adam([p for p in self.model.parameters() if p.requires_grad],
                                          lr=config.learning_rate, weight_decay=config.weight_decay)
        self.autocast_dtype, self.scaler = self._mixed_precision()
        if resume:
            self._resume()
        elif self.dist.is_main:
            self._write_run_config(warm_start_from, ignore_layers, freeze_layers)
        self.forward_model = (DistributedDataParallel(self.model, device_ids=[self.device.index]
                                                      if self.device.type == "cuda" else None)
                              if self.dist.enabled else self.model)
        self._stop_requested = False
        self._bad_steps = 0  # non-finite steps in a row
        self._writer = None

    # -- set-up -------------------------------------------------------------------------------

    def _check_run_folder(self, resume: bool) -> None:
        has_run = (self.run / "config.json").exists()
        if resume and not latest_step_dir(self.run):
            raise TrainingError(f"{self.run}: there is no checkpoint to resume from")
        if not resume and has_run:
            raise TrainingError(f"{self.run} already holds a training run; pass --resume to continue it "
                                "or choose another --out folder")

    def _warm_start(self, path: Path, ignore_layers: Sequence[str]) -> None:
        if path.suffix == ".safetensors":
            state_dict = read_checkpoint(path).state_dict
        else:
            from tts.legacy import read_legacy_state_dict

            state_dict = read_legacy_state_dict(path)
        loaded = warm_start(self.model, state_dict, ignore_layers, source=str(path))
        log.info("warm start: %d tensors from %s", len(loaded), path)

    def _mixed_precision(self) -> tuple[torch.dtype | None, torch.amp.GradScaler | None]:
        if self.device.type != "cuda" or self.config.amp == "off":
            return None, None
        use_bf16 = self.config.amp == "bf16" or (self.config.amp == "auto" and torch.cuda.is_bf16_supported())
        if use_bf16:
            return torch.bfloat16, None
        return torch.float16, torch.amp.GradScaler("cuda")

    def _write_run_config(self, warm_start_from, ignore_layers, freeze_layers) -> None:
        self.run.mkdir(parents=True, exist_ok=True)
        record = {"kind": self.task.kind, "model": self.task.model_config.to_dict(), "train": self.config.to_dict(),
                  "data": str(self.data.resolve()),
                  "warm_start": {"from": str(warm_start_from) if warm_start_from else None,
                                 "ignore_layers": list(ignore_layers), "freeze": list(freeze_layers)}}
        (self.run / "config.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")

    def _resume(self) -> None:
        step_dir = latest_step_dir(self.run)
        checkpoint = read_checkpoint(step_dir / "model.safetensors", device=str(self.device))
        self.model.load_state_dict(checkpoint.state_dict)
        self.progress, scaler_state = load_train_state(step_dir, self.optimizer)
        if self.scaler is not None and scaler_state:
            self.scaler.load_state_dict(scaler_state)
        log.info("resumed from %s (step %d)", step_dir, self.progress.step)

    # -- the loop -----------------------------------------------------------------------------

    def _batches(self, sampler: LengthBucketSampler):
        """This epoch's batches, skipping those consumed before a resume."""
        sampler.set_epoch(self.progress.epoch)
        if hasattr(self.data_sets.train, "set_epoch"):  # e.g. WaveGlow draws new segments each epoch
            self.data_sets.train.set_epoch(self.progress.epoch)
        batches = list(sampler)[self.progress.batch_in_epoch:]
        # Its own generator: a DataLoader otherwise draws a seed from the global RNG, which would
        # make a resumed run (a new loader mid-epoch) diverge from an uninterrupted one.
        generator = torch.Generator().manual_seed(self.config.seed * 1000 + self.progress.epoch)
        return torch.utils.data.DataLoader(self.data_sets.train, batch_sampler=batches,
                                           collate_fn=self.data_sets.collate,
                                           num_workers=self.config.num_workers, generator=generator)

    def fit(self) -> Progress:
        """Train until `max_steps` or a stop signal; the last state is always checkpointed."""
        config = self.config
        sampler = LengthBucketSampler(self.data_sets.train_lengths, config.batch_size, seed=config.seed,
                                      rank=self.dist.rank, world_size=self.dist.world_size)
        if len(sampler) == 0:
            raise TrainingError(f"{self.data}: too few utterances for one batch of {config.batch_size} "
                                f"per process; lower train.batch_size")
        bar = self._progress_bar()
        with self._stop_on_signals():
            while self.progress.step < config.max_steps and not self._stop_requested:
                for batch in self._batches(sampler):
                    self._train_step(batch, bar)
                    self.progress.batch_in_epoch += 1
                    if self._after_step():
                        break
                else:
                    self.progress.epoch += 1
                    self.progress.batch_in_epoch = 0
        self._save()
        if bar is not None:
            bar.close()
        if self._writer is not None:
            self._writer.close()
        return self.progress

    def _after_step(self) -> bool:
        """Validate and checkpoint on schedule; True when the loop must stop."""
        step, config = self.progress.step, self.config
        if step % config.validate_every == 0:
            self.validate()
        if step % config.checkpoint_every == 0:
            self._save()
        self._stop_requested = self.dist.any(self._stop_requested, self.device)
        return self._stop_requested or step >= config.max_steps

    def _train_step(self, batch: Any, bar) -> None:
        self.model.train()
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate_at(self.progress.step, self.config)
        batch = move_to(batch, self.device)
        self.task.step = self.progress.step
        autocast = (torch.autocast(self.device.type, dtype=self.autocast_dtype) if self.autocast_dtype
                    else contextlib.nullcontext())
        with autocast:
            loss, logs = self.task.compute_loss(self.forward_model, batch)
        self.optimizer.zero_grad(set_to_none=True)
        finite = bool(torch.isfinite(loss))
        if finite:
            (self.scaler.scale(loss) if self.scaler else loss).backward()
            if self.scaler:
                self.scaler.unscale_(self.optimizer)
            grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
            finite = bool(torch.isfinite(grad_norm))
        self._step_optimizer(finite)
        if finite:
            self._log_step(loss, logs, grad_norm, bar)

    def _step_optimizer(self, finite: bool) -> None:
        if self.scaler is not None:
            self.scaler.step(self.optimizer)  # skips the update itself when gradients overflowed
            self.scaler.update()
        elif finite:
            self.optimizer.step()
        self.progress.step += 1
        self._bad_steps = 0 if finite else self._bad_steps + 1
        if self._bad_steps >= self.config.max_bad_steps:
            self._save()
            raise TrainingError(f"the loss or gradients were not finite for {self._bad_steps} steps in a row "
                                f"(step {self.progress.step}); lower train.learning_rate or check the data. "
                                f"The last state is saved in {self.run}")

    def _log_step(self, loss: torch.Tensor, logs: dict[str, float | torch.Tensor], grad_norm: torch.Tensor,
                  bar) -> None:
        if bar is not None:
            bar.update(1)
        if self.progress.step % self.config.log_every:
            return  # values are read (a device sync on GPU) only on logging steps
        if bar is not None:
            bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
        if self.dist.is_main:
            writer = self._tensorboard()
            writer.add_scalar("train/loss", loss.item(), self.progress.step)
            writer.add_scalar("train/grad_norm", float(grad_norm), self.progress.step)
            writer.add_scalar("train/learning_rate", self.optimizer.param_groups[0]["lr"], self.progress.step)
            for name, value in logs.items():
                writer.add_scalar(f"train/{name}", float(value), self.progress.step)

    # -- validation, checkpoints, logging -----------------------------------------------------

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Mean validation losses (rank 0; the others wait), plus TensorBoard figures and audio."""
        if not self.dist.is_main or len(self.data_sets.validation) == 0:
            self.dist.barrier()
            return {}
        self.model.eval()
        loader = torch.utils.data.DataLoader(self.data_sets.validation, batch_size=self.config.batch_size,
                                             collate_fn=self.data_sets.collate,
                                             generator=torch.Generator().manual_seed(self.config.seed))
        totals: dict[str, float] = {}
        batches = 0
        for batch in loader:
            batch = move_to(batch, self.device)
            loss, logs = self.task.compute_loss(self.model, batch)
            for name, value in {"loss": loss, **logs}.items():
                totals[name] = totals.get(name, 0.0) + float(value)
            batches += 1
        means = {name: total / batches for name, total in totals.items()}
        writer = self._tensorboard()
        for name, value in means.items():
            writer.add_scalar(f"validation/{name}", value, self.progress.step)
        examples = self.task.examples(self.model, batch)
        for name, figure in examples.figures.items():
            writer.add_figure(f"validation/{name}", figure, self.progress.step)
        for name, (audio, rate) in examples.audio.items():
            writer.add_audio(f"validation/{name}", torch.as_tensor(audio), self.progress.step, sample_rate=rate)
        self.model.train()
        self.dist.barrier()
        return means

    def _save(self) -> None:
        if self.dist.is_main:
            save_step(self.run, self.progress, self.model.state_dict(), self.task.kind,
                      self.task.model_config.to_dict(), self.task.symbols(), self.optimizer,
                      self.scaler.state_dict() if self.scaler else None, self.task.checkpoint_metadata())
            prune_checkpoints(self.run, self.config.keep_checkpoints)
        self.dist.barrier()

    def _tensorboard(self):
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.run / "logs"))
        return self._writer

    def _progress_bar(self):
        if not self.progress_bar:
            return None
        from tqdm import tqdm

        return tqdm(total=self.config.max_steps, initial=self.progress.step, unit="step", dynamic_ncols=True)

    @contextlib.contextmanager
    def _stop_on_signals(self):
        """SIGINT/SIGTERM finish the current step, save, and return (a second SIGINT aborts)."""
        def request_stop(signum, frame):
            if self._stop_requested and signum == signal.SIGINT:
                raise KeyboardInterrupt
            log.warning("stopping after this step (signal %d); saving a checkpoint", signum)
            self._stop_requested = True

        try:
            previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        except ValueError:  # not the main thread: signals cannot be caught here
            previous = {}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
