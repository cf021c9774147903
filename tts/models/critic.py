"""An adversarial critic of mel spectrograms, for training the refiner (voxflow's addition).

A refiner trained on an L1 loss predicts the median of the frames the text and decoder output
allow; where those frames vary, the median is smoother than any one of them, and the formants
stay a little blurred. A critic that learns to tell recorded mels from refined ones scores that
blur, and the refiner, trained to pass it as well as to match the recording, learns to keep
the spectral detail (the GAN post-filter of Kaneko et al., ICASSP 2017, here on log-mels with
least-squares GAN losses, Mao et al. 2017).

The critic first runs a small bank of 2-D filters over (frequency, time) patches of the mel,
the same filters at every frequency (local spectral texture: how sharp a formant edge is,
wherever it lies), halving the frequency resolution; then 1-D convolutions over time read each
frame's whole bank of responses. (A critic 2-D throughout cost more than the rest of a training
step on a CPU; one 1-D throughout, the mel bins as channels, was slow to learn position-free
sharpness.) The L1 loss beside it keeps the content. It exists only in training: the engine keeps
it in the training state (`Task.build_critic`), never in the model's weights.

Shapes: mel (batch, n_mels, n_frames), frame_mask (batch, n_frames) True on real frames →
scores (batch, 1, n_frames).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call

__all__ = ["MelCritic", "adversarial_losses"]


class MelCritic(nn.Module):
    """Log-mel frames → a realness score per frame. Every layer's input is zeroed past the item's
    length, so a real frame's score does not depend on how much padding follows it."""

    def __init__(self, n_mels: int, channels: int = 128, patch_filters: int = 8, n_layers: int = 2,
                 kernel_size: int = 5) -> None:
        super().__init__()
        self.patches = nn.Conv2d(1, patch_filters, (5, 3), stride=(2, 1), padding=(2, 1))
        widths = ((n_mels + 1) // 2 * patch_filters, *[channels] * n_layers)
        self.convs = nn.ModuleList(nn.Conv1d(inputs, outputs, kernel_size, padding=kernel_size // 2)
                                   for inputs, outputs in zip(widths, widths[1:]))
        self.output = nn.Conv1d(channels, 1, kernel_size, padding=kernel_size // 2)

    def forward(self, mel: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        keep = frame_mask.unsqueeze(1).to(mel.dtype)  # (batch, 1, n_frames)
        patches = nn.functional.leaky_relu(self.patches((mel * keep).unsqueeze(1)), 0.2)
        hidden = patches.flatten(1, 2)  # (batch, patch_filters × n_mels / 2, n_frames)
        for conv in self.convs:
            hidden = nn.functional.leaky_relu(conv(hidden * keep), 0.2)
        return self.output(hidden * keep)


def _masked_mean(values: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
    """Mean of (batch, 1, n_frames) values over the real frames (frame_mask (batch, n_frames))."""
    weights = frame_mask.unsqueeze(1).to(values.dtype)
    return (values * weights).sum() / weights.sum().clamp(min=1.0)


def adversarial_losses(critic: MelCritic, refined: torch.Tensor, recorded: torch.Tensor,
                       frame_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(adversarial, critic_loss) for one batch, to be added to the loss and minimised together.

    `adversarial` is the refiner's least-squares GAN loss: its gradient reaches the refiner only
    (the critic's weights enter it detached). `critic_loss` trains the critic to score recordings
    1 and refined mels 0, with the refined mel detached, so its gradient reaches the critic only.
    One backward pass over their sum thus trains both, as two optimizers would.
    """
    frozen = {name: parameter.detach() for name, parameter in critic.named_parameters()}
    adversarial = _masked_mean(torch.square(functional_call(critic, frozen, (refined, frame_mask)) - 1.0), frame_mask)
    real_scores, fake_scores = critic(torch.cat((recorded, refined.detach())), frame_mask.repeat(2, 1)).chunk(2)
    critic_loss = (_masked_mean(torch.square(real_scores - 1.0), frame_mask)
                   + _masked_mean(torch.square(fake_scores), frame_mask))
    return adversarial, critic_loss
