"""F0 (pitch) contours at the mel frame rate: extraction, voicing, statistics, shifting, resampling.

- `yin(audio, sample_rate, ...)`: NVIDIA Mellotron's `yin.py` + `data_utils.get_f0`, vectorised
  over frames (one batched FFT instead of a Python loop): windows of 1024 samples every 256,
  lags for 80-880 Hz, the first cumulative-mean-normalised-difference (CMND) dip below the
  harmonicity threshold walked down to its local minimum, f0 = sample_rate / lag, and two zero
  frames padded on each side (pad = window / hop / 2). → f0 (n_yin + 4,) Hz, 0 = unvoiced.
- `extract_f0(audio, ...)`: the contract (design.md): Hz per mel frame, n_frames = 1 + n_samples //
  hop (zero-padded / truncated as Mellotron's collate does). `method="pyin"` uses librosa's pYIN.
- `voiced(f0)`, `f0_statistics(contours)` (mean / std of log-F0 over voiced frames),
  `normalize_f0` / `match_speaker` (move a contour between speakers' log-F0 ranges),
  `shift_pitch(f0, semitones, scale)`, `resample_f0(f0, n_frames)`.

Contours are numpy float32 (n_frames,) or torch tensors (..., n_frames); unvoiced frames stay 0
through every transform.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable

import numpy as np
import torch

__all__ = ["yin", "extract_f0", "voiced", "F0Statistics", "f0_statistics", "normalize_f0", "match_speaker",
           "shift_pitch", "resample_f0"]

_NICE_NUMBERS = (16, 18, 20, 24, 25, 27, 30, 32)
_BLOCK_FRAMES = 1024  # frames per batched FFT: bounds memory to ~13 MB for any audio length


def _fft_size(size: int) -> int:
    """yin.py's FFT length: the smallest "nice number" × 2^p ≥ size."""
    power = (size // 32).bit_length()
    return min(number * 2 ** power for number in _NICE_NUMBERS if number * 2 ** power >= size)


def _difference(frames: np.ndarray, tau_max: int) -> np.ndarray:
    """frames (n, window) float64 → YIN difference function d(τ) for τ < tau_max, (n, tau_max)."""
    window = frames.shape[1]
    energy = np.concatenate((np.zeros((len(frames), 1)), np.cumsum(frames * frames, axis=1)), axis=1)
    spectrum = np.fft.rfft(frames, _fft_size(window + tau_max), axis=1)
    autocorrelation = np.fft.irfft(spectrum * spectrum.conjugate(), axis=1)[:, :tau_max]
    # Σ_{j<w-τ} x_j² + Σ_{j≥τ} x_j² − 2 r(τ), as yin.py's cumulative-sum form
    return (energy[:, window:window - tau_max:-1] + energy[:, window:window + 1] - energy[:, :tau_max]
            - 2 * autocorrelation)


def _cmnd(difference: np.ndarray, n_lags: int) -> np.ndarray:
    """(n, tau_max) → cumulative mean normalised difference (n, tau_max), 1 at τ=0 (NaN on silence)."""
    lags = np.arange(1, n_lags)[: difference.shape[1] - 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        normalised = difference[:, 1:] * lags / np.cumsum(difference[:, 1:], axis=1)
    return np.concatenate((np.ones((len(difference), 1)), normalised), axis=1)


def _pick_lags(cmnd: np.ndarray, tau_min: int, tau_max: int, threshold: float) -> np.ndarray:
    """yin.py's `getPitch` for every frame: the first lag in [tau_min, tau_max) with CMND below
    `threshold`, walked down while the next lag is lower; 0 where no lag qualifies. (n,) int."""
    lags = np.arange(cmnd.shape[1])
    searchable = (lags >= tau_min) & (lags < tau_max)
    below = (cmnd < threshold) & searchable  # NaN compares False: silence is unvoiced
    found = below.any(axis=1)
    first = np.where(found, below.argmax(axis=1), 0)
    falling = np.zeros_like(below)
    falling[:, :-1] = cmnd[:, 1:] < cmnd[:, :-1]
    falling[:, tau_max - 1:] = False  # the walk stops before tau_max
    stop = ~falling & (lags >= first[:, None])
    return np.where(found, stop.argmax(axis=1), 0)


def yin(audio: np.ndarray, sample_rate: int = 22050, window: int = 1024, hop: int = 256, f0_min: float = 80.0,
        f0_max: float = 880.0, harm_thresh: float = 0.25) -> np.ndarray:
    """Mellotron's YIN contour: audio (n_samples,) → f0 (n_yin + 2 * pad,) float32 Hz, 0 = unvoiced.

    n_yin = len(range(0, n_samples - window, hop)), pad = window // hop // 2 (NVIDIA's framing).
    The CMND does not depend on the audio's scale, so float [-1, 1] and int16-scale input agree.
    """
    audio = np.asarray(audio, dtype=np.float64).reshape(-1)
    tau_min, tau_max = int(sample_rate / f0_max), int(sample_rate / f0_min)
    starts = np.arange(0, len(audio) - window, hop)
    lags = np.zeros(len(starts), dtype=np.int64)
    if len(starts):
        all_frames = np.lib.stride_tricks.sliding_window_view(audio, window)[starts]  # (n_yin, window), a view
        for begin in range(0, len(starts), _BLOCK_FRAMES):
            frames = all_frames[begin:begin + _BLOCK_FRAMES]
            cmnd = _cmnd(_difference(frames, min(tau_max, window)), tau_max)
            lags[begin:begin + _BLOCK_FRAMES] = _pick_lags(cmnd, tau_min, tau_max, harm_thresh)
    f0 = np.where(lags > 0, sample_rate / np.maximum(lags, 1), 0.0)
    pad = int(window / hop / 2)
    return np.pad(f0, (pad, pad)).astype(np.float32)


def extract_f0(audio: np.ndarray, sample_rate: int = 22050, f0_min: float = 80.0, f0_max: float = 880.0,
               harm_thresh: float = 0.25, method: str = "yin", window: int = 1024, hop: int = 256) -> np.ndarray:
    """Hz per mel frame (0 = unvoiced): audio (n_samples,) → f0 (1 + n_samples // hop,) float32.

    `method="yin"` reproduces NVIDIA Mellotron's training features exactly (what its `prenet_f0`
    was trained on); `"pyin"` is librosa's probabilistic YIN (smoother, fewer octave errors,
    ~50x slower), centred frames at the same hop. `harm_thresh` applies to YIN only.
    """
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    n_frames = 1 + len(audio) // hop
    if method == "yin":
        f0 = yin(audio, sample_rate, window, hop, f0_min, f0_max, harm_thresh)
    elif method == "pyin":
        import librosa

        f0, voiced_flag, _ = librosa.pyin(audio, fmin=f0_min, fmax=f0_max, sr=sample_rate, frame_length=window,
                                          hop_length=hop, center=True)
        f0 = np.where(voiced_flag & np.isfinite(f0), f0, 0.0).astype(np.float32)
    else:
        raise ValueError(f"extract_f0 method: expected 'yin' or 'pyin', found {method!r}")
    return np.pad(f0, (0, max(0, n_frames - len(f0))))[:n_frames].astype(np.float32)


def voiced(f0: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """Voicing flags: True where f0 > 0 (same shape)."""
    return f0 > 0


@dataclasses.dataclass(frozen=True)
class F0Statistics:
    """A speaker's pitch range: mean and standard deviation of log-F0 (natural log of Hz)."""

    mean: float
    std: float
    n_voiced: int

    @property
    def median_hz(self) -> float:
        return float(np.exp(self.mean))


def f0_statistics(contours: Iterable[np.ndarray | torch.Tensor]) -> F0Statistics:
    """Mean / std of log-F0 over the voiced frames of all `contours` (one speaker's clips)."""
    values = [np.log(np.asarray(c, dtype=np.float64)[np.asarray(c) > 0]) for c in contours]
    log_f0 = np.concatenate(values) if values else np.zeros(0)
    if log_f0.size == 0:
        raise ValueError("f0_statistics: the contours have no voiced frames")
    return F0Statistics(float(log_f0.mean()), float(log_f0.std()), int(log_f0.size))


def _log_map(f0, function):
    """Apply `function` to log-F0 of voiced frames; unvoiced frames stay 0. numpy or torch."""
    if isinstance(f0, torch.Tensor):
        mask = f0 > 0
        return torch.where(mask, function(torch.log(f0.clamp_min(1e-5))), torch.zeros_like(f0))
    f0 = np.asarray(f0, dtype=np.float32)
    mask = f0 > 0
    return np.where(mask, function(np.log(np.maximum(f0, 1e-5))), 0.0).astype(np.float32)


def normalize_f0(f0, stats: F0Statistics):
    """Voiced frames → z-scores of log-F0 under `stats`; unvoiced stay 0. (Note: a z-score of 0 is
    then ambiguous with unvoiced; keep `voiced(f0)` alongside.)"""
    std = max(stats.std, 1e-5)
    return _log_map(f0, lambda log_f0: (log_f0 - stats.mean) / std)


def match_speaker(f0, source: F0Statistics, target: F0Statistics):
    """Move a contour from the source speaker's log-F0 range to the target's (Hz in, Hz out):
    exp((log f0 − μ_s) / σ_s · σ_t + μ_t) on voiced frames. For style transfer across speakers."""
    ratio = target.std / max(source.std, 1e-5)
    exp = torch.exp if isinstance(f0, torch.Tensor) else np.exp
    return _log_map(f0, lambda log_f0: exp((log_f0 - source.mean) * ratio + target.mean))


def shift_pitch(f0, semitones: float = 0.0, scale: float = 1.0):
    """f0 × scale × 2^(semitones / 12) (12 semitones doubles it); 0 stays 0. numpy or torch."""
    factor = scale * 2.0 ** (semitones / 12.0)
    if factor <= 0:
        raise ValueError(f"shift_pitch: expected a positive overall factor, found {factor}")
    return f0 * factor


def resample_f0(f0, n_frames: int):
    """A contour (..., n) → (..., n_frames) by nearest-frame lookup (never blends voiced values with
    the zeros of unvoiced frames, as linear interpolation would). numpy or torch."""
    length = f0.shape[-1]
    if length == 0:
        raise ValueError("resample_f0: the contour is empty")
    index = np.minimum(((np.arange(n_frames) + 0.5) * length / n_frames).astype(np.int64), length - 1)
    if isinstance(f0, torch.Tensor):
        return f0[..., torch.from_numpy(index).to(f0.device)]
    return np.asarray(f0)[..., index]
