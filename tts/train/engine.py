"""The training loop every model shares: optimizer, schedule, AMP, checkpoints, resume, logging.

    trainer = Trainer(task, TrainConfig(...), run="runs/my_voice", data="data/my_voice")
    trainer.fit()      # until train.max_steps, or until SIGINT/SIGTERM (it saves, then stops)

- Checkpoints every `checkpoint_every` steps and at exit, atomically (see `tts.train.state`);
  `resume=True` continues from the newest one with the model, optimizer, scaler, step, position
  in the epoch and RNG state restored, so an interrupted run follows the same path as an
  uninterrupted one.
- An optimizer step trains on a global batch (`LengthBucketSampler`): `grad_accumulation`
  micro-batches of `batch_size` items on each process, the loss of each weighted by its share of
  the global batch's items, so for a loss that is a mean over items any split (processes ×
  micro-batches) follows the single-process, single-batch trajectory. The logged losses are the
  global batch's means.
- A non-finite loss or gradient skips the step; `max_bad_steps` in a row stop the run with advice.
- An item that fails to load (a file broken mid-run) is reported once, left out of its batch and
  counted (`train/skipped_items`, the final summary); more than `max_bad_item_fraction` of the
  training items failing stops the run.
- Validation every `validate_every` steps: mean losses, and the task's figures/audio, to
  TensorBoard in `RUN/logs`. tqdm shows the loss and steps/s.
- Several processes under `torchrun`: DDP, each rank its share of every global batch, rank 0
  logs and writes.
- A task's training-only network (`Task.build_critic`, e.g. the refiner's adversarial critic)
  trains in the same optimizer step as the model and is saved in the training state, not in the
  model's weights.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import signal
from pathlib import Path
from typing import Any, Sequence

import torch
from torch.nn.parallel import DistributedDataParallel

from tts.checkpoint import atomic_write, naming_file, read_checkpoint
from tts.data import CollateLoaded, ItemFailure, LengthBucketSampler, LoadedBatch, SkipFailedItems
from tts.errors import TrainingError
from tts.train.config import TrainConfig, learning_rate_at
from tts.train.distributed import Distributed
from tts.train.state import Progress, latest_step_dir, load_train_state, prune_checkpoints, save_step
from tts.train.task import Examples, Task, move_to
from tts.train.warm_start import freeze, train_mode, warm_start

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
        self.dist.barrier()  # every process has looked before rank 0 writes config.json into the folder
        torch.manual_seed(config.seed + self.dist.rank)
        cache = Path(config.cache_dir) if config.cache_dir else self.run / "cache"
        self.data_sets = task.build_data(self.data, cache, config.val_size, config.seed)
        self.model = task.build_model().to(self.device)
        if warm_start_from is not None and not resume:
            self._warm_start(Path(warm_start_from), ignore_layers)
        freeze(self.model, freeze_layers)
        # a training-only network (an adversarial critic) trains in the same optimizer, after the model;
        # outside DDP, so it is initialised from the run's seed alone, the same on every process
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.critic = task.build_critic()
        if self.critic is not None:
            task.critic = self.critic.to(self.device)
        critic_parameters = list(self.critic.parameters()) if self.critic is not None else []
        self.optimizer = torch.optim.Adam([p for p in self.model.parameters() if p.requires_grad] + critic_parameters,
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
        self.skipped_items = 0  # item loads that failed (every process's) since this Trainer started
        self.bad_items: dict[int, str] = {}  # training items that failed to load → their first error

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
        state_dict = self.task.adapt_warm_start(self.model, state_dict)
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
        text = json.dumps(record, indent=2, sort_keys=True) + "\n"
        # atomic: a kill mid-write must not leave a folder that neither starts nor resumes
        atomic_write(self.run / "config.json", lambda path: Path(path).write_text(text, encoding="utf-8"))

    def _resume(self) -> None:
        step_dir = latest_step_dir(self.run)
        checkpoint = read_checkpoint(step_dir / "model.safetensors", device=str(self.device))
        with naming_file(step_dir / "model.safetensors", "checkpoint of this run"):  # e.g. the model config changed
            self.model.load_state_dict(checkpoint.state_dict)
        self.progress, scaler_state = load_train_state(step_dir, self.optimizer, self.critic)
        if self.scaler is not None and scaler_state:
            self.scaler.load_state_dict(scaler_state)
        log.info("resumed from %s (step %d)", step_dir, self.progress.step)

    # -- the loop -----------------------------------------------------------------------------

    def _epoch_steps(self, sampler: LengthBucketSampler):
        """This epoch's optimizer steps, each this process's `grad_accumulation` loaded micro-batches,
        skipping the steps taken before a resume (`batch_in_epoch` counts global batches)."""
        sampler.set_epoch(self.progress.epoch)
        if hasattr(self.data_sets.train, "set_epoch"):  # e.g. WaveGlow draws new segments each epoch
            self.data_sets.train.set_epoch(self.progress.epoch)
        accumulation = sampler.accumulation
        micro_batches = list(sampler)[self.progress.batch_in_epoch * accumulation:]
        # Its own generator: a DataLoader otherwise draws a seed from the global RNG, which would
        # make a resumed run (a new loader mid-epoch) diverge from an uninterrupted one.
        generator = torch.Generator().manual_seed(self.config.seed * 1000 + self.progress.epoch)
        loader = torch.utils.data.DataLoader(SkipFailedItems(self.data_sets.train), batch_sampler=micro_batches,
                                             collate_fn=CollateLoaded(self.data_sets.collate),
                                             num_workers=self.config.num_workers, generator=generator)
        step: list[LoadedBatch] = []
        for loaded in loader:
            step.append(loaded)
            if len(step) == accumulation:
                yield step
                step = []

    def fit(self) -> Progress:
        """Train until `max_steps` or a stop signal; the last state is always checkpointed."""
        config = self.config
        sampler = LengthBucketSampler(self.data_sets.train_lengths, config.batch_size, seed=config.seed,
                                      rank=self.dist.rank, world_size=self.dist.world_size,
                                      accumulation=config.grad_accumulation)
        if len(sampler) == 0:
            raise TrainingError(f"{self.data}: {len(self.data_sets.train_lengths)} training utterances, too few "
                                f"to give each of the {self.dist.world_size} processes one")
        bar = self._progress_bar()
        # The progress bar and the TensorBoard writer (a background thread) close on every way
        # out, a TrainingError included: the logs are flushed, and no thread outlives the run.
        with self._stop_on_signals(), contextlib.ExitStack() as closing:
            if bar is not None:
                closing.callback(bar.close)
            closing.callback(self._close_writer)
            while self.progress.step < config.max_steps and not self._stop_requested:
                tried, trained = 0, False  # an epoch where nothing trains would repeat forever
                for loaded in self._epoch_steps(sampler):
                    stepped = self._train_step(loaded, bar)
                    tried, trained = tried + 1, trained or stepped
                    self.progress.batch_in_epoch += 1
                    if self._after_step(stepped):
                        break
                else:
                    if tried and not trained:
                        raise TrainingError(f"no batch of epoch {self.progress.epoch} could be trained: every "
                                            f"item failed to load; check the data (`voxflow data check {self.data}`)")
                    self.progress.epoch += 1
                    self.progress.batch_in_epoch = 0
            self._save()
            self._report_skipped_items()
        return self.progress

    def _close_writer(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _after_step(self, trained: bool) -> bool:
        """Validate and checkpoint on schedule (after a step that trained); True when the loop must stop."""
        step, config = self.progress.step, self.config
        if trained and step % config.validate_every == 0:
            self.validate()
        if trained and step % config.checkpoint_every == 0:
            self._save()
        self._stop_requested = self.dist.any(self._stop_requested, self.device)
        return self._stop_requested or step >= config.max_steps

    def _train_step(self, loaded: list[LoadedBatch], bar) -> bool:
        """One optimizer step on this process's micro-batches; False when none could be trained."""
        batches, shares = self._usable_batches(loaded)
        if not batches:
            return False
        train_mode(self.model)  # frozen BatchNorm layers keep their statistics
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate_at(self.progress.step, self.config)
        self.task.step = self.progress.step
        self.optimizer.zero_grad(set_to_none=True)
        totals = None
        for index, (batch, share) in enumerate(zip(batches, shares)):
            # DDP all-reduces the gradients in the last micro-batch's backward pass only.
            last = index == len(batches) - 1
            with contextlib.nullcontext() if last or not self.dist.enabled else self.forward_model.no_sync():
                loss, logs = self._forward(batch)
                # DDP averages gradients over processes, so × world_size makes the sum over every
                # process's micro-batches the gradient of the global batch's item mean.
                weighted = loss * (share * self.dist.world_size)
                (self.scaler.scale(weighted) if self.scaler else weighted).backward()
            parts = torch.stack([torch.as_tensor(value).detach().to(self.device, torch.float64)
                                 for value in (loss, *logs.values())]) * share
            totals = parts if totals is None else totals + parts
        totals = self.dist.sum(totals)  # the global batch's means: the loss, then the logged parts
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        if self.critic is not None:
            self._average_critic_gradients()
            torch.nn.utils.clip_grad_norm_(self.critic.parameters(), self.config.grad_clip)
        # A non-finite loss gives non-finite gradients, but check it too: the sum is the same on every process.
        finite = bool(torch.isfinite(totals[0])) and bool(torch.isfinite(grad_norm))
        self._step_optimizer(finite)
        if finite:
            self._log_step(totals, list(logs), grad_norm, bar)
        return True

    def _average_critic_gradients(self) -> None:
        """The critic is outside DDP: its gradients are summed over processes here, divided as DDP
        divides the model's, so both follow the global batch."""
        if not self.dist.enabled:
            return
        parameters = [p for p in self.critic.parameters() if p.grad is not None]
        flat = self.dist.sum(torch.cat([p.grad.flatten() for p in parameters])) / self.dist.world_size
        for parameter, gradient in zip(parameters, flat.split([p.numel() for p in parameters])):
            parameter.grad.copy_(gradient.view_as(parameter.grad))

    def _forward(self, batch: Any) -> tuple[torch.Tensor, dict[str, float | torch.Tensor]]:
        batch = move_to(batch, self.device)
        autocast = (torch.autocast(self.device.type, dtype=self.autocast_dtype) if self.autocast_dtype
                    else contextlib.nullcontext())
        with autocast:
            return self.task.compute_loss(self.forward_model, batch)

    def _usable_batches(self, loaded: list[LoadedBatch]) -> tuple[list[Any], list[float]]:
        """The micro-batches to train on, and each one's share of the global batch's items.

        Items that failed to load are reported and left out. A micro-batch with no item left on
        some process is dropped on every process: DDP needs the same passes everywhere."""
        sizes = torch.tensor([item.size for item in loaded], dtype=torch.float64)
        failures = [failure for item in loaded for failure in item.failures]
        # One collective for all of it: items per micro-batch, processes where it is empty, failures.
        counts = self.dist.sum(torch.cat([sizes, (sizes == 0).double(), torch.tensor([float(len(failures))],
                                                                                     dtype=torch.float64)]))
        if counts[-1] > 0:
            self._record_failures(failures)
        n = len(loaded)
        keep = [m for m in range(n) if counts[n + m] == 0]
        total = float(sum(counts[m] for m in keep))
        return [loaded[m].batch for m in keep], [loaded[m].size / total for m in keep]

    def _record_failures(self, failures: list[ItemFailure]) -> None:
        """Count every process's failed items (the same on all), warn once per item, and stop the
        run when more than ceil(max_bad_item_fraction × training items) distinct items failed."""
        for failure in (failure for share in self.dist.gather(failures) for failure in share):
            if failure.index not in self.bad_items and self.dist.is_main:
                log.warning("skipping training item %d, which failed to load: %s", failure.index, failure.message)
            self.bad_items.setdefault(failure.index, failure.message)
            self.skipped_items += 1
        n_items, fraction = len(self.data_sets.train), self.config.max_bad_item_fraction
        if len(self.bad_items) > math.ceil(fraction * n_items):
            self._save()
            first = "; ".join(list(self.bad_items.values())[:3])
            raise TrainingError(f"{len(self.bad_items)} of the {n_items} training items failed to load, more than "
                                f"train.max_bad_item_fraction={fraction} allows (e.g. {first}); check the data with "
                                f"`voxflow data check {self.data}`. The last state is saved in {self.run}")

    def _report_skipped_items(self) -> None:
        if self.skipped_items and self.dist.is_main:
            log.warning("skipped %d item loads that failed (%d distinct training items): %s", self.skipped_items,
                        len(self.bad_items), "; ".join(list(self.bad_items.values())[:3]))

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

    def _log_step(self, totals: torch.Tensor, names: list[str], grad_norm: torch.Tensor, bar) -> None:
        """`totals`: the global batch's mean loss, then its mean logged parts, in `names` order."""
        if bar is not None:
            bar.update(1)
        if self.progress.step % self.config.log_every:
            return  # values are read (a device sync on GPU) only on logging steps
        values = totals.tolist()
        if bar is not None:
            bar.set_postfix(loss=f"{values[0]:.4f}", refresh=False)
        if self.dist.is_main:
            writer, step = self._tensorboard(), self.progress.step
            writer.add_scalar("train/loss", values[0], step)
            writer.add_scalar("train/grad_norm", float(grad_norm), step)
            writer.add_scalar("train/learning_rate", self.optimizer.param_groups[0]["lr"], step)
            writer.add_scalar("train/skipped_items", self.skipped_items, step)
            for name, value in zip(names, values[1:]):
                writer.add_scalar(f"train/{name}", value, step)

    # -- validation, checkpoints, logging -----------------------------------------------------

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Mean validation losses (rank 0; the others wait), plus TensorBoard figures and audio."""
        if not self.dist.is_main or len(self.data_sets.validation) == 0:
            self.dist.barrier()
            return {}
        self.model.eval()
        loader = torch.utils.data.DataLoader(SkipFailedItems(self.data_sets.validation),
                                             batch_size=self.config.batch_size,
                                             collate_fn=CollateLoaded(self.data_sets.collate),
                                             generator=torch.Generator().manual_seed(self.config.seed))
        totals: dict[str, float] = {}
        batches = 0
        for loaded in loader:
            for failure in loaded.failures:
                log.warning("skipping validation item %d, which failed to load: %s", failure.index, failure.message)
            if loaded.batch is None:
                continue
            batch = move_to(loaded.batch, self.device)
            loss, logs = self.task.compute_loss(self.model, batch)
            for name, value in {"loss": loss, **logs}.items():
                totals[name] = totals.get(name, 0.0) + float(value)
            batches += 1
        means = {name: total / batches for name, total in totals.items()}
        writer = self._tensorboard()
        for name, value in means.items():
            writer.add_scalar(f"validation/{name}", value, self.progress.step)
        examples = self.task.examples(self.model, batch) if batches else Examples()
        for name, figure in examples.figures.items():
            writer.add_figure(f"validation/{name}", figure, self.progress.step)
        for name, (audio, rate) in examples.audio.items():
            writer.add_audio(f"validation/{name}", torch.as_tensor(audio), self.progress.step, sample_rate=rate)
        train_mode(self.model)
        self.dist.barrier()
        return means

    def _save(self) -> None:
        failure = None
        if self.dist.is_main:
            try:
                save_step(self.run, self.progress, self.model.state_dict(), self.task.kind,
                          self.task.model_config.to_dict(), self.task.symbols(), self.optimizer,
                          self.scaler.state_dict() if self.scaler else None, self.task.checkpoint_metadata(),
                          self.critic.state_dict() if self.critic is not None else None)
                prune_checkpoints(self.run, self.config.keep_checkpoints)
            except TrainingError as error:
                failure = error
        # Every process stops when rank 0 could not save (a full disk), instead of waiting for it forever.
        if self.dist.any(failure is not None, self.device):
            raise failure or TrainingError(f"rank 0 could not save a checkpoint in {self.run}; see its log")

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
