"""Straight-line paths between two points (latents, speaker vectors, styles), shared by every model.

`lerp(a, b, weights)` is `(1 − w)·a + w·b`, written so that w = 0 gives `a` and w = 1 gives `b`
exactly (no rounding at the endpoints); `interpolation_weights(n)` is n weights from 0 to 1;
`interpolate_speakers(model, a, b, weights)` walks between two rows of a model's speaker table
(Tacotron 2, Mellotron and Flowtron all take such vectors in place of speaker ids).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["interpolation_weights", "lerp", "interpolate_speakers"]


def interpolation_weights(n_steps: int) -> torch.Tensor:
    """n_steps weights from 0 to 1 inclusive (n_steps ≥ 2)."""
    if n_steps < 2:
        raise ValueError(f"n_steps: expected >= 2 (both endpoints), found {n_steps}")
    return torch.linspace(0.0, 1.0, n_steps)


def lerp(a: torch.Tensor, b: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Broadcasting `(1 − weight)·a + weight·b`; exact at weight 0 and 1, unlike a + w·(b − a)."""
    return (1.0 - weight) * a + weight * b


def interpolate_speakers(model: nn.Module, speaker_a: int, speaker_b: int,
                         weights: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """Speaker embeddings on the line from `speaker_a` to `speaker_b` → (len(weights), speaker_dim)."""
    table = model.speaker_embedding.weight.detach()
    for speaker in (speaker_a, speaker_b):
        if not 0 <= speaker < table.size(0):
            raise ValueError(f"speaker id: expected 0..{table.size(0) - 1}, found {speaker}")
    weights = torch.as_tensor(weights, dtype=table.dtype, device=table.device).view(-1, 1)
    return lerp(table[speaker_a][None], table[speaker_b][None], weights)
