"""Losses of the Tacotron family (Tacotron 2, Mellotron): NVIDIA's mel + postnet + gate loss over
real frames only, and the guided-attention (diagonal prior) loss for fast alignment on small data.

Shapes as in `tts.models.tacotron2`: mel (batch, n_mels, n_frames), gate logits (batch, n_steps),
alignment (batch, n_steps, n_tokens), n_steps = ceil(n_frames / r).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch.nn import functional as F

from tts.models.layers import lengths_to_mask

if TYPE_CHECKING:
    from tts.models.tacotron2 import GuidedAttentionConfig, Tacotron2Output

__all__ = ["tacotron2_loss", "guided_attention_loss", "mel_error", "MEL_LOSSES"]

MEL_LOSSES = ("mse", "l1")


def tacotron2_loss(output: Tacotron2Output, mel: torch.Tensor, mel_lengths: torch.Tensor,
                   token_lengths: torch.Tensor, frames_per_step: int = 1,
                   guided_attention: GuidedAttentionConfig | None = None, mel_loss: str = "mse"
                   ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """NVIDIA's loss (MSE mel + MSE postnet mel + BCE gate), averaged over real frames / steps
    only (NVIDIA averages over padding too), plus `weight` × guided attention when enabled.
    `mel_loss` "l1" compares both mels by absolute error instead: where the next frame is uncertain
    MSE predicts the mean of the possible frames (a blur), L1 their median.

    The gate target is 1 from the step holding the last real frame onwards (NVIDIA: frame len-1).
    Returns (total, {"mel", "postnet", "gate", "guided_attention", "total"} detached)."""
    mel_part = mel_error(output.mel, mel, mel_lengths, mel_loss)
    postnet_loss = mel_error(output.mel_postnet, mel, mel_lengths, mel_loss)
    step_lengths = -(-mel_lengths // frames_per_step)
    n_steps = output.gate_logits.size(1)
    step_mask = lengths_to_mask(step_lengths, n_steps)
    gate_target = (torch.arange(n_steps, device=mel.device).unsqueeze(0) >= (step_lengths - 1).unsqueeze(1))
    gate_loss = F.binary_cross_entropy_with_logits(output.gate_logits[step_mask], gate_target[step_mask].to(mel.dtype))
    total = mel_part + postnet_loss + gate_loss
    parts = {"mel": mel_part, "postnet": postnet_loss, "gate": gate_loss}
    if guided_attention is not None and guided_attention.weight > 0:
        parts["guided_attention"] = guided_attention_loss(output.alignment, token_lengths, step_lengths,
                                                          guided_attention.sigma)
        total = total + guided_attention.weight * parts["guided_attention"]
    parts["total"] = total
    return total, {name: value.detach() for name, value in parts.items()}


def mel_error(prediction: torch.Tensor, mel: torch.Tensor, mel_lengths: torch.Tensor,
              mel_loss: str = "mse") -> torch.Tensor:
    """Mean squared ("mse") or absolute ("l1") error of (batch, n_mels, n_frames) mels over real frames."""
    if mel_loss not in MEL_LOSSES:
        raise ValueError(f"mel_loss must be one of {MEL_LOSSES}, not {mel_loss!r}")
    error = torch.square if mel_loss == "mse" else torch.abs
    frame_mask = lengths_to_mask(mel_lengths, mel.size(2)).unsqueeze(1).to(mel.dtype)  # (batch, 1, n_frames)
    return (error(prediction - mel) * frame_mask).sum() / (frame_mask.sum() * mel.size(1))


def guided_attention_loss(alignment: torch.Tensor, token_lengths: torch.Tensor, step_lengths: torch.Tensor,
                          sigma: float = 0.2) -> torch.Tensor:
    """Mean over real decoder steps of Σ_tokens A[s, n] · (1 − exp(−(n/N − s/S)² / 2σ²)).

    alignment (batch, n_steps, n_tokens); N, S: each item's token and step counts. 0 for an
    alignment on the diagonal, up to 1 for one far from it (Tachibana et al. 2017, §4.1).
    """
    batch, n_steps, n_tokens = alignment.shape
    steps = torch.arange(n_steps, device=alignment.device).unsqueeze(0) / step_lengths.unsqueeze(1)
    tokens = torch.arange(n_tokens, device=alignment.device).unsqueeze(0) / token_lengths.unsqueeze(1)
    distance = steps.unsqueeze(2) - tokens.unsqueeze(1)  # (batch, n_steps, n_tokens)
    penalty = 1.0 - torch.exp(-distance ** 2 / (2.0 * sigma ** 2))
    mask = lengths_to_mask(step_lengths, n_steps).unsqueeze(2) & lengths_to_mask(token_lengths, n_tokens).unsqueeze(1)
    return (alignment * penalty * mask).sum() / lengths_to_mask(step_lengths, n_steps).sum()
