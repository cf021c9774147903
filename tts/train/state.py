"""A training run on disk: checkpoints that survive a kill, and the state to resume from.

Layout of a run folder:

    RUN/config.json                       kind, model config, train config, data path, warm start
    RUN/model.safetensors                 the latest weights (a normal voxflow checkpoint)
    RUN/checkpoints/step_000500/          one folder per saved step, complete or absent:
        model.safetensors                   weights + config (tts.checkpoint format)
        train_state.safetensors             optimizer tensors, RNG states; JSON metadata with the
                                            step, epoch, batch position, param-group scalars, scaler
    RUN/logs/                             TensorBoard events

A step folder is written under a temporary name and renamed when both files are on disk, so a
run killed mid-save resumes from the previous step. Nothing here unpickles.
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

from tts.checkpoint import atomic_write, save_checkpoint
from tts.errors import TrainingError

__all__ = ["Progress", "save_step", "latest_step_dir", "load_train_state", "prune_checkpoints"]

_STEP_DIR_RE = re.compile(r"^step_(\d+)$")


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
              scaler_state: dict[str, Any] | None, extra_metadata: dict[str, str] | None = None) -> Path:
    """Write `RUN/checkpoints/step_N/` (both files) and refresh `RUN/model.safetensors`."""
    checkpoints = run / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    final = checkpoints / f"step_{progress.step:06d}"
    staging = Path(tempfile.mkdtemp(dir=checkpoints, prefix=f".{final.name}."))
    try:
        extra = {**(extra_metadata or {}), "step": str(progress.step)}
        save_checkpoint(staging / "model.safetensors", model_state, kind, model_config, symbols, extra)
        tensors, optimizer_meta = _optimizer_tensors(optimizer)
        tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in {**tensors, **_rng_tensors()}.items()}
        metadata = {"progress": json.dumps(dataclasses.asdict(progress)),
                    "optimizer": json.dumps(optimizer_meta), "scaler": json.dumps(scaler_state)}
        atomic_write(staging / "train_state.safetensors", lambda path: save_file(tensors, path, metadata=metadata))
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    atomic_write(run / "model.safetensors", lambda path: shutil.copyfile(final / "model.safetensors", path))
    return final


def latest_step_dir(run: Path) -> Path | None:
    """The newest complete step folder, or None."""
    folders = [(int(match.group(1)), path) for path in (run / "checkpoints").glob("step_*")
               if (match := _STEP_DIR_RE.match(path.name)) and (path / "train_state.safetensors").is_file()]
    return max(folders)[1] if folders else None


def load_train_state(step_dir: Path, optimizer: torch.optim.Optimizer) -> tuple[Progress, dict[str, Any] | None]:
    """Restore the optimizer and RNG states from a step folder; returns the progress and scaler state."""
    path = step_dir / "train_state.safetensors"
    try:
        with safe_open(str(path), framework="pt") as file:
            metadata = file.metadata()
            tensors = {name: file.get_tensor(name) for name in file.keys()}
        progress = Progress(**json.loads(metadata["progress"]))
        optimizer_meta = json.loads(metadata["optimizer"])
    except Exception as error:  # any damage to the file means this step cannot be resumed
        raise TrainingError(f"{path}: cannot read the training state ({error})") from None
    state: dict[int, dict[str, Any]] = {}
    for name, tensor in tensors.items():
        if name.startswith("optimizer."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = tensor
    for name, value in optimizer_meta["scalars"].items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    optimizer.load_state_dict({"state": state, "param_groups": optimizer_meta["param_groups"]})
    torch.set_rng_state(tensors["rng.cpu"])
    cuda_states = [tensors[f"rng.cuda.{i}"] for i in range(torch.cuda.device_count()) if f"rng.cuda.{i}" in tensors]
    if cuda_states:
        torch.cuda.set_rng_state_all(cuda_states)
    return progress, json.loads(metadata["scaler"])


def prune_checkpoints(run: Path, keep: int) -> None:
    """Delete all but the newest `keep` step folders (and stale staging folders)."""
    checkpoints = run / "checkpoints"
    for stale in checkpoints.glob(".step_*"):
        shutil.rmtree(stale, ignore_errors=True)
    folders = sorted((int(m.group(1)), p) for p in checkpoints.glob("step_*") if (m := _STEP_DIR_RE.match(p.name)))
    for _, path in folders[:-keep]:
        shutil.rmtree(path, ignore_errors=True)
