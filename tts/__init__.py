"""voxflow mel-spectrogram generators, their shared building blocks, data and training.

`Synthesizer` is exported lazily (PEP 562) so that `import vocoders` → `tts.audio` does not
pull in `tts.api`, which itself imports `vocoders`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Synthesizer", "load_model"]


def __getattr__(name: str) -> Any:
    if name == "Synthesizer":
        from tts.api import Synthesizer

        return Synthesizer
    if name == "load_model":
        from tts.loading import load_model

        return load_model
    raise AttributeError(f"module 'tts' has no attribute {name!r}")
