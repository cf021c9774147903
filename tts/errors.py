"""Exceptions that mean "the user gave us something wrong", as opposed to a bug.

The CLI prints a `UserError` as one line on stderr and exits 1 without a traceback; anything
else is a bug and keeps its traceback. Messages name the file (and line) and say what was
expected and what was found.
"""

from __future__ import annotations

__all__ = ["UserError", "AudioError", "ConfigError", "DataError", "EngineMissingError", "TrainingError"]


class UserError(Exception):
    """A mistake in the user's input: a missing file, bad text, an unknown option value."""


class AudioError(UserError):
    """An audio file that cannot be read, is empty, or is not audio."""


class ConfigError(UserError):
    """A config value or key that does not fit the config dataclass."""


class DataError(UserError):
    """A data set (filelist, metadata.csv) that cannot be used."""


class EngineMissingError(UserError):
    """A speech engine needed to build the synthetic corpus is not installed."""


class TrainingError(UserError):
    """A training run that cannot go on as configured (diverged loss, a run folder in the way)."""
