"""Audio I/O and the mel transform every voxflow model and vocoder agrees on.

- `AudioConfig`: the audio contract (design.md), NVIDIA-compatible defaults: 22050 Hz, STFT
  1024/256/1024 with a periodic Hann window, 80 Slaney mel bands over 0-8000 Hz, linear
  magnitude, `log(clamp(mel, 1e-5))`.
- `audio_info(path)`: a file's sample rate, frames and channels from its header, read before
  its samples so that callers can refuse huge or odd files cheaply (`tts.inputs`).
- `load_audio(path, sample_rate)`: any file soundfile reads (wav/flac/ogg/mp3; int or float;
  any rate; any channel count) → mono float32 numpy array at `sample_rate`. Unreadable, empty or
  non-finite files raise `AudioError` naming the file.
- `MelTransform(config)`: an `nn.Module`, audio (n_samples,) or (batch, n_samples) → log-mel
  (n_mels, n_frames) or (batch, n_mels, n_frames), n_frames = 1 + n_samples // hop_length.
  Built on `torch.stft` (center=True, reflect padding), which equals NVIDIA's conv1d STFT.
- `mel_spectrogram(audio, config=None)`: the functional form.
- `save_audio(path, audio, sample_rate)`: 16-bit PCM wav, or flac/ogg by extension.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from pathlib import Path

import librosa
import numpy as np
import soundfile
import torch
from torch import nn

from tts.config import Config
from tts.errors import AudioError

__all__ = ["AudioConfig", "MelTransform", "audio_info", "load_audio", "save_audio", "mel_spectrogram", "mel_filterbank"]


@dataclasses.dataclass(frozen=True)
class AudioConfig(Config):
    """The audio contract. Two models can share mels only if their AudioConfigs are equal."""

    sample_rate: int = 22050
    n_fft: int = 1024
    hop_length: int = 256
    win_length: int = 1024
    n_mels: int = 80
    fmin: float = 0.0
    fmax: float | None = 8000.0
    log_floor: float = 1e-5

    def __post_init__(self) -> None:
        from tts.errors import ConfigError

        if self.win_length > self.n_fft:
            raise ConfigError(f"audio.win_length: expected <= n_fft ({self.n_fft}), found {self.win_length}")
        nyquist = self.sample_rate / 2
        if self.fmax is not None and not self.fmin < self.fmax <= nyquist:
            raise ConfigError(f"audio.fmax: expected fmin < fmax <= {nyquist}, found fmin={self.fmin} fmax={self.fmax}")
        if self.hop_length <= 0 or self.n_mels <= 0 or self.sample_rate <= 0:
            raise ConfigError("audio: sample_rate, hop_length and n_mels must be positive")

    def n_frames(self, n_samples: int) -> int:
        """Frames the centred STFT gives for `n_samples` samples."""
        return 1 + n_samples // self.hop_length


def audio_info(path: str | os.PathLike) -> tuple[int, int, int]:
    """(sample rate, frames, channels) from an audio file's header, without reading its samples.

    Raises `AudioError` naming the file when it is missing, a directory, or not audio soundfile
    can read (with soundfile's reason).
    """
    path = Path(path)
    if path.is_dir():
        raise AudioError(f"{path}: a directory, not an audio file")
    if not path.is_file():
        raise AudioError(f"{path}: no such audio file")
    try:
        info = soundfile.info(str(path))
    except Exception as error:  # soundfile raises LibsndfileError, RuntimeError or TypeError
        raise AudioError(f"{path}: not a readable audio file ({_first_line(error)})") from None
    return int(info.samplerate), int(info.frames), int(info.channels)


def load_audio(path: str | os.PathLike, sample_rate: int = 22050) -> np.ndarray:
    """Read any audio file soundfile understands as mono float32 in [-1, 1] at `sample_rate`.

    Channels are averaged; other rates are resampled with soxr (librosa's default, high quality).
    Raises `AudioError` naming the file when it is missing, unreadable, empty or holds NaN/inf.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such audio file")
    try:
        audio, file_rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except Exception as error:  # soundfile raises LibsndfileError, RuntimeError or TypeError
        raise AudioError(f"{path}: not a readable audio file ({_first_line(error)})") from None
    if audio.shape[0] == 0:
        raise AudioError(f"{path}: the audio file contains no samples")
    audio = audio.mean(axis=1)
    if not np.isfinite(audio).all():
        raise AudioError(f"{path}: the audio contains NaN or infinite samples")
    if file_rate != sample_rate:
        audio = librosa.resample(audio, orig_sr=file_rate, target_sr=sample_rate, res_type="soxr_hq")
    return np.ascontiguousarray(audio, dtype=np.float32)


def save_audio(path: str | os.PathLike, audio: np.ndarray | torch.Tensor, sample_rate: int) -> Path:
    """Write mono audio in [-1, 1]: 16-bit PCM for .wav, the format's default for .flac/.ogg.

    Samples outside [-1, 1] are clipped, as a DAC would; NaN is an error, not noise.
    """
    path = Path(path)
    if isinstance(audio, torch.Tensor):
        audio = audio.detach().float().cpu().numpy()
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if not np.isfinite(audio).all():
        raise AudioError(f"{path}: refusing to write audio that contains NaN or infinite samples")
    subtype = "PCM_16" if path.suffix.lower() in (".wav", ".flac") else None
    try:
        soundfile.write(str(path), np.clip(audio, -1.0, 1.0), sample_rate, subtype=subtype)
    except (soundfile.LibsndfileError, ValueError, TypeError) as error:
        raise AudioError(f"{path}: cannot write audio ({_first_line(error)}); use .wav, .flac or .ogg") from None
    return path


MEL_BASES_FILE = Path(__file__).parent / "mel_bases.safetensors"


def mel_basis_key(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None) -> str:
    return f"sr{sample_rate}_nfft{n_fft}_mels{n_mels}_fmin{float(fmin):g}_fmax{'none' if fmax is None else f'{float(fmax):g}'}"


def compute_mel_basis(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None) -> np.ndarray:
    # librosa's defaults (Slaney scale, Slaney area normalisation) are what NVIDIA's repos use.
    return librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)


@functools.lru_cache(maxsize=1)
def _shipped_mel_bases() -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(MEL_BASES_FILE) if MEL_BASES_FILE.is_file() else {}


@functools.lru_cache(maxsize=8)
def _mel_basis(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None) -> np.ndarray:
    """librosa's filterbank. The default settings' one ships precomputed by `compute_mel_basis`
    (`mel_bases.safetensors`, `scripts/make_mel_bases.py`; tests check it equals librosa's):
    importing librosa.filters pulls in scipy.signal and numba, 1-1.5 s of `voxflow say`'s start."""
    shipped = _shipped_mel_bases().get(mel_basis_key(sample_rate, n_fft, n_mels, fmin, fmax))
    return shipped if shipped is not None else compute_mel_basis(sample_rate, n_fft, n_mels, fmin, fmax)


def mel_filterbank(config: AudioConfig) -> torch.Tensor:
    """The (n_mels, n_fft // 2 + 1) Slaney mel filterbank of `config`, float32."""
    basis = _mel_basis(config.sample_rate, config.n_fft, config.n_mels, config.fmin, config.fmax)
    return torch.from_numpy(basis.copy())


class MelTransform(nn.Module):
    """Audio → log-mel spectrogram, and magnitude STFT ↔ audio helpers for Griffin-Lim.

    Shapes: audio (n_samples,) → (n_mels, n_frames); (batch, n_samples) → (batch, n_mels, n_frames).
    The window and filterbank are non-persistent buffers: they follow `.to(device)` but never
    enter a checkpoint, since they are derived from the config.
    """

    def __init__(self, config: AudioConfig | None = None) -> None:
        super().__init__()
        self.config = config or AudioConfig()
        # periodic Hann = scipy get_window('hann', N, fftbins=True), as NVIDIA's STFT uses.
        self.register_buffer("window", torch.hann_window(self.config.win_length, periodic=True, dtype=torch.float64),
                             persistent=False)
        self.register_buffer("mel_basis", mel_filterbank(self.config), persistent=False)

    def magnitude(self, audio: torch.Tensor) -> torch.Tensor:
        """|STFT|: (..., n_samples) → (..., n_fft // 2 + 1, n_frames), float64 on CPU."""
        config = self.config
        batch_shape = audio.shape[:-1]
        # On CPU the transform runs in float64 (+25 ms per 10 s of audio): near the 1e-5 floor
        # the log turns float32 rounding into 4e-4 errors, and mels are cached anyway.
        dtype = torch.float64 if audio.device.type == "cpu" else torch.float32
        spectrum = torch.stft(
            audio.reshape(-1, audio.shape[-1]).to(dtype),
            n_fft=config.n_fft,
            hop_length=config.hop_length,
            win_length=config.win_length,
            window=self.window.to(dtype),
            center=True,
            pad_mode="reflect",
            return_complex=True,
        )
        return spectrum.abs().reshape(*batch_shape, *spectrum.shape[-2:])

    def mel_from_magnitude(self, magnitude: torch.Tensor) -> torch.Tensor:
        """Linear magnitude (..., n_freqs, n_frames) → float32 log-mel (..., n_mels, n_frames)."""
        mel = torch.matmul(self.mel_basis.to(magnitude.dtype), magnitude)
        return torch.log(torch.clamp(mel, min=self.config.log_floor)).float()

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        if audio.dim() not in (1, 2):
            raise ValueError(f"expected audio of shape (n_samples,) or (batch, n_samples), found {tuple(audio.shape)}")
        if audio.shape[-1] <= self.config.n_fft // 2:
            raise ValueError(f"audio of {audio.shape[-1]} samples is too short for n_fft {self.config.n_fft}")
        return self.mel_from_magnitude(self.magnitude(audio))

    def inverse(self, magnitude: torch.Tensor, phase: torch.Tensor, length: int | None = None) -> torch.Tensor:
        """Magnitude and phase (..., n_freqs, n_frames) → audio (..., n_samples) by overlap-add."""
        config = self.config
        batch_shape = magnitude.shape[:-2]
        spectrum = torch.polar(magnitude.float(), phase.float()).reshape(-1, *magnitude.shape[-2:])
        audio = torch.istft(
            spectrum,
            n_fft=config.n_fft,
            hop_length=config.hop_length,
            win_length=config.win_length,
            window=self.window.to(spectrum.real.dtype),
            center=True,
            length=length,
        )
        return audio.reshape(*batch_shape, audio.shape[-1])


def mel_spectrogram(audio: np.ndarray | torch.Tensor, config: AudioConfig | None = None) -> torch.Tensor:
    """Log-mel of audio in [-1, 1]: (n_samples,) → (n_mels, n_frames); (batch, n) → (batch, n_mels, n_frames)."""
    if isinstance(audio, np.ndarray):
        audio = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
    transform = _cached_transform(config or AudioConfig(), audio.device)
    with torch.no_grad():
        return transform(audio)


@functools.lru_cache(maxsize=8)
def _cached_transform(config: AudioConfig, device: torch.device) -> MelTransform:
    return MelTransform(config).to(device)


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
