"""Voices: a loaded mel generator plus what it can be asked for (see `tts.voices.base.Voice`)."""

from tts.loading import LoadedModel
from tts.voices.base import SUPPORTS, Voice
from tts.voices.flowtron import INTERPOLATION_MODES, FlowtronVoice
from tts.voices.mellotron import MellotronVoice

__all__ = ["Voice", "MellotronVoice", "FlowtronVoice", "SUPPORTS", "INTERPOLATION_MODES", "voice_for"]

_VOICE_CLASSES = {"tacotron2": Voice, "mellotron": MellotronVoice, "flowtron": FlowtronVoice}


def voice_for(loaded: LoadedModel) -> Voice:
    """The `Voice` class that fits the loaded model's kind."""
    return _VOICE_CLASSES[loaded.kind](loaded)
