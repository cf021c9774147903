"""Pitch-tracking error rates between a reference and an estimated F0 contour (Hz, 0 = unvoiced).

Definitions follow Chu & Alwan (2009), "Reducing F0 frame error of F0 tracking algorithms under
noisy conditions", over N frames of two contours of equal length:
- VDE (voicing decision error): frames whose voicing differs, / N.
- GPE (gross pitch error): frames voiced in both with |f_est − f_ref| > 20 % of f_ref, / frames
  voiced in both (0 when there are none).
- FFE (F0 frame error): (voicing errors + gross pitch errors) / N.
"""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["PitchErrors", "pitch_errors", "gross_pitch_error", "voicing_decision_error", "f0_frame_error"]


@dataclasses.dataclass(frozen=True)
class PitchErrors:
    gpe: float
    vde: float
    ffe: float


def _pair(reference, estimate) -> tuple[np.ndarray, np.ndarray]:
    reference = np.asarray(reference, dtype=np.float64).reshape(-1)
    estimate = np.asarray(estimate, dtype=np.float64).reshape(-1)
    if reference.shape != estimate.shape:
        raise ValueError(f"pitch metrics: expected contours of equal length, found {reference.size} and "
                         f"{estimate.size} frames (tts.conditioning.resample_f0 matches them)")
    if reference.size == 0:
        raise ValueError("pitch metrics: the contours are empty")
    return reference, estimate


def _gross(reference: np.ndarray, estimate: np.ndarray, tolerance: float) -> tuple[int, int]:
    both = (reference > 0) & (estimate > 0)
    gross = both & (np.abs(estimate - reference) > tolerance * reference)
    return int(gross.sum()), int(both.sum())


def gross_pitch_error(reference, estimate, tolerance: float = 0.2) -> float:
    """(n,) and (n,) Hz → GPE in [0, 1]."""
    gross, both = _gross(*_pair(reference, estimate), tolerance)
    return gross / both if both else 0.0


def voicing_decision_error(reference, estimate) -> float:
    """(n,) and (n,) Hz → VDE in [0, 1]."""
    reference, estimate = _pair(reference, estimate)
    return float(((reference > 0) != (estimate > 0)).mean())


def f0_frame_error(reference, estimate, tolerance: float = 0.2) -> float:
    """(n,) and (n,) Hz → FFE in [0, 1]."""
    reference, estimate = _pair(reference, estimate)
    voicing = int(((reference > 0) != (estimate > 0)).sum())
    return (voicing + _gross(reference, estimate, tolerance)[0]) / reference.size


def pitch_errors(reference, estimate, tolerance: float = 0.2) -> PitchErrors:
    """All three rates at once."""
    return PitchErrors(gross_pitch_error(reference, estimate, tolerance), voicing_decision_error(reference, estimate),
                       f0_frame_error(reference, estimate, tolerance))
