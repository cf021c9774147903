"""WaveGlow's denoiser: subtract the vocoder's own bias hiss from the magnitude spectrum.

As NVIDIA's `denoiser.py`: run WaveGlow at sigma 0 on a zero mel (mode "zeros", log-mel 0) or a
random one (mode "normal"), 88 frames; the magnitude of the first STFT frame of that output is
the bias spectrum (n_fft // 2 + 1 bins). `denoiser(audio, strength)` subtracts strength · bias
from |STFT(audio)|, clamps at 0 and resynthesises with the original phase. The STFT is the audio
config's (1024 / 256 / 1024 Hann by default, NVIDIA's too). Strength 0.01-0.1 is the useful range
(NVIDIA notebooks 0.01, tacotron2#155: 0.1); 0 is a no-op.

Shapes: audio (n_samples,) or (batch, n_samples) → the same shape.
"""

from __future__ import annotations

import torch
from torch import nn

from vocoders import WaveGlowVocoder
from vocoders.waveglow import WaveGlow

__all__ = ["Denoiser"]


class Denoiser(nn.Module):
    """`Denoiser(vocoder, mode="zeros")(audio, strength=0.1)` → denoised audio."""

    def __init__(self, vocoder: WaveGlow | WaveGlowVocoder, mode: str = "zeros", n_frames: int = 88,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        model = vocoder.model if isinstance(vocoder, WaveGlowVocoder) else vocoder
        self.config = model.config.audio
        parameter = next(model.parameters())
        shape = (1, self.config.n_mels, n_frames)
        if mode == "zeros":
            mel = torch.zeros(shape, dtype=parameter.dtype, device=parameter.device)
        elif mode == "normal":
            mel = torch.randn(shape, generator=generator, device=generator.device if generator else parameter.device)
            mel = mel.to(device=parameter.device, dtype=parameter.dtype)
        else:
            raise ValueError(f"denoiser mode: expected 'zeros' or 'normal', found {mode!r}")
        self.register_buffer("window", torch.hann_window(self.config.win_length, device=parameter.device),
                             persistent=False)
        with torch.no_grad():
            bias_audio = model.infer(mel, sigma=0.0).float()
        # (1, n_freqs, 1): only the first frame, as NVIDIA does.
        self.register_buffer("bias_spectrum", self._stft(bias_audio)[:, :, :1].abs(), persistent=False)

    def _stft(self, audio: torch.Tensor) -> torch.Tensor:
        config = self.config
        return torch.stft(audio, n_fft=config.n_fft, hop_length=config.hop_length, win_length=config.win_length,
                          window=self.window, center=True, pad_mode="reflect", return_complex=True)

    def forward(self, audio: torch.Tensor, strength: float = 0.1) -> torch.Tensor:
        flat = audio.reshape(-1, audio.shape[-1]).float()
        spectrum = self._stft(flat)
        magnitude = (spectrum.abs() - strength * self.bias_spectrum).clamp(min=0.0)
        config = self.config
        denoised = torch.istft(torch.polar(magnitude, spectrum.angle()), n_fft=config.n_fft,
                               hop_length=config.hop_length, win_length=config.win_length, window=self.window,
                               center=True, length=flat.shape[-1])
        return denoised.reshape(audio.shape).to(audio.dtype)
