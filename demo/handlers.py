"""The demo's handlers (`Studio`, one method per button), its guards (`Limits`) and the properties of
the controls that depend on a voice (`voice_controls`). Gradio-facing but layout-free: the tests call
these directly; `demo.app` lays them out.

Each handler checks its guards, calls the `tts.api.Synthesizer` and returns what its outputs show:
audio as (sample rate, int16 samples) and matplotlib figures. A `UserError` (a tripped guard's too)
becomes a `gr.Error`, which the page shows as a message, never a traceback. The checks themselves
are the API's (`tts.inputs`): the Studio's synthesizers share the voices' weights but carry the
demo's tighter `InputLimits` (`Limits.inputs()`), so a request the demo refuses never reaches a model.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import reprlib
from pathlib import Path
from typing import Any, Mapping

import gradio as gr
import numpy as np

from demo import plots
from tts import inputs
from tts.api import Synthesizer, SynthesisResult
from tts.errors import UserError
from tts.inputs import InputLimits
from tts.voices import INTERPOLATION_MODES

__all__ = ["Limits", "LIMITS", "SAMPLE_SCORE", "SAMPLE_TEXTS", "Studio", "load_voices", "voice_controls",
           "transfer_choices"]

SAMPLE_SCORE = Path(__file__).parent / "assets" / "duet.musicxml"
SAMPLE_TEXTS = ("The quick brown fox jumps over the lazy dog.",
                "Would you like a cup of tea before the train leaves?",
                "I never said she stole my money.")


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one request may ask for: bounds on the work a visitor can queue."""

    max_text_chars: int = 500
    max_upload_bytes: int = 10 * 1024 * 1024
    max_audio_seconds: float = 30.0
    max_steps: int = 8
    queue_size: int = 16
    max_decoder_steps: int | None = None  # None: the model's own cap (it grows with the text)

    def inputs(self) -> InputLimits:
        """These limits as the API's input limits (messages say "the demo takes ...")."""
        return InputLimits(max_text_chars=self.max_text_chars, max_reference_seconds=self.max_audio_seconds,
                           max_song_seconds=4 * self.max_audio_seconds, holder="the demo")


LIMITS = Limits()
VoiceSpec = Synthesizer | str | os.PathLike | tuple


def load_voices(voices: Mapping[str, VoiceSpec]) -> dict[str, Synthesizer]:
    """name → a Synthesizer, a model path, or a (model path, vocoder path or None) pair."""
    if not voices:
        raise UserError("the demo needs at least one voice")
    loaded = {}
    for name, spec in voices.items():
        if isinstance(spec, Synthesizer):
            loaded[str(name)] = spec
        else:
            model, vocoder = spec if isinstance(spec, tuple) else (spec, None)
            loaded[str(name)] = Synthesizer.from_pretrained(model, vocoder=vocoder)
    return loaded


def _page_errors(handler):
    """A UserError becomes an error message in the page (no traceback in the page or the log)."""
    @functools.wraps(handler)
    def wrapper(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except UserError as error:
            raise gr.Error(str(error), print_exception=False) from None
    return wrapper


def _audio(result: SynthesisResult | np.ndarray, sample_rate: int | None = None) -> tuple[int, np.ndarray]:
    """Gradio's numpy audio: (sample rate, int16 samples)."""
    audio = result.audio if isinstance(result, SynthesisResult) else result
    rate = result.sample_rate if isinstance(result, SynthesisResult) else sample_rate
    return int(rate), (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)


def _frame_seconds(result: SynthesisResult) -> float:
    return result.duration / max(result.mel.shape[1], 1)


def _seed(seed: float | None) -> int | None:
    return None if seed is None or seed == "" else inputs.check_seed(seed)


def _speaker(synth: Synthesizer, speaker: str | None) -> str | None:
    return speaker if "speaker" in synth.capabilities and speaker not in (None, "") else None


def _has_waveglow(synth: Synthesizer) -> bool:
    return type(synth.vocoder).__name__ == "WaveGlowVocoder"


def transfer_choices(synth: Synthesizer) -> list[str]:
    """What the Style transfer tab offers for this voice."""
    if synth.kind == "flowtron":
        return ["posterior style"]
    wanted = (("GST style", "style"), ("pitch", "pitch"), ("rhythm", "rhythm"))
    return [label for label, capability in wanted if capability in synth.capabilities]


def _describe(name: str, synth: Synthesizer) -> str:
    speakers = synth.speakers or (() if "speaker" not in synth.capabilities else ("ids only",))
    takes = ", ".join(sorted(synth.capabilities)) or "text only"
    who = f"{len(speakers)} speakers ({', '.join(speakers[:6])}{'…' if len(speakers) > 6 else ''})" \
        if len(speakers) > 1 else "one speaker"
    return (f"**{name}**: {synth.kind} voice, {who}, {synth.sample_rate} Hz, "
            f"{type(synth.vocoder).__name__}. Takes: {takes}.")


def _walk_note(kind: str, modes: list[str]) -> str:
    if not modes:
        return "*Interpolation needs a Flowtron voice, or a Tacotron 2 / Mellotron voice with several speakers " \
               "or style tokens: choose one above.*"
    if kind == "flowtron":
        return ""
    return (f"*This {kind} voice walks between speakers and from its default style to a reference's; "
            "the latent paths (samples, style over time) need a Flowtron voice.*")


def voice_controls(name: str, synth: Synthesizer) -> dict[str, dict[str, Any]]:
    """Each voice-dependent control's properties (used to build the page and to update it)."""
    caps, speakers = synth.capabilities, list(synth.speakers)
    choices = transfer_choices(synth)
    sings, modes = "sing" in caps, list(synth.interpolation_modes)
    walks, flows = bool(modes), synth.kind == "flowtron"
    return {
        "note": dict(value=_describe(name, synth)),
        "speaker": dict(choices=speakers, value=speakers[0] if speakers else None,
                        visible=bool(speakers) and "speaker" in caps, interactive=True),
        "sigma": dict(visible="sigma" in caps, value=0.5 if synth.kind == "flowtron" else 0.6),
        "denoise": dict(visible=_has_waveglow(synth)),
        "what": dict(choices=choices, value=choices[:1], interactive=bool(choices)),
        "transfer_note": dict(value="" if choices else f"*{synth.kind} voices take no reference audio: "
                              "choose a Mellotron, Flowtron or GST voice above.*"),
        "pitch_shift": dict(visible="pitch" in caps),
        "sing": dict(interactive=sings),
        "sing_note": dict(value="" if sings else "*Singing needs a Mellotron voice: choose one above.*"),
        "walk": dict(interactive=walks),
        "walk_note": dict(value=_walk_note(synth.kind, modes)),
        "mode": dict(choices=modes or list(INTERPOLATION_MODES), value=modes[0] if modes else None,
                     interactive=walks),
        "start": dict(choices=speakers, value=speakers[0] if speakers else None, visible=walks and len(speakers) > 1),
        "end": dict(choices=speakers, value=speakers[-1] if speakers else None, visible=walks and len(speakers) > 1),
        "walk_sigma": dict(visible=flows),
        "walk_transcript": dict(visible=flows),
    }


class Studio:
    """The page's handlers, one per button. Each checks its guards, calls the Synthesizer and returns
    what its outputs show; `UserError`s (the guards' too) reach the page as `gr.Error` messages."""

    def __init__(self, voices: Mapping[str, VoiceSpec], limits: Limits = LIMITS) -> None:
        self.limits = limits
        # the same weights under the demo's limits: the API then refuses what the demo does not take
        self.voices = {name: synth.with_limits(limits.inputs()) for name, synth in load_voices(voices).items()}

    def voice(self, name: str) -> Synthesizer:
        if not isinstance(name, str) or name not in self.voices:
            raise UserError(f"unknown voice {reprlib.repr(name)}; this demo has {', '.join(self.voices)}")
        return self.voices[name]

    # -- guards -----------------------------------------------------------------------------------

    def check_text(self, text: str | None, what: str = "text") -> str:
        text = inputs.check_text("" if text is None else text, what, self.limits.inputs()).strip()
        if not text:
            raise UserError(f"{what}: type something first")
        return text

    def read_upload(self, path: str | None, synth: Synthesizer, what: str = "reference audio") -> np.ndarray:
        """An uploaded or recorded clip (a file in Gradio's upload cache) → float32 audio at the voice's rate."""
        if not path:
            raise UserError(f"{what}: record or upload a clip first")
        if not isinstance(path, (str, os.PathLike)) or not Path(path).is_file():
            raise UserError(f"{what}: the upload did not arrive; record or upload the clip again")
        size = Path(path).stat().st_size
        if size > self.limits.max_upload_bytes:
            raise UserError(f"{what} is {size / 2 ** 20:.1f} MB; the demo takes files up to "
                            f"{self.limits.max_upload_bytes / 2 ** 20:.0f} MB")
        try:
            return inputs.reference_audio(path, synth.sample_rate, what, self.limits.inputs())
        except UserError as error:  # name the file as the visitor knows it, not by its server path
            raise type(error)(str(error).replace(str(path), Path(path).name)) from None

    # -- handlers ---------------------------------------------------------------------------------

    def on_voice(self, name: str) -> list[dict]:
        return [gr.update(**properties) for properties in voice_controls(name, self.voice(name)).values()]

    @_page_errors
    def speak(self, text: str, voice: str, speaker: str | None = None, sigma: float | None = None,
              denoise: float | None = None, seed: float | None = 1):
        synth = self.voice(voice)
        # checked even where the voice ignores them: a hidden slider still sends a valid value
        sigma, denoise = inputs.check_option("sigma", sigma), inputs.check_option("denoise", denoise)
        result = synth.synthesize(self.check_text(text), speaker=_speaker(synth, speaker),
                                  sigma=sigma if "sigma" in synth.capabilities else None,
                                  denoise=denoise if _has_waveglow(synth) and denoise else None,
                                  seed=_seed(seed), max_decoder_steps=self.limits.max_decoder_steps)
        return (_audio(result), plots.mel_figure(result.mel, _frame_seconds(result)),
                plots.alignment_figure(result.alignment, result.text))

    @_page_errors
    def transfer(self, reference: str | None, transcript: str | None, what: list[str] | None, pitch_shift: float,
                 text: str | None, voice: str, speaker: str | None = None, seed: float | None = 1):
        synth = self.voice(voice)
        what = {what} if isinstance(what, str) else set(what or ())
        if not what:
            offered = ", ".join(transfer_choices(synth)) or "nothing: this voice takes no reference audio"
            raise UserError(f"choose what to transfer ({offered})")
        options: dict[str, Any] = {}
        if "rhythm" in what or "posterior style" in what:
            options["reference_text"] = self.check_text(transcript, "the reference's transcript")
        # rhythm speaks the reference's own words with its timing
        text = options["reference_text"] if "rhythm" in what else self.check_text(text, "target text")
        audio = self.read_upload(reference, synth)
        if what & {"GST style", "posterior style"}:
            options["style"] = audio
        if "pitch" in what:
            options.update(pitch=audio, pitch_shift=inputs.check_option("pitch_shift", pitch_shift or 0.0))
        if "rhythm" in what:
            options["rhythm"] = audio
        result = synth.synthesize(text, speaker=_speaker(synth, speaker), seed=_seed(seed),
                                  max_decoder_steps=self.limits.max_decoder_steps, **options)
        from tts.conditioning import extract_f0

        frame = 256 / synth.sample_rate  # extract_f0's hop
        contours = [("reference", extract_f0(audio, synth.sample_rate)),
                    ("result", extract_f0(result.audio, synth.sample_rate))]
        return _audio(result), plots.f0_figure(contours, frame), plots.mel_figure(result.mel, _frame_seconds(result))

    @_page_errors
    def sing(self, score_source: str, upload: str | None, part: str | int, voice: str, speaker: str | None = None,
             pitch_shift: float = 0.0, bpm: float | None = 0, seed: float | None = 1):
        synth = self.voice(voice)
        if score_source == "my upload":
            if not upload:
                raise UserError("upload a MusicXML score first, or choose the sample duet")
            if Path(upload).stat().st_size > self.limits.max_upload_bytes:
                raise UserError(f"the score is over {self.limits.max_upload_bytes / 2 ** 20:.0f} MB")
            score = upload
        else:
            score = SAMPLE_SCORE
        part = self.check_text(str(part if part is not None else 0), "part")
        try:  # the API refuses a part longer than the demo's limit before singing it
            result = synth.sing(score, part=int(part) if part.isdigit() else part, speaker=_speaker(synth, speaker),
                                pitch_shift=pitch_shift or 0.0, bpm=bpm or None, seed=_seed(seed))
        except UserError as error:  # name the score as the visitor knows it, not by its server path
            raise UserError(str(error).replace(str(score), "the score")) from None
        return _audio(result), plots.mel_figure(result.mel, _frame_seconds(result), f"sung: {result.text[:60]}")

    @_page_errors
    def interpolate(self, text: str, mode: str, start: str | None, end: str | None, steps: float, sigma: float,
                    seed: float | None, reference: str | None, transcript: str | None, voice: str):
        synth = self.voice(voice)
        text = self.check_text(text)
        steps = inputs.check_number(steps, "steps", 2, self.limits.max_steps, integer=True, holder="the demo")
        if mode not in synth.interpolation_modes:
            raise UserError(f"interpolation mode: this {synth.kind} voice takes "
                            f"{', '.join(synth.interpolation_modes) or 'none'}, found {reprlib.repr(mode)}")
        options: dict[str, Any] = {}
        if mode == "speakers":
            options.update(start=start, end=end)
        elif mode in ("style", "style_over_time"):
            options.update(style=self.read_upload(reference, synth), start=_speaker(synth, start))
            if synth.kind == "flowtron":  # its posterior needs the reference's words; GST hears style only
                options.update(reference_text=self.check_text(transcript, "the reference's transcript"))
        results = synth.interpolate(text, mode=mode, steps=steps, sigma=sigma, seed=_seed(seed), **options)
        labels = [f"step {index + 1}" + (f" ({index / (steps - 1):.2f})" if mode != "style_over_time" else "")
                  for index in range(len(results))]
        pause = np.zeros(int(0.3 * synth.sample_rate), dtype=np.float32)
        walk = np.concatenate([part for result in results for part in (result.audio, pause)])
        clips = [_audio(result) for result in results]
        return (_audio(walk, synth.sample_rate), plots.steps_figure([r.mel for r in results], labels), clips,
                gr.update(maximum=len(clips), value=1, visible=len(clips) > 1), clips[0])

    @staticmethod
    def pick_step(clips: list | None, step: float):
        if not clips:
            return None
        try:
            index = int(step)
        except (TypeError, ValueError, OverflowError):  # NaN, inf or junk from a hand-made request
            index = 1
        return clips[min(max(index, 1), len(clips)) - 1]
