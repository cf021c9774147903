"""Checks on what a caller hands the Synthesizer (and the demo hands it): one place, clear messages.

Everything a user or a web visitor can pass goes through here before any model runs, so a hostile
or mistaken input is a `UserError` (an `AudioError` for audio) that says what was expected and
what was found, never a traceback from deep inside numpy, librosa or torch.

- `InputLimits`: the bounds of one call (text length, reference duration, output length); the API
  has generous defaults, the demo passes tighter ones. `holder` names who sets them in messages.
- `check_text(text, what, limits)`: a `str` (bytes are refused: decode them first), no control
  characters but newline, carriage return and tab, no lone surrogates, at most `max_text_chars`.
- `reference_audio(value, sample_rate, what, limits)`: reference audio → mono float32 (n_samples,)
  at `sample_rate`. `value` is a path, an array at `sample_rate`, or an `(array, rate)` pair
  (soundfile/librosa order) or `(rate, array)` pair (Gradio's order). Arrays are (n_samples,) or
  (n_samples, channels) with at most `MAX_CHANNELS` channels (averaged). Integer samples are
  scaled by their full range as in WAV files: signed b-bit x → x / 2^(b-1) (int16 / 32768), unsigned
  x → (x - 2^(b-1)) / 2^(b-1) (uint8: 128 is silence). Float samples must be finite, with peaks up to
  `MAX_FLOAT_PEAK` (resampled audio overshoots 1 a little; 32767 means int16 values stored as
  floats). Empty, all-zero, too short or too long audio is refused; other rates are resampled.
- `check_number(value, what, low, high)`, `check_option(name, value)` (ranges in `OPTION_RANGES`),
  `check_seed(value)`: finite numbers in range, integers where they must be whole.
- `check_style_weights(value, n_tokens)`: GST token weights, finite and in range.
- `check_f0(f0, what)`: an F0 contour in Hz (0 = unvoiced) with no NaN, infinite or negative value.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
import re
import reprlib
from pathlib import Path
from typing import Any

import numpy as np

from tts.errors import AudioError, ConfigError, UserError

__all__ = ["InputLimits", "OPTION_RANGES", "MIN_SAMPLE_RATE", "MAX_SAMPLE_RATE", "MAX_CHANNELS", "MAX_FLOAT_PEAK",
           "MAX_STYLE_WEIGHTS", "check_text", "reference_audio", "audio_array", "as_array", "check_style_weights",
           "check_number", "check_option", "check_seed", "check_f0"]

MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 4000, 384_000  # telephone-band speech .. the highest rate hardware records
MAX_CHANNELS = 8  # 7.1 audio; more is not a recording of one voice
MAX_FLOAT_PEAK = 2.0
MAX_SEED = 2 ** 63 - 1
MAX_STYLE_WEIGHTS = 64  # longer 1-D arrays are audio: no GST has this many tokens

# The allowed range of each numeric option, for the API and the demo alike.
OPTION_RANGES: dict[str, tuple[float, float]] = {
    "sigma": (0.0, 2.0),  # flow temperature: NVIDIA samples at 0.5-1.0
    "denoise": (0.0, 1.0),  # WaveGlow bias removal strength: 0.01-0.1 in practice
    "pitch_shift": (-24.0, 24.0),  # semitones: two octaves either way
    "prenet_dropout": (0.0, 1.0),
    "gate_threshold": (0.0, 2.0),  # above 1 the stop gate never fires: decoding runs max_decoder_steps
    "bpm": (10.0, 500.0),
    "style weight": (-10.0, 10.0),  # GST token weights; 0-1 in practice
}

# C0 and C1 control characters except tab, newline and carriage return (text files written on
# Windows end lines with \r\n), and lone surrogates (left by errors="surrogateescape" decoding):
# the text frontend cannot speak them, and a NUL in text is a sign of binary data.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


@dataclasses.dataclass(frozen=True)
class InputLimits:
    """The bounds of one call: the API's defaults; the demo passes tighter ones (holder "the demo")."""

    max_text_chars: int = 50_000  # ~8,000 words, about an hour of speech
    max_reference_seconds: float = 30.0
    min_reference_seconds: float = 0.25  # shorter clips carry no style, pitch or rhythm to copy
    max_sentence_seconds: float = 60.0  # bounds max_decoder_steps (each sentence is decoded alone)
    max_song_seconds: float = 300.0
    holder: str = "the Synthesizer"  # who sets these limits, for messages

    def __post_init__(self) -> None:
        for field in ("max_text_chars", "max_reference_seconds", "min_reference_seconds", "max_sentence_seconds",
                      "max_song_seconds"):
            value = getattr(self, field)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ConfigError(f"InputLimits.{field}: expected a positive number, found {value!r}")
        if self.min_reference_seconds >= self.max_reference_seconds:
            raise ConfigError(f"InputLimits: min_reference_seconds ({self.min_reference_seconds}) must be below "
                              f"max_reference_seconds ({self.max_reference_seconds})")


def check_text(text: Any, what: str = "text", limits: InputLimits | None = None) -> str:
    """`text` itself when it is a str the text frontend can take; else a `UserError` saying why."""
    limits = limits or InputLimits()
    if isinstance(text, (bytes, bytearray, memoryview)):
        raise UserError(f"{what}: expected a str, found {type(text).__name__}; decode it first "
                        "(e.g. data.decode('utf-8'))")
    if not isinstance(text, str):
        raise UserError(f"{what}: expected a str, found {type(text).__name__}")
    if len(text) > limits.max_text_chars:
        raise UserError(f"{what} is {len(text)} characters long; {limits.holder} takes at most "
                        f"{limits.max_text_chars}")
    bad = _FORBIDDEN.search(text)
    if bad is not None:
        code = ord(bad.group())
        if 0xD800 <= code <= 0xDFFF:
            raise UserError(f"{what}: a lone surrogate U+{code:04X} at position {bad.start()} is not valid Unicode "
                            "(bytes decoded with errors='surrogateescape'?); decode the text as UTF-8")
        raise UserError(f"{what}: a control character U+{code:04X} at position {bad.start()}; text may hold "
                        "newlines and tabs but no other control characters (is this binary data?)")
    return text


def check_number(value: Any, what: str, low: float, high: float, integer: bool = False,
                 holder: str | None = None, note: str = "") -> float | int:
    """A finite number in [low, high] (an int when `integer`), else a `UserError` giving the range
    (as "`holder` takes low to high" when `holder` is given; `note` follows the range in brackets)."""
    expected = f"{holder} takes {_plain(low)} to {_plain(high)}" if holder else \
        f"expected {'an integer' if integer else 'a number'} in {_plain(low)}..{_plain(high)}"
    expected += f" ({note})" if note else ""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise UserError(f"{what}: {expected}, found {type(value).__name__} {reprlib.repr(value)}")
    if integer and isinstance(value, numbers.Integral):
        number: float | int = int(value)
    else:
        number = float(value)
        if not math.isfinite(number):
            raise UserError(f"{what}: {expected}, found {number}")
        if integer:
            if not number.is_integer():
                raise UserError(f"{what}: {expected}, found {number} (not a whole number)")
            number = int(number)
    if not low <= number <= high:
        raise UserError(f"{what}: {expected}, found {_plain(number)}")
    return number


def check_option(name: str, value: Any) -> float | None:
    """A numeric option of `OPTION_RANGES` (None stays None) as a float."""
    if value is None:
        return None
    low, high = OPTION_RANGES[name]
    return float(check_number(value, name, low, high))


def check_seed(value: Any) -> int | None:
    """None (random) or a whole number in 0..2^63-1."""
    return None if value is None else int(check_number(value, "seed", 0, MAX_SEED, integer=True))


def check_style_weights(value: Any, n_tokens: int) -> np.ndarray:
    """GST token weights: `n_tokens` finite numbers in the "style weight" range → float32 (n_tokens,)."""
    weights = as_array(value, "style weights")
    if weights.dtype.kind not in "iuf" or weights.shape != (n_tokens,):
        raise UserError(f"style weights: expected {n_tokens} numbers (one per style token), found {weights.dtype} "
                        f"of shape {weights.shape} (a 1-D array of at most {MAX_STYLE_WEIGHTS} numbers is read as "
                        "token weights; reference audio is longer)")
    low, high = OPTION_RANGES["style weight"]
    bad = np.flatnonzero(~np.isfinite(weights) | (weights < low) | (weights > high))
    if bad.size:
        raise UserError(f"style weights: weight {bad[0]} is {weights[bad[0]]}; expected finite numbers in "
                        f"{_plain(low)}..{_plain(high)}")
    return weights.astype(np.float32)


def check_f0(f0: Any, what: str = "f0") -> np.ndarray:
    """An F0 contour (n_frames,) in Hz, 0 = unvoiced → float32; NaN, inf or negative values are refused."""
    contour = as_array(f0, what)
    if contour.dtype.kind not in "iuf" or contour.ndim != 1 or contour.size == 0:
        raise UserError(f"{what}: expected a 1-D array of frequencies in Hz, found {contour.dtype} "
                        f"of shape {contour.shape}")
    contour = contour.astype(np.float32)
    bad = np.flatnonzero(~np.isfinite(contour) | (contour < 0))
    if bad.size:
        raise UserError(f"{what}: frame {bad[0]} is {contour[bad[0]]}; F0 must be finite and >= 0 Hz "
                        f"({bad.size} bad frames)")
    return contour


def reference_audio(value: Any, sample_rate: int, what: str, limits: InputLimits | None = None) -> np.ndarray:
    """Reference audio (a path, an array at `sample_rate`, or an array with its rate) → float32 (n_samples,)."""
    limits = limits or InputLimits()
    if isinstance(value, (str, os.PathLike)):
        return _audio_file(Path(value), sample_rate, what, limits)
    if isinstance(value, (bytes, bytearray)):
        raise AudioError(f"{what}: expected a path or an array of samples, found {type(value).__name__}; "
                         "write the encoded audio to a file and pass its path")
    rate = sample_rate
    if isinstance(value, tuple):
        if len(value) != 2:
            raise AudioError(f"{what}: expected (audio, sample_rate) or (sample_rate, audio), found a tuple of "
                             f"{len(value)} items")
        first_is_rate = value[0] is None or np.ndim(value[0]) == 0
        rate, value = (value[0], value[1]) if first_is_rate else (value[1], value[0])
    return audio_array(value, rate, sample_rate, what, limits)


def audio_array(value: Any, rate: Any, sample_rate: int, what: str, limits: InputLimits | None = None) -> np.ndarray:
    """An array of samples at `rate` → mono float32 at `sample_rate` (the rules in the module docstring)."""
    limits = limits or InputLimits()
    rate = _check_rate(rate, what)
    audio = as_array(value, what)
    if audio.dtype.kind not in "iuf":
        raise AudioError(f"{what}: expected integer or float samples, found dtype {audio.dtype}")
    if audio.ndim not in (1, 2) or (audio.ndim == 2 and not 1 <= audio.shape[1] <= MAX_CHANNELS):
        hint = "; if it is (channels, n_samples), as librosa returns, pass audio.T" if audio.ndim == 2 else ""
        raise AudioError(f"{what}: expected samples of shape (n_samples,) or (n_samples, channels) with at most "
                         f"{MAX_CHANNELS} channels, found shape {audio.shape}{hint}")
    _check_duration(audio.shape[0] / rate, what, limits)
    audio = _to_float(audio, what)
    if audio.ndim == 2:
        audio = audio.mean(axis=1)
    _check_not_silent(audio, what)
    if rate != sample_rate:
        import librosa  # as tts.audio.load_audio resamples

        audio = librosa.resample(audio, orig_sr=rate, target_sr=sample_rate, res_type="soxr_hq")
    return np.ascontiguousarray(audio, dtype=np.float32)


# -- helpers ------------------------------------------------------------------------------------


def _plain(number: float | int) -> str:
    return f"{number:g}" if isinstance(number, float) else str(number)


def as_array(value: Any, what: str) -> np.ndarray:
    """A numpy view of a list, array or torch tensor (on any device); a `UserError` for anything else."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor, on any device
        value = value.detach().cpu().numpy()
    try:
        return np.asarray(value)
    except (ValueError, TypeError) as error:  # ragged nested lists, objects numpy cannot hold
        raise UserError(f"{what}: expected an array of numbers, found {type(value).__name__} ({error})") from None


def _check_rate(rate: Any, what: str) -> int:
    if rate is None:
        raise AudioError(f"{what}: the sample rate is missing; pass (audio, sample_rate)")
    return int(check_number(rate, f"{what}: sample rate", MIN_SAMPLE_RATE, MAX_SAMPLE_RATE, integer=True))


def _check_duration(seconds: float, what: str, limits: InputLimits) -> None:
    if seconds > limits.max_reference_seconds:
        raise AudioError(f"{what} is {seconds:.1f} s long; {limits.holder} takes clips up to "
                         f"{limits.max_reference_seconds:g} s")
    if seconds < limits.min_reference_seconds:
        raise AudioError(f"{what} is {seconds:.3f} s long; {limits.holder} needs clips of at least "
                         f"{limits.min_reference_seconds:g} s" + (" (it is empty)" if seconds == 0 else ""))


def _to_float(audio: np.ndarray, what: str) -> np.ndarray:
    """Integer samples scaled by their full range; float samples checked for NaN/inf and their peak."""
    kind = audio.dtype.kind
    if kind in "iu":
        half = 2.0 ** (8 * audio.dtype.itemsize - 1)
        offset = half if kind == "u" else 0.0  # unsigned PCM centres on half its range
        return ((audio.astype(np.float64) - offset) / half).astype(np.float32)
    bad = np.argwhere(~np.isfinite(audio))
    if bad.size:
        index = int(bad[0][0]) if audio.ndim == 1 else tuple(int(i) for i in bad[0])
        raise AudioError(f"{what}: sample {index} is {audio[tuple(bad[0])]}; audio must be finite "
                         f"({len(bad)} NaN or infinite samples)")
    peak = float(np.abs(audio).max())
    if peak > MAX_FLOAT_PEAK:
        raise AudioError(f"{what}: float samples must lie in [-1, 1], found a peak of {peak:g} (integer samples "
                         "stored as floats? pass the integer array, or divide int16 values by 32768)")
    return audio.astype(np.float32)


def _check_not_silent(audio: np.ndarray, what: str) -> None:
    if not np.any(audio):
        raise AudioError(f"{what}: every sample is zero (silence); a reference must hold the voice to copy")


def _audio_file(path: Path, sample_rate: int, what: str, limits: InputLimits) -> np.ndarray:
    """Check a file's header (rate, channels, duration) before reading it, then read and check its samples."""
    from tts.audio import audio_info, load_audio

    try:
        file_rate, n_frames, channels = audio_info(path)
    except AudioError as error:  # it names the file; say which argument it came from
        raise AudioError(f"{what}: {error}") from None
    what = f"{what} ({path})"
    if not MIN_SAMPLE_RATE <= file_rate <= MAX_SAMPLE_RATE:
        raise AudioError(f"{what}: the file says {file_rate} Hz; expected {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz")
    if channels > MAX_CHANNELS:
        raise AudioError(f"{what}: {channels} channels; expected at most {MAX_CHANNELS}")
    _check_duration(n_frames / file_rate, what, limits)
    try:
        audio = load_audio(path, sample_rate)
    except AudioError as error:  # the header was fine but the samples are not (truncated, NaN)
        raise AudioError(f"{what}: {error}") from None
    audio = _to_float(audio, what)
    _check_not_silent(audio, what)
    return audio
