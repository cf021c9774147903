"""The refiner's adversarial critic (tts.models.critic): where each loss's gradient goes, that padded
frames do not count, that it learns to tell sharp mels from blurred ones, and that its loss then
pushes a blurred mel towards detail."""

from __future__ import annotations

import pytest
import torch

from tts.errors import ConfigError
from tts.models.critic import MelCritic, adversarial_losses
from tts.models.refiner import RefinerConfig


def _sharp(generator: torch.Generator, batch: int = 8, n_frames: int = 24) -> torch.Tensor:
    """Log-mel-like (batch, 40, n_frames) with narrow formant-like peaks that move over time."""
    bins = torch.arange(40.0)[None, :, None]
    centres = torch.rand(batch, 3, 1, generator=generator) * 32 + 4 + torch.linspace(-2, 2, n_frames)
    peaks = sum(torch.exp(-0.5 * ((bins - centres[:, k:k + 1]) / 0.8) ** 2) for k in range(3))
    return 4.0 * peaks - 5.0


def _blur(mel: torch.Tensor) -> torch.Tensor:
    """Each frame averaged over 7 neighbouring bins: what regression to the median does to formants."""
    return torch.nn.functional.avg_pool1d(mel.transpose(1, 2).reshape(-1, 1, mel.size(1)), 7, 1, 3,
                                          count_include_pad=False).reshape(mel.size(0), mel.size(2), -1).transpose(1, 2)


def _detail(mel: torch.Tensor) -> float:
    return float((mel[:, 1:] - mel[:, :-1]).abs().mean())  # how much each frame changes across bins


def test_each_loss_trains_only_its_own_side_and_padding_does_not_count(generator):
    critic = MelCritic(40, channels=8, patch_filters=2)
    recorded = torch.randn(2, 40, 12, generator=generator)
    refined = torch.randn(2, 40, 12, generator=generator, requires_grad=True)
    mask = torch.arange(12)[None] < torch.tensor([[12], [7]])
    adversarial, critic_loss = adversarial_losses(critic, refined, recorded, mask)
    assert critic(recorded, mask).shape == (2, 1, 12)  # a score per frame
    adversarial.backward(retain_graph=True)
    assert refined.grad.abs().sum() > 0 and all(p.grad is None for p in critic.parameters())
    refined.grad = None
    critic_loss.backward()
    assert refined.grad is None and all(p.grad.abs().sum() > 0 for p in critic.parameters())
    # frames past an item's length change neither loss, nor does more padding
    changed = refined.detach().clone()
    changed[1, :, 7:] += 100.0
    again = adversarial_losses(critic, changed, recorded, mask)
    torch.testing.assert_close(again[0], adversarial)
    torch.testing.assert_close(again[1], critic_loss)
    padded = torch.nn.functional.pad(refined.detach(), (0, 9)), torch.nn.functional.pad(recorded, (0, 9))
    longer = adversarial_losses(critic, *padded, torch.nn.functional.pad(mask, (0, 9)))
    torch.testing.assert_close(longer[0], adversarial)  # more padding, the same losses
    torch.testing.assert_close(longer[1], critic_loss)
    for bad in (dict(adversarial=-0.1), dict(critic_channels=0)):
        with pytest.raises(ConfigError, match="refiner"):
            RefinerConfig(**bad)


def test_the_critic_learns_to_tell_blur_and_its_loss_pushes_a_blurred_mel_back_towards_detail(generator):
    torch.manual_seed(0)
    critic = MelCritic(40, channels=32)
    optimizer = torch.optim.Adam(critic.parameters(), lr=2e-3)
    mask = torch.ones(8, 24, dtype=torch.bool)
    losses = []
    for _ in range(150):
        sharp = _sharp(generator)
        _, critic_loss = adversarial_losses(critic, _blur(sharp), sharp, mask)
        optimizer.zero_grad()
        critic_loss.backward()
        optimizer.step()
        losses.append(critic_loss.item())
    assert sum(losses[-10:]) / 10 < 0.2  # 0.5 is a critic that cannot tell (it scores both 0.5)
    held_out = _sharp(generator)
    blurred = _blur(held_out)
    with torch.no_grad():
        assert critic(held_out, mask).mean() > 0.7 and critic(blurred, mask).mean() < 0.3
    # the refiner's side: descending the adversarial loss alone restores detail the blur removed
    mel = blurred.clone().requires_grad_(True)
    descent = torch.optim.Adam([mel], lr=0.02)
    for _ in range(60):
        adversarial, _ = adversarial_losses(critic, mel, held_out, mask)
        descent.zero_grad()
        adversarial.backward()
        descent.step()
    assert adversarial.item() < 0.2 * adversarial_losses(critic, blurred, held_out, mask)[0].item()
    assert _detail(mel.detach()) > 2 * _detail(blurred)  # 0.79 against 0.16 (the sharp mels: 0.54)
