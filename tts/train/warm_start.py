"""Warm start: begin training from another checkpoint's weights, minus the layers named.

Fine-tuning a new voice from little data starts from a trained model; layers that cannot carry
over (a new symbol set changes `embedding`, new speakers change `speaker_embedding`) are named
with `ignore_layers` and keep their fresh initialisation. Nothing is dropped implicitly: a shape
mismatch outside the ignored layers is an error that names the keys.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from tts.errors import TrainingError

__all__ = ["warm_start", "freeze", "train_mode"]


def _matches(key: str, prefixes: Sequence[str]) -> bool:
    return any(key == prefix or key.startswith(prefix.rstrip(".") + ".") for prefix in prefixes)


def warm_start(model: nn.Module, state_dict: dict[str, torch.Tensor], ignore_layers: Sequence[str] = (),
               source: str = "the checkpoint") -> list[str]:
    """Copy `state_dict` into `model` except `ignore_layers` (key prefixes); returns the keys loaded."""
    own = model.state_dict()
    kept = {key: value for key, value in state_dict.items() if not _matches(key, ignore_layers)}
    mismatched = [f"{key} {tuple(value.shape)} vs {tuple(own[key].shape)}" for key, value in kept.items()
                  if key in own and value.shape != own[key].shape]
    unexpected = [key for key in kept if key not in own]
    missing = [key for key in own if key not in kept and not _matches(key, ignore_layers)]
    problems = []
    if mismatched:
        problems.append("shape mismatch: " + "; ".join(mismatched[:5]))
    if unexpected:
        problems.append("keys the model does not have: " + ", ".join(unexpected[:5]))
    if missing:
        problems.append(f"{source} lacks: " + ", ".join(missing[:5]))
    if problems:
        raise TrainingError(f"cannot warm start from {source}: {' | '.join(problems)} "
                            "(name such layers with --ignore-layers to keep them freshly initialised)")
    model.load_state_dict({**own, **kept})
    return sorted(kept)


def freeze(model: nn.Module, layers: Sequence[str]) -> int:
    """Stop gradients for parameters under the named prefixes; returns how many were frozen."""
    frozen = 0
    for name, parameter in model.named_parameters():
        if _matches(name, layers):
            parameter.requires_grad_(False)
            frozen += parameter.numel()
    if layers and not frozen:
        raise TrainingError(f"--freeze {', '.join(layers)}: no parameter has these names")
    return frozen


_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def train_mode(model: nn.Module) -> nn.Module:
    """`model.train()`, except BatchNorm layers whose weights are all frozen: they stay in eval mode.
    In train mode they would normalise by each batch and go on updating their running statistics
    from the new data, so a frozen layer would not compute what it was trained to after all."""
    model.train()
    for module in model.modules():
        parameters = list(module.parameters(recurse=False))
        if isinstance(module, _BATCH_NORMS) and parameters and not any(p.requires_grad for p in parameters):
            module.eval()
    return model
