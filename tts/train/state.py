"""A training run on disk: checkpoints that survive a kill, and the state to resume from.

Layout of a run folder:

    RUN/config.json                       kind, model config, train config, data path, warm start
    RUN/model.safetensors                 the latest weights (a normal voxflow checkpoint)
    RUN/checkpoints/step_000500/          one folder per saved step, complete or absent:
        model.safetensors                   weights + config (tts.checkpoint format)
        train_state.safetensors             optimizer tensors, RNG states, the critic's weights (a
                                            task's training-only network, if any); JSON metadata
                                            with the step, epoch, batch position, param-group
                                            scalars, scaler
    RUN/logs/                             TensorBoard events

What survives what:
- `kill -9` or a power cut at any moment, also mid-save: a step folder is written under a hidden
  temporary name (`.step_N.XXXX`), fsynced, and renamed when both files are on disk;
  `RUN/model.safetensors` is replaced atomically. Re-saving a step that exists swaps the folders
  by renames, the old one kept as `.step_N.replaced` until the new one is in place (and used by
  `latest_step_dir` should the process die in between). Deleting old steps renames them away
  first. So the newest complete step is always there to resume from; half-written files are
  hidden, ignored by `latest_step_dir` and removed by the next `prune_checkpoints`.
- A failed write (a full disk): `save_step` raises a `TrainingError` naming the file and the
  reason; the previous step folder and `RUN/model.safetensors` are unchanged, no temp file stays.

Nothing here unpickles.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from tts.checkpoint import atomic_write, save_checkpoint, sync_directory, write_failure
from tts.errors import TrainingError, UserError

__all__ = ["Progress", "save_step", "step_dirs", "latest_step_dir", "load_train_state", "prune_checkpoints"]

_STEP_DIR_RE = re.compile(r"^step_(\d+)$")
_REPLACED_DIR_RE = re.compile(r"^\.step_(\d+)\.replaced$")  # a step's previous copy, during a re-save


@dataclasses.dataclass
class Progress:
    """Where the loop is: optimizer steps taken, the epoch, and batches consumed in it."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, values in state["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{index}.{name}"] = value
            else:
                scalars[f"{index}.{name}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _rng_tensors() -> dict[str, torch.Tensor]:
    tensors = {"rng.cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for index, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{index}"] = state
    return tensors


def save_step(run: Path, progress: Progress, model_state: dict[str, torch.Tensor], kind: str,
              model_config: dict[str, Any], symbols: list[str] | None, optimizer: torch.optim.Optimizer,
              scaler_state: dict[str, Any] | None, extra_metadata: dict[str, str] | None = None,
              critic_state: dict[str, torch.Tensor] | None = None) -> Path:
    """Write `RUN/checkpoints/step_N/` (both files) and refresh `RUN/model.safetensors`.

    A write that fails (a full disk) raises `TrainingError`; what was there before is kept.
    """
    checkpoints = run / "checkpoints"
    final = checkpoints / f"step_{progress.step:06d}"
    target = checkpoints  # what is being written, for the error message
    try:
        checkpoints.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=checkpoints, prefix=f".{final.name}."))
        try:
            target = final / "model.safetensors"
            extra = {**(extra_metadata or {}), "step": str(progress.step)}
            save_checkpoint(staging / "model.safetensors", model_state, kind, model_config, symbols, extra)
            target = final / "train_state.safetensors"
            tensors, optimizer_meta = _optimizer_tensors(optimizer)
            critic = {f"critic.{name}": tensor for name, tensor in (critic_state or {}).items()}
            tensors = {name: tensor.detach().cpu().contiguous()
                       for name, tensor in {**tensors, **_rng_tensors(), **critic}.items()}
            metadata = {"progress": json.dumps(dataclasses.asdict(progress)),
                        "optimizer": json.dumps(optimizer_meta), "scaler": json.dumps(scaler_state)}
            atomic_write(staging / "train_state.safetensors", lambda path: save_file(tensors, path, metadata=metadata))
            target = final
            _commit(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        target = run / "model.safetensors"
        atomic_write(target, lambda path: shutil.copyfile(final / "model.safetensors", path))
    except (OSError, UserError) as error:
        raise _save_error(run, progress.step, target, error) from error
    return final


def _commit(staging: Path, final: Path) -> None:
    """Rename the complete `staging` folder to `final`. An existing `final` (the same step saved again)
    is first renamed to `.step_N.replaced`, so a complete copy of the step exists at every moment."""
    replaced = final.with_name(f".{final.name}.replaced")
    if final.exists():
        if replaced.exists():
            shutil.rmtree(replaced)  # from an earlier interrupted re-save; `final` is complete
        os.replace(final, replaced)
    os.replace(staging, final)
    sync_directory(final.parent)
    shutil.rmtree(replaced, ignore_errors=True)


def _save_error(run: Path, step: int, target: Path, error: BaseException) -> TrainingError:
    cause = error.__cause__ if isinstance(error, UserError) and error.__cause__ is not None else error
    reason = write_failure(cause) or str(error)
    full = "space" in reason or "quota" in reason  # ENOSPC, EDQUOT
    advice = f"{'Free some disk space' if full else 'Fix this'}, then continue with --resume"
    if target == run / "model.safetensors":
        return TrainingError(f"cannot write {target} ({reason}); the step {step} checkpoint is complete in "
                             f"{run / 'checkpoints' / f'step_{step:06d}'}, and {target} still holds the previous "
                             f"weights. {advice}")
    previous = latest_step_dir(run)
    kept = (f"the last complete checkpoint, {previous}, and {run / 'model.safetensors'} are unchanged"
            if previous is not None else "no earlier checkpoint exists")
    return TrainingError(f"cannot save the step {step} checkpoint: cannot write {target} ({reason}); {kept}. {advice}")


def _complete(folder: Path) -> bool:
    return (folder / "model.safetensors").is_file() and (folder / "train_state.safetensors").is_file()


def step_dirs(run: Path) -> list[tuple[int, Path]]:
    """The complete step folders of a run as (step, folder), oldest first. Hidden folders (half-written,
    or being deleted) are ignored, except a `.step_N.replaced` whose `step_N` is missing: the process
    died mid-swap."""
    folders = {}
    for path in (run / "checkpoints").glob("*step_*"):
        if (match := _STEP_DIR_RE.match(path.name) or _REPLACED_DIR_RE.match(path.name)) and _complete(path):
            step = int(match.group(1))
            if step not in folders or path.name.startswith("step_"):
                folders[step] = path
    return sorted(folders.items())


def latest_step_dir(run: Path) -> Path | None:
    """The newest complete step folder (see `step_dirs`), or None."""
    folders = step_dirs(run)
    return folders[-1][1] if folders else None


def load_train_state(step_dir: Path, optimizer: torch.optim.Optimizer,
                     critic: torch.nn.Module | None = None) -> tuple[Progress, dict[str, Any] | None]:
    """Restore the optimizer and RNG states (and `critic`'s weights) from a step folder; returns the
    progress and scaler state."""
    path = step_dir / "train_state.safetensors"
    try:
        with safe_open(str(path), framework="pt") as file:
            metadata = file.metadata()
            tensors = {name: file.get_tensor(name) for name in file.keys()}
        progress = Progress(**json.loads(metadata["progress"]))
        optimizer_meta = json.loads(metadata["optimizer"])
    except Exception as error:  # any damage to the file means this step cannot be resumed
        raise TrainingError(f"{path}: cannot read the training state ({error})") from None
    try:
        _restore(tensors, optimizer_meta, optimizer)
        if critic is not None:
            prefix = "critic."
            critic.load_state_dict({name[len(prefix):]: tensor for name, tensor in tensors.items()
                                    if name.startswith(prefix)})
        return progress, json.loads(metadata["scaler"])
    except (KeyError, IndexError, ValueError, TypeError, RuntimeError) as error:
        # e.g. a run folder from another model or optimizer setup: its state does not fit this one
        raise TrainingError(f"{path}: the training state does not fit this run's model and optimizer "
                            f"({type(error).__name__}: {str(error)[:300]})") from None


def _restore(tensors: dict[str, torch.Tensor], optimizer_meta: dict[str, Any],
             optimizer: torch.optim.Optimizer) -> None:
    """Load the optimizer state and the RNG states saved by `save_step`."""
    state: dict[int, dict[str, Any]] = {}
    for name, tensor in tensors.items():
        if name.startswith("optimizer."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = tensor
    for name, value in optimizer_meta["scalars"].items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    # torch checks only how many parameters each group has; moments of other shapes would load and
    # fail at the next step (or broadcast silently).
    parameters = [parameter for group in optimizer.param_groups for parameter in group["params"]]
    for index, values in state.items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape != parameters[index].shape:
                raise ValueError(f"optimizer.{index}.{key} has shape {tuple(value.shape)}, its parameter "
                                 f"{tuple(parameters[index].shape)}")
    optimizer.load_state_dict({"state": state, "param_groups": optimizer_meta["param_groups"]})
    torch.set_rng_state(tensors["rng.cpu"])
    cuda_states = [tensors[f"rng.cuda.{i}"] for i in range(torch.cuda.device_count()) if f"rng.cuda.{i}" in tensors]
    if cuda_states:
        torch.cuda.set_rng_state_all(cuda_states)


def prune_checkpoints(run: Path, keep: int) -> None:
    """After a successful `save_step`: delete all but the newest `keep` step folders, and what
    interrupted saves left behind (hidden staging folders, temp files of `RUN/model.safetensors`)."""
    checkpoints = run / "checkpoints"
    for stale in checkpoints.glob(".step_*"):
        shutil.rmtree(stale, ignore_errors=True)
    for stale in run.glob(".model.safetensors.*.tmp"):
        stale.unlink(missing_ok=True)
    folders = sorted((int(m.group(1)), p) for p in checkpoints.glob("step_*") if (m := _STEP_DIR_RE.match(p.name)))
    for _, path in folders[:-keep]:
        # Renamed away first, so a kill mid-delete leaves a hidden folder, never a half step folder.
        doomed = path.with_name(f".{path.name}.deleting")
        try:
            os.replace(path, doomed)
        except OSError:
            doomed = path
        shutil.rmtree(doomed, ignore_errors=True)
