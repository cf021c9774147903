"""A text-aware refiner for the Tacotron family's free-running mels (voxflow's addition, not NVIDIA's).

Run on its own output, the autoregressive decoder drifts from what it learnt teacher-forced and
its spectra blur (exposure bias, docs/voices.md). The refiner is a non-autoregressive residual
conv stack that reads, for every frame, the decoder's mel (before the postnet) and the attention
context the decoder read at that frame (text encoding, GST style, speaker: the memory weighted by
the alignment), and predicts the mel. It is trained on what inference produces: the decoder runs
free on its own output, its attention forced to a teacher-forced pass over the recording so the
frames line up with the recording (`Tacotron2.rehearse`), and the refiner learns to map that to
the recorded mel. Knowing which sound each frame belongs to, it can restore the formants and
silences the decoder smeared; a postnet, which sees the mel alone, cannot. It trains alone, on
top of a trained model (`voxflow train` with a `refiner` in the config freezes everything else).

A trained refiner can be deepened rather than trained again (`deepen_state_dict`): the blocks it
lacks are added after its own as identities (LayerNorm scale 0, so the block adds gelu(0) = 0),
which computes exactly what it did, and training brings them in from there.

Shapes: mel (batch, n_mels, n_frames), context (batch, context_dim, n_frames), mask (batch,
n_frames) True on real frames → mel (batch, n_mels, n_frames), 0 on padded frames.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from tts.config import Config
from tts.errors import ConfigError

__all__ = ["RefinerConfig", "Refiner", "deepen_state_dict"]


@dataclasses.dataclass(frozen=True)
class RefinerConfig(Config):
    channels: int = 256
    n_layers: int = 6  # residual conv blocks after the input conv
    kernel_size: int = 5
    # Training: the share of clips whose free-running pass takes the clip's own GST style; the
    # others take the style inference uses without a reference (equal token weights).
    reference_style: float = 0.5
    # Training: the weight of an adversarial loss beside the L1 (`tts.models.critic`); 0 trains on
    # the L1 alone. A critic of `critic_channels` trains along, in the training state only.
    adversarial: float = 0.0
    critic_channels: int = 128

    def __post_init__(self) -> None:
        if self.channels <= 0 or self.n_layers < 0:
            raise ConfigError(f"refiner.channels / n_layers: expected > 0 / >= 0, found "
                              f"{(self.channels, self.n_layers)!r}")
        if self.kernel_size % 2 != 1:
            raise ConfigError(f"refiner.kernel_size: expected an odd number, found {self.kernel_size!r}")
        if not 0.0 <= self.reference_style <= 1.0:
            raise ConfigError(f"refiner.reference_style: expected a probability in [0, 1], found "
                              f"{self.reference_style!r}")
        if self.adversarial < 0 or self.critic_channels <= 0:
            raise ConfigError(f"refiner.adversarial / critic_channels: expected >= 0 / > 0, found "
                              f"{(self.adversarial, self.critic_channels)!r}")


class _Block(nn.Module):
    """Conv → per-frame LayerNorm → GELU, added to its input. The norm works on each frame's
    channels alone, so padding and sequence length never change a real frame's output."""

    def __init__(self, channels: int, kernel_size: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, kernel_size, padding=kernel_size // 2)
        self.norm = nn.LayerNorm(channels)

    def forward(self, hidden: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        update = self.norm(self.conv(hidden * frame_mask).transpose(1, 2)).transpose(1, 2)
        return hidden + nn.functional.gelu(update)


class Refiner(nn.Module):
    """mel + per-frame attention context → refined mel (a residual over the decoder's mel)."""

    def __init__(self, n_mels: int, context_dim: int, config: RefinerConfig) -> None:
        super().__init__()
        self.input = nn.Conv1d(n_mels + context_dim, config.channels, config.kernel_size,
                               padding=config.kernel_size // 2)
        self.blocks = nn.ModuleList(_Block(config.channels, config.kernel_size) for _ in range(config.n_layers))
        self.output = nn.Conv1d(config.channels, n_mels, 1)

    def forward(self, mel: torch.Tensor, context: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        frame_mask = mask.unsqueeze(1).to(mel.dtype)  # (batch, 1, n_frames)
        hidden = self.input(torch.cat((mel, context), dim=1) * frame_mask)
        for block in self.blocks:
            hidden = block(hidden, frame_mask)
        return (mel + self.output(hidden)) * frame_mask


def deepen_state_dict(refiner: Refiner, shallow: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`shallow` (a refiner's state dict, keys relative to the refiner) as `refiner`'s when it has fewer
    blocks of the same width and kernel: its blocks come first, and each block it lacks keeps
    `refiner`'s fresh convolution with a zero LayerNorm scale, an identity until training moves it.
    Returned unchanged otherwise (warm start then refuses a refiner of another shape by name)."""
    own = refiner.state_dict()
    n_shallow = len({key.split(".")[1] for key in shallow if key.startswith("blocks.")})
    same_shape = all(key in own and own[key].shape == value.shape for key, value in shallow.items())
    if n_shallow >= len(refiner.blocks) or not same_shape:
        return shallow
    added = {name: value for name, value in own.items() if name not in shallow}  # the new blocks' tensors
    return {**shallow, **{name: torch.zeros_like(value) if name.endswith(".norm.weight") else value
                          for name, value in added.items()}}
