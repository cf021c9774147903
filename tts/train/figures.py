"""Pictures for TensorBoard: mel spectrograms and attention alignments (matplotlib, no display)."""

from __future__ import annotations

import numpy as np

__all__ = ["plot_mel", "plot_alignment"]


def _figure(width: float = 8, height: float = 3):
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    return figure, figure.add_subplot(1, 1, 1)


def plot_mel(mel: np.ndarray, title: str = "mel"):
    """A (n_mels, n_frames) log-mel as an image, low frequencies at the bottom."""
    figure, axes = _figure()
    image = axes.imshow(mel, aspect="auto", origin="lower", interpolation="none")
    axes.set(title=title, xlabel="frame", ylabel="mel band")
    figure.colorbar(image, ax=axes)
    figure.tight_layout()
    return figure


def plot_alignment(alignment: np.ndarray, title: str = "alignment"):
    """A (n_frames, n_tokens) attention alignment, tokens on the vertical axis as in NVIDIA's plots."""
    figure, axes = _figure(6, 4)
    image = axes.imshow(alignment.T, aspect="auto", origin="lower", interpolation="none")
    axes.set(title=title, xlabel="decoder step", ylabel="token")
    figure.colorbar(image, ax=axes)
    figure.tight_layout()
    return figure
