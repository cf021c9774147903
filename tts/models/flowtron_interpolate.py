"""Latent interpolation for Flowtron (paper §4.4 and its demo page; NVIDIA ships no code for it).

All interpolation is linear (`tts.models.interpolation.lerp`: exact at both endpoints):

- `interpolate_z(z_a, z_b, weights)`: between two z samples (batch, n_mels, n_frames) → one z per
  weight, stacked along the batch (len(weights), n_mels, n_frames).
- `interpolate_speakers(model, speaker_a, speaker_b, weights)`: between two speakers' embeddings
  → (len(weights), speaker_dim); `Flowtron.inverse` accepts these vectors as `speaker_ids`.
- `prior_to_posterior_over_time(z_prior, posterior_mean, start, end)`: one z whose frames move
  from a prior sample (frames ≤ start) to the style posterior (frames ≥ end), e.g. neutral
  speech that becomes surprised; `posterior_mean` may be (1, n_mels, 1) or (1, n_mels, n_frames).
- `synthesize_path(model, tokens, zs, speakers)`: invert each z (and speaker) of a path, gate off
  so every step has the same length, and return the mels (steps, n_mels, n_frames).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from tts.models.flowtron import Flowtron
from tts.models.interpolation import interpolate_speakers, interpolation_weights, lerp as _lerp

__all__ = ["interpolation_weights", "interpolate_z", "interpolate_speakers", "prior_to_posterior_over_time",
           "synthesize_path"]


def interpolate_z(z_a: torch.Tensor, z_b: torch.Tensor, weights: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """z_a, z_b (1, n_mels, n_frames) → (len(weights), n_mels, n_frames)."""
    if z_a.shape != z_b.shape:
        raise ValueError(f"interpolate_z: expected z of equal shapes, found {tuple(z_a.shape)} and {tuple(z_b.shape)}")
    weights = torch.as_tensor(weights, dtype=z_a.dtype, device=z_a.device).view(-1, 1, 1)
    return _lerp(z_a.reshape(1, *z_a.shape[-2:]), z_b.reshape(1, *z_b.shape[-2:]), weights)


def prior_to_posterior_over_time(z_prior: torch.Tensor, posterior_mean: torch.Tensor, start: int = 0,
                                 end: int | None = None) -> torch.Tensor:
    """z_prior (1, n_mels, n_frames) → a z that is `z_prior` up to frame `start` and the posterior
    sample `z_prior + posterior_mean` from frame `end` on (default the last), linear in between.

    The posterior sample reuses the prior's noise (z_prior + posterior_mean), so only the style
    changes over time, not the random detail."""
    n_frames = z_prior.size(2)
    end = n_frames - 1 if end is None else end
    if not 0 <= start < end <= n_frames - 1:
        raise ValueError(f"start/end: expected 0 <= start < end < n_frames={n_frames}, found {start}/{end}")
    frames = torch.arange(n_frames, dtype=z_prior.dtype, device=z_prior.device)
    weight = ((frames - start) / (end - start)).clamp(0.0, 1.0).view(1, 1, -1)
    z_posterior = z_prior + posterior_mean.to(z_prior.dtype).expand_as(z_prior)
    return _lerp(z_prior, z_posterior, weight)


@torch.no_grad()
def synthesize_path(model: Flowtron, tokens: torch.Tensor, zs: torch.Tensor,
                    speakers: torch.Tensor | int = 0) -> torch.Tensor:
    """tokens (1, n_tokens), zs (steps, n_mels, n_frames), speakers: an id or (steps, speaker_dim)
    vectors or (steps,) ids → mels (steps, n_mels, n_frames), each step inverted with the gate off."""
    steps = zs.size(0)
    if isinstance(speakers, int):
        speakers = torch.full((steps,), speakers, dtype=torch.long, device=zs.device)
    return model.inverse(zs, speakers, tokens.expand(steps, -1)).mel
