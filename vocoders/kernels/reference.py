"""Pure-PyTorch WaveGlow kernels: the CPU path and the ground truth the fused kernels must match.

- `gated_tanh(in_act, cond, n_channels, cond_offset=0)`: WaveNet's gated activation on the sum of
  the dilated conv output and this layer's conditioning, tanh(x[:, :n]) · sigmoid(x[:, n:]) with
  x = in_act + cond[:, cond_offset:cond_offset + 2n] (the fused conditioning conv's slice for one
  layer). Shapes: in_act (batch, 2·n_channels, n_steps), cond (batch, ≥ cond_offset + 2·n_channels,
  n_steps) → (batch, n_channels, n_steps). (NVIDIA's `fused_add_tanh_sigmoid_multiply`.)
- `invertible_conv1x1(audio, weight)`: the Glow 1×1 convolution W·x over channels, and its
  log-determinant n_steps · log|det W| per item, summed over the batch as NVIDIA does
  (batch · n_steps · logdet W). Shapes: audio (batch, c, n_steps), weight (c, c).
- `invertible_conv1x1_inverse(audio, weight_inverse)`: W⁻¹·z with a precomputed inverse.
- `inverse_flow_step(audio, coupling, weight_inverse, swap)`: one WaveGlow flow inverted after its
  coupling net has run: the changed half becomes (changed − shift) / exp(log_s) with
  (shift, log_s) = coupling.chunk(2), the halves are re-concatenated, then W⁻¹ mixes the channels.
  Shapes: audio (batch, c, n_steps), coupling (batch, c, n_steps), weight_inverse (c, c) → (batch, c,
  n_steps). `swap` (glow_old's odd flows): the first half is the changed one.
- `inverse_weight(weight)`: W⁻¹ as float32, computed in float64 (NVIDIA: "inverse only exists on
  fp32+ data"); the model caches it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["gated_tanh", "invertible_conv1x1", "invertible_conv1x1_inverse", "inverse_flow_step", "inverse_weight"]


def gated_tanh(in_act: torch.Tensor, cond: torch.Tensor, n_channels: int, cond_offset: int = 0) -> torch.Tensor:
    total = in_act + cond[:, cond_offset:cond_offset + 2 * n_channels]
    return torch.tanh(total[:, :n_channels]) * torch.sigmoid(total[:, n_channels:])


def invertible_conv1x1(audio: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    batch, _, n_steps = audio.shape
    # slogdet's log|det| equals NVIDIA's logdet while det > 0 (it starts at +1 and a training step
    # cannot cross 0), and stays finite if it ever did not. float32 even for half weights.
    log_det = batch * n_steps * torch.linalg.slogdet(weight.float())[1]
    return F.conv1d(audio, weight.unsqueeze(-1)), log_det


def invertible_conv1x1_inverse(audio: torch.Tensor, weight_inverse: torch.Tensor) -> torch.Tensor:
    return F.conv1d(audio, weight_inverse.to(audio.dtype).unsqueeze(-1))


def inverse_flow_step(audio: torch.Tensor, coupling: torch.Tensor, weight_inverse: torch.Tensor,
                      swap: bool) -> torch.Tensor:
    first, second = audio.chunk(2, dim=1)
    kept, changed = (second, first) if swap else (first, second)
    shift, log_s = coupling.chunk(2, dim=1)
    changed = (changed - shift) / torch.exp(log_s)
    return invertible_conv1x1_inverse(torch.cat([changed, kept] if swap else [kept, changed], dim=1), weight_inverse)


def inverse_weight(weight: torch.Tensor) -> torch.Tensor:
    return torch.linalg.inv(weight.detach().double()).float()
