"""Griffin-Lim: a vocoder with no weights, for checks, previews during training and fallback.

Mel → linear magnitude by non-negative least squares through the filterbank's pseudo-inverse,
then the fast Griffin-Lim iteration (Perraudin et al., 2013: momentum 0.99) to find a phase
consistent with that magnitude. Quality is "intelligible but phasey"; WaveGlow is the real
vocoder. Shapes: mel (n_mels, n_frames) → audio (n_samples,); (batch, n_mels, n_frames) →
(batch, n_samples), n_samples = (n_frames - 1) * hop_length.
"""

from __future__ import annotations

import torch

from tts.audio import AudioConfig, MelTransform

__all__ = ["GriffinLim"]


class GriffinLim(torch.nn.Module):
    """`GriffinLim(config)(mel, generator=None)` → audio.

    `power` > 1 sharpens the magnitude before phase recovery. Keep 1.0 for mels of real audio
    (the resynthesis then matches their mel most closely); 1.2-1.5, the range Tacotron papers
    used, reduces the smeared sound of a model's over-smoothed predictions.
    """

    def __init__(self, config: AudioConfig | None = None, n_iters: int = 60, momentum: float = 0.99,
                 power: float = 1.0) -> None:
        super().__init__()
        self.config = config or AudioConfig()
        self.n_iters = n_iters
        self.momentum = momentum
        self.power = power
        self.stft = MelTransform(self.config)
        self.register_buffer("mel_pinv", torch.linalg.pinv(self.stft.mel_basis), persistent=False)

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    def magnitude_from_mel(self, mel: torch.Tensor) -> torch.Tensor:
        """Log-mel (..., n_mels, n_frames) → linear magnitude (..., n_freqs, n_frames), >= 0."""
        return torch.clamp(torch.matmul(self.mel_pinv, torch.exp(mel.float())), min=0.0)

    @torch.no_grad()
    def forward(self, mel: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        n_frames, shortest = mel.shape[-1], self.config.n_fft // self.config.hop_length + 1
        if n_frames < shortest:  # the STFT's reflect padding needs a few frames: pad with silence
            silence = torch.full((*mel.shape[:-1], shortest - n_frames), float(torch.log(torch.tensor(
                self.config.log_floor))), dtype=mel.dtype, device=mel.device)
            return self(torch.cat((mel, silence), dim=-1), generator)[..., :(n_frames - 1) * self.config.hop_length]
        magnitude = self._sharpen(self.magnitude_from_mel(mel))
        length = (mel.shape[-1] - 1) * self.config.hop_length
        # A random start phase avoids the buzzy artefacts of a zero-phase start.
        phase = 2 * torch.pi * torch.rand(magnitude.shape, generator=generator, device="cpu").to(mel.device)
        previous = torch.zeros_like(magnitude, dtype=torch.complex64)
        for _ in range(self.n_iters):
            audio = self.stft.inverse(magnitude, phase, length=length)
            rebuilt = self._complex_stft(audio)
            accelerated = rebuilt - (self.momentum / (1 + self.momentum)) * previous
            previous = rebuilt
            phase = torch.angle(accelerated)
        return self.stft.inverse(magnitude, phase, length=length)

    def _sharpen(self, magnitude: torch.Tensor) -> torch.Tensor:
        # Raising to `power` also changes the level; rescale so each item keeps its energy.
        sharpened = magnitude ** self.power
        energy = magnitude.square().sum(dim=(-2, -1), keepdim=True)
        sharpened_energy = sharpened.square().sum(dim=(-2, -1), keepdim=True).clamp(min=1e-12)
        return sharpened * torch.sqrt(energy / sharpened_energy)

    def _complex_stft(self, audio: torch.Tensor) -> torch.Tensor:
        config = self.config
        flat = audio.reshape(-1, audio.shape[-1])
        spectrum = torch.stft(flat, n_fft=config.n_fft, hop_length=config.hop_length,
                              win_length=config.win_length, window=self.stft.window.to(audio.dtype), center=True,
                              pad_mode="reflect", return_complex=True)
        return spectrum.reshape(*audio.shape[:-1], *spectrum.shape[-2:])
