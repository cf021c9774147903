"""Figures for the demo page: mel spectrograms, attention alignments, F0 contours, interpolation steps.

matplotlib `Figure` objects built without pyplot (thread-safe under Gradio's worker threads);
`gr.Plot` renders and closes them.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

__all__ = ["mel_figure", "alignment_figure", "f0_figure", "steps_figure", "note_figure"]

_CMAP = "magma"


def _seconds(n_frames: int, frame_seconds: float) -> list[float]:
    return [0.0, n_frames * frame_seconds]


def mel_figure(mel: np.ndarray, frame_seconds: float, title: str = "mel spectrogram") -> Figure:
    """A (n_mels, n_frames) log-mel, time in seconds across, low frequencies at the bottom."""
    figure = Figure(figsize=(8, 2.6), layout="constrained")
    axes = figure.add_subplot()
    image = axes.imshow(mel, aspect="auto", origin="lower", interpolation="none", cmap=_CMAP,
                        extent=[*_seconds(mel.shape[1], frame_seconds), 0, mel.shape[0]])
    axes.set(title=title, xlabel="seconds", ylabel="mel band")
    figure.colorbar(image, ax=axes, label="log magnitude")
    return figure


def note_figure(message: str) -> Figure:
    """A small figure holding only a sentence (for a plot that does not apply)."""
    figure = Figure(figsize=(6, 1.2), layout="constrained")
    axes = figure.add_subplot()
    axes.text(0.5, 0.5, message, ha="center", va="center", wrap=True)
    axes.set_axis_off()
    return figure


def alignment_figure(alignment: np.ndarray | None, text: str = "") -> Figure:
    """A (n_frames, n_tokens) attention alignment: which token each decoder step looked at."""
    if alignment is None:
        return note_figure("No single alignment: the text was spoken as several sentences.")
    figure = Figure(figsize=(6, 3.4), layout="constrained")
    axes = figure.add_subplot()
    image = axes.imshow(alignment.T, aspect="auto", origin="lower", interpolation="none", cmap="viridis")
    title = f"alignment: {text[:60]}{'…' if len(text) > 60 else ''}" if text else "alignment"
    axes.set(title=title, xlabel="decoder step", ylabel="input token")
    figure.colorbar(image, ax=axes, label="attention")
    return figure


def _voiced(f0: np.ndarray) -> np.ndarray:
    f0 = np.asarray(f0, dtype=np.float64).copy()
    f0[f0 <= 0] = np.nan  # unvoiced frames leave gaps in the line
    return f0


def f0_figure(contours: Sequence[tuple[str, np.ndarray]], frame_seconds: float) -> Figure:
    """F0 contours (Hz per frame, 0 = unvoiced) over time, one line each: e.g. reference vs result."""
    figure = Figure(figsize=(8, 2.8), layout="constrained")
    axes = figure.add_subplot()
    for (label, f0), style in zip(contours, ("-", "--", ":")):
        time = np.arange(len(f0)) * frame_seconds
        axes.plot(time, _voiced(f0), style, label=f"{label} ({int(np.sum(np.asarray(f0) > 0))} voiced frames)")
    axes.set(title="pitch (F0) contours", xlabel="seconds", ylabel="Hz")
    axes.grid(alpha=0.3)
    axes.legend(loc="upper right")
    return figure


def steps_figure(mels: Sequence[np.ndarray], labels: Sequence[str]) -> Figure:
    """One small mel per interpolation step, side by side, plus each step's mean band energy."""
    figure = Figure(figsize=(min(2.2 * len(mels), 14), 3.8), layout="constrained")
    grid = figure.add_gridspec(2, len(mels), height_ratios=(3, 2))
    low = min(float(mel.min()) for mel in mels)
    high = max(float(mel.max()) for mel in mels)
    for index, (mel, label) in enumerate(zip(mels, labels)):
        axes = figure.add_subplot(grid[0, index])
        axes.imshow(mel, aspect="auto", origin="lower", interpolation="none", cmap=_CMAP, vmin=low, vmax=high)
        axes.set_title(label, fontsize=8)
        axes.set_xticks([])
        axes.set_yticks([])
    profile = figure.add_subplot(grid[1, :])
    for index, mel in enumerate(mels):
        profile.plot(mel.mean(axis=1), color=_step_colour(index, len(mels)), label=labels[index])
    profile.set(xlabel="mel band", ylabel="mean log magnitude")
    profile.legend(fontsize=7, ncol=min(len(mels), 6), loc="lower left")
    return figure


def _step_colour(index: int, count: int) -> tuple[float, float, float]:
    position = index / max(count - 1, 1)
    return (0.15 + 0.7 * position, 0.35, 0.85 - 0.7 * position)
