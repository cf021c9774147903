"""Checkpoint averaging: one model whose weights are the mean of several checkpoints of a run.

Late in a run, once the loss has levelled off, consecutive checkpoints differ mostly by the noise
of the steps between them, and their mean is often a better model than any one of them (Polyak
averaging; fairseq and the Transformer paper average their last checkpoints the same way). The
bundled voice is such a mean (docs/voices.md). Average checkpoints of one run: the weights of
independently trained models do not lie in one basin, and their mean is no model at all.

- `run_checkpoints(run, last)`: the model files of the newest `last` complete step folders of a
  training run (`RUN/checkpoints/step_N/model.safetensors`, oldest first).
- `average_checkpoints(paths)`: a `Checkpoint` whose floating-point tensors are the mean of the
  files' (summed in float64, stored in the dtype of the last file), whose integer tensors
  (counters such as BatchNorm's `num_batches_tracked`) and metadata are the last file's, and
  whose metadata also lists what it averaged (`averaged_from`: the files' names and steps).
  Every file must be a voxflow checkpoint of the same kind and config with the same tensor names
  and shapes; float32 and float16 files mix. Otherwise a `UserError` names the file that differs
  and how.
- `save_average(path, checkpoint, half)`: writes it atomically (`tts.checkpoint`), in float16
  when `half`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import torch

from tts.checkpoint import Checkpoint, float16_state_dict, read_checkpoint, save_checkpoint
from tts.errors import UserError
from tts.train.state import step_dirs

__all__ = ["run_checkpoints", "average_checkpoints", "save_average"]

# Written by save_checkpoint from its arguments; every other metadata key is carried over as it is.
_FORMAT_KEYS = ("format_version", "kind", "config", "voxflow_version")


def run_checkpoints(run: str | os.PathLike, last: int | None = None) -> list[Path]:
    """The model files of `run`'s newest `last` complete step folders (all of them when None), oldest first."""
    run = Path(run)
    if not (run / "checkpoints").is_dir():
        raise UserError(f"{run}: not a training run folder (it has no checkpoints/ folder)")
    folders = step_dirs(run)
    if last is not None and last < 1:
        raise UserError(f"--last must be at least 1, not {last}")
    if last is not None and len(folders) < last:
        steps = ", ".join(str(step) for step, _ in folders) or "none"
        raise UserError(f"{run}: has {len(folders)} complete step checkpoint(s) (steps: {steps}), "
                        f"fewer than the {last} asked for")
    chosen = folders if last is None else folders[-last:]
    return [folder / "model.safetensors" for _, folder in chosen]


def _check_compatible(path: Path, checkpoint: Checkpoint, first_path: Path, first: Checkpoint) -> None:
    if checkpoint.kind != first.kind:
        raise UserError(f"{path}: a {checkpoint.kind} checkpoint; {first_path} is a {first.kind} one "
                        f"(only checkpoints of one model can be averaged)")
    if checkpoint.config != first.config:
        differing = sorted(key for key in set(checkpoint.config) | set(first.config)
                           if checkpoint.config.get(key) != first.config.get(key))
        raise UserError(f"{path}: its model config differs from {first_path}'s (in {', '.join(differing)}); "
                        f"only checkpoints of one model can be averaged")
    missing = sorted(set(first.state_dict) - set(checkpoint.state_dict))
    unexpected = sorted(set(checkpoint.state_dict) - set(first.state_dict))
    if missing or unexpected:
        raise UserError(f"{path}: its tensors differ from {first_path}'s (missing: {', '.join(missing[:5]) or '-'}; "
                        f"unexpected: {', '.join(unexpected[:5]) or '-'})")
    for name, tensor in first.state_dict.items():
        found = checkpoint.state_dict[name]
        if tuple(found.shape) != tuple(tensor.shape) or found.is_floating_point() != tensor.is_floating_point():
            raise UserError(f"{path}: {name} is {found.dtype} {tuple(found.shape)}, in {first_path} "
                            f"{tensor.dtype} {tuple(tensor.shape)}")


def average_checkpoints(paths: Sequence[str | os.PathLike]) -> Checkpoint:
    """The mean of the checkpoints in `paths` (at least two), with the last one's metadata (see the module)."""
    paths = [Path(path) for path in paths]
    if len(paths) < 2:
        raise UserError(f"nothing to average: {len(paths)} checkpoint given, at least two are needed")
    first = read_checkpoint(paths[0])
    sums = {name: tensor.double() for name, tensor in first.state_dict.items() if tensor.is_floating_point()}
    sources = [{"file": str(paths[0]), "step": _step(first)}]
    last = first
    # One file in memory at a time beside the sums: a WaveGlow's checkpoints are hundreds of MB each.
    for path in paths[1:]:
        last = read_checkpoint(path)
        _check_compatible(path, last, paths[0], first)
        for name, total in sums.items():
            total += last.state_dict[name].double()
        sources.append({"file": str(path), "step": _step(last)})
    state_dict = {name: (sums[name] / len(paths)).to(tensor.dtype) if name in sums else tensor
                  for name, tensor in last.state_dict.items()}
    metadata = {**last.metadata, "averaged_from": json.dumps(sources)}
    return Checkpoint(last.kind, last.config, state_dict, metadata)


def _step(checkpoint: Checkpoint) -> int | None:
    """The training step a checkpoint was saved at (its `step` metadata), when it records one."""
    try:
        return int(checkpoint.metadata.get("step", ""))
    except ValueError:
        return None


def save_average(path: str | os.PathLike, checkpoint: Checkpoint, half: bool = False) -> Path:
    """Write an averaged checkpoint (atomically); `half` stores its floating-point tensors as float16."""
    state_dict = float16_state_dict(checkpoint.state_dict) if half else checkpoint.state_dict
    extra = {key: value for key, value in checkpoint.metadata.items() if key not in _FORMAT_KEYS}
    return save_checkpoint(path, state_dict, checkpoint.kind, checkpoint.config, extra_metadata=extra)
