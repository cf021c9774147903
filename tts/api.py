"""`Synthesizer`: text in, speech out. A mel generator, a vocoder and a text frontend in one bundle.

    from tts import Synthesizer
    synth = Synthesizer.from_pretrained()                         # the bundled default voice
    synth = Synthesizer.from_pretrained("flowtron")               # another bundled voice, by name
    synth = Synthesizer.from_pretrained("voice.safetensors", vocoder="waveglow.safetensors")
    synth = Synthesizer.from_pretrained("tacotron2_statedict.pt",
                                        vocoder="waveglow_256channels_universal_v5.pt")
    out = synth.synthesize("Hello world.", speaker="slt", seed=1)
    out.audio, out.sample_rate, out.mel, out.alignment
    out.save("hello.wav")

This is the only module that imports both mel generators and vocoders. Long text is split into
sentences (`text.split_sentences`), synthesized as one batch and joined with short pauses.
A model ignores nothing silently: an option it does not support is an error naming the models
that do. Every argument is checked (`tts.inputs`) before a model runs: text, reference audio,
numbers and their ranges, under the synthesizer's `InputLimits` (text length, reference duration,
output length), so a hostile or mistaken input is a `UserError` with a clear message:

    synth = Synthesizer.from_pretrained(path, limits=InputLimits(max_text_chars=200_000))
    strict = synth.with_limits(InputLimits(max_text_chars=500, holder="my service"))  # same weights
"""

from __future__ import annotations

import copy
import dataclasses
import numbers
import os
import secrets
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from tts import inputs
from tts.audio import AudioConfig, mel_spectrogram, save_audio
from tts.errors import UserError
from tts.inputs import InputLimits
from tts.loading import read_model
from tts.voices import Voice, voice_for

__all__ = ["Synthesizer", "SynthesisResult", "InputLimits", "DEFAULT_VOICE_DIR", "BUNDLED_VOICES", "bundled_voices"]

DEFAULT_VOICE_DIR = Path(__file__).parent / "default_voice"
# The voices the package ships (docs/voices.md), by the name `from_pretrained` and `voxflow say
# --model` take; the first is the default. A bundled vocoder file serves all of them.
BUNDLED_VOICES = {"mellotron": "voice.safetensors", "flowtron": "flowtron.safetensors"}
BUNDLED_VOCODER = "vocoder.safetensors"
_PAUSE_SECONDS = {".": 0.30, "!": 0.30, "?": 0.30, ";": 0.20, ":": 0.20, ",": 0.15}


@dataclasses.dataclass
class SynthesisResult:
    """One synthesized text: audio (n_samples,), mel (n_mels, n_frames), alignment (n_frames, n_tokens)."""

    audio: np.ndarray
    sample_rate: int
    mel: np.ndarray
    alignment: np.ndarray | None
    text: str = ""

    @property
    def duration(self) -> float:
        return len(self.audio) / self.sample_rate

    def save(self, path: str | os.PathLike) -> Path:
        """Write the audio as .wav, .flac or .ogg (chosen by the suffix)."""
        return save_audio(path, self.audio, self.sample_rate)


def is_bundled(model: str | os.PathLike | None) -> bool:
    """Whether `from_pretrained(model)` loads a bundled voice (None, or a bundled name that is no file)."""
    return model is None or (str(model) in BUNDLED_VOICES and not Path(model).exists())


def bundled_training_corpus(model: str | os.PathLike | None = None) -> list[Path]:
    """[the settings of the corpus the bundled voices learnt from] when `model` is a bundled voice,
    else []: pass it as `held_out_sentences(exclude=...)` to test on sentences they never heard."""
    settings = DEFAULT_VOICE_DIR / "corpus.json"
    return [settings] if is_bundled(model) and settings.is_file() else []


def bundled_voices() -> dict[str, Path]:
    """The voices this build ships, name → file, the default first (empty: none installed)."""
    return {name: DEFAULT_VOICE_DIR / file for name, file in BUNDLED_VOICES.items()
            if (DEFAULT_VOICE_DIR / file).is_file()}


class Synthesizer:
    """A voice (mel generator + its text path) and a vocoder, checked to share one audio contract."""

    def __init__(self, voice: Voice, vocoder: torch.nn.Module, device: str | torch.device = "cpu",
                 limits: InputLimits | None = None) -> None:
        self.voice, self.vocoder, self.device = voice, vocoder.to(device), torch.device(device)
        self.limits = limits or InputLimits()
        vocoder_audio: AudioConfig = getattr(vocoder, "config", voice.audio)
        if vocoder_audio != voice.audio:
            raise UserError(f"the vocoder's audio settings ({vocoder_audio}) differ from the model's "
                            f"({voice.audio}); use a vocoder trained for this model's mels")
        self._denoiser = None

    @classmethod
    def from_pretrained(cls, model: str | os.PathLike | None = None, vocoder: str | os.PathLike | None = None,
                        device: str | torch.device = "cpu", limits: InputLimits | None = None) -> "Synthesizer":
        """Load a voice: a voxflow `.safetensors` or NVIDIA `.pt` mel generator (kind read from the
        file), a bundled voice by name ("mellotron", "flowtron": `bundled_voices()`), or the
        bundled default voice when `model` is None. `vocoder`: a WaveGlow file, "griffin_lim", or
        None (the bundled vocoder for a bundled voice if the package ships one, else Griffin-Lim).
        `limits`: the input limits of every call (default `InputLimits()`)."""
        if is_bundled(model):
            name = next(iter(BUNDLED_VOICES)) if model is None else str(model)
            model_path = DEFAULT_VOICE_DIR / BUNDLED_VOICES[name]
            if not model_path.is_file():
                shipped = ", ".join(bundled_voices())
                raise UserError((f"no bundled {name} voice is installed (this build ships: {shipped})" if shipped
                                 else "no voice is installed: this voxflow build ships no bundled voice")
                                + "; pass a checkpoint (voxflow say --model PATH [--vocoder PATH])")
            bundled_vocoder = DEFAULT_VOICE_DIR / BUNDLED_VOCODER
            vocoder = vocoder or (bundled_vocoder if bundled_vocoder.is_file() else None)
        else:
            model_path = Path(model)
        voice = voice_for(read_model(model_path, device))
        from vocoders import load_vocoder

        return cls(voice, load_vocoder(vocoder or "griffin_lim", voice.audio, device), device, limits)

    def with_limits(self, limits: InputLimits) -> "Synthesizer":
        """This voice and vocoder (shared, not copied) under other input limits, e.g. a server's tighter ones."""
        if not isinstance(limits, InputLimits):
            raise UserError(f"limits: expected an InputLimits, found {type(limits).__name__}")
        other = copy.copy(self)
        other.limits = limits
        return other

    @property
    def sample_rate(self) -> int:
        return self.voice.audio.sample_rate

    @property
    def speakers(self) -> tuple[str, ...]:
        return self.voice.speakers

    @property
    def kind(self) -> str:
        return self.voice.kind

    @property
    def interpolation_modes(self) -> tuple[str, ...]:
        """The `interpolate` modes this voice takes (none: it does not interpolate)."""
        return self.voice.interpolation_modes

    @property
    def capabilities(self) -> frozenset[str]:
        """What this voice takes: "style", "speaker", "pitch", "rhythm", "sing", "interpolate", "sigma"."""
        flows = {"sigma"} if type(self.vocoder).__name__ == "WaveGlowVocoder" else set()
        return self.voice.capabilities | flows

    def synthesize(self, text: str, speaker: str | int | None = None, style: Any = None, pitch: Any = None,
                   rhythm: Any = None, sigma: float | None = None, seed: int | None = None,
                   denoise: float | None = None, prenet_dropout: float | None = None,
                   gate_threshold: float | None = None, max_decoder_steps: int | None = None,
                   reference_text: str | None = None, pitch_shift: float = 0.0) -> SynthesisResult:
        """Speak `text` (any length: it is split into sentences).

        speaker: a name or id (multi-speaker voices; default: the first speaker).
        style: reference audio whose speaking style to copy, a GST token index, or token weights (a
        1-D array of at most 64 numbers). pitch / rhythm: reference audio (Mellotron; rhythm speaks
        the reference's own words, so `text` is its transcript). Reference audio is a path, an array
        at the voice's rate ((n_samples,) or (n_samples, channels); int samples scaled by their full
        range), or an (array, sample_rate) pair; `tts.inputs` has the rules, `limits` its length.
        reference_text: the style/rhythm reference's transcript (Flowtron style needs it).
        pitch_shift: semitones added to a pitch reference (-24..24). sigma: sampling temperature of
        the flow models in the chain (Flowtron's latent, else WaveGlow's; 0..2). seed: repeatable
        output (0..2^63-1). denoise: WaveGlow bias removal strength (e.g. 0.01; 0..1).
        prenet_dropout (0..1), gate_threshold (0..2), max_decoder_steps (up to
        `limits.max_sentence_seconds` of speech): Tacotron-family decoding knobs (max_decoder_steps
        caps Flowtron's frames). A value out of range is a `UserError` giving the range.

            >>> out = synth.synthesize("Hello there.", speaker="slt", seed=1)   # doctest: +SKIP
            >>> out.save("hello.wav")                                          # doctest: +SKIP
        """
        return self.synthesize_batch([text], speaker, style, pitch, rhythm, sigma, seed, denoise,
                                     prenet_dropout, gate_threshold, max_decoder_steps, reference_text,
                                     pitch_shift)[0]

    def synthesize_batch(self, texts: Sequence[str], speaker: str | int | None = None, style: Any = None,
                         pitch: Any = None, rhythm: Any = None, sigma: float | None = None,
                         seed: int | None = None, denoise: float | None = None,
                         prenet_dropout: float | None = None, gate_threshold: float | None = None,
                         max_decoder_steps: int | None = None, reference_text: str | None = None,
                         pitch_shift: float = 0.0) -> list[SynthesisResult]:
        """Several texts in one call (their sentences decoded as batches); same options as `synthesize`."""
        texts = self._check_texts(texts)
        self._check_vocoder_options(sigma, denoise)
        sigma, denoise = inputs.check_option("sigma", sigma), inputs.check_option("denoise", denoise)
        generator = self._generator(seed)
        style_value = self._style(style)
        pitch, rhythm = self._pitch_and_rhythm(pitch, rhythm)
        options = dict(prenet_dropout=inputs.check_option("prenet_dropout", prenet_dropout),
                       gate_threshold=inputs.check_option("gate_threshold", gate_threshold),
                       max_decoder_steps=self._check_decoder_steps(max_decoder_steps), pitch=pitch, rhythm=rhythm,
                       sigma=sigma, reference_text=self._check_reference_text(reference_text),
                       pitch_shift=inputs.check_option("pitch_shift", pitch_shift))
        sentences = [self.voice.split(text) for text in texts]
        flat = [sentence for group in sentences for sentence in group]
        mels, alignments = self.voice.generate(flat, self.voice.speaker_id(speaker), style_value, generator,
                                               **options)
        if self.voice.kind == "flowtron":
            sigma = None  # it was the latent's; WaveGlow keeps its own default
        results, start = [], 0
        for text, group in zip(texts, sentences):
            pieces = slice(start, start + len(group))
            results.append(self._join(text, group, mels[pieces], alignments[pieces], sigma, denoise, generator))
            start += len(group)
        return results

    def sing(self, score: str | os.PathLike, part: int | str = 0, speaker: str | int | None = None,
             style: Any = None, pitch_shift: float = 0.0, bpm: float | None = None, seed: int | None = None,
             prenet_dropout: float | None = None) -> SynthesisResult:
        """Sing one part (index or name) of a MusicXML score (Mellotron voices): lyrics, notes, tempo.
        A part longer than `limits.max_song_seconds` is refused before it is sung."""
        self.voice.require("sing")
        if not isinstance(score, (str, os.PathLike)):
            raise UserError(f"score: expected the path of a MusicXML file, found {type(score).__name__}")
        pitch_shift = inputs.check_option("pitch_shift", pitch_shift)
        bpm, prenet_dropout = inputs.check_option("bpm", bpm), inputs.check_option("prenet_dropout", prenet_dropout)
        generator = self._generator(seed)
        mel, alignment, sung_text = self.voice.sing(score, part, self.voice.speaker_id(speaker), self._style(style),
                                                    generator, pitch_shift, bpm, prenet_dropout, self.limits)
        return SynthesisResult(self._vocode(mel, None, None, generator), self.sample_rate,
                               mel.float().cpu().numpy(), alignment, sung_text)

    def interpolate(self, text: str, mode: str = "samples", start: str | int | None = None,
                    end: str | int | None = None, steps: int = 5, sigma: float = 0.5, seed: int | None = None,
                    style: Any = None, reference_text: str | None = None) -> list[SynthesisResult]:
        """Interpolation, one result per step (`interpolation_modes` lists a voice's modes).

        Flowtron walks its latent space: "speakers" (from speaker `start` to `end`), "samples"
        (between two prior samples), "style" (prior → the posterior of `style` + `reference_text`),
        "style_over_time" (one clip moving from prior to posterior). Tacotron 2 and Mellotron voices
        walk their conditioning: "speakers" (between two speaker embeddings) and, with GST, "style"
        (from the default style to reference audio `style`'s, spoken by speaker `start`)."""
        self.voice.require("interpolate")
        text = self._check_texts([text])[0]
        steps = inputs.check_number(steps, "steps", 2, 32, integer=True)
        sigma = inputs.check_number(sigma, "sigma", *inputs.OPTION_RANGES["sigma"])
        generator = self._generator(seed)
        mels = self.voice.interpolate(self.voice.split(text)[0] if text.strip() else text, mode, start, end, steps,
                                      sigma, generator, self._style(style), self._check_reference_text(reference_text))
        return [SynthesisResult(self._vocode(mel, None, None, generator), self.sample_rate,
                                mel.float().cpu().numpy(), None, text) for mel in mels]

    # -- helpers ------------------------------------------------------------------------------

    def _check_texts(self, texts: Any) -> list[str]:
        """Each text a str the frontend can take; their total length within `limits.max_text_chars`."""
        if isinstance(texts, (str, bytes, bytearray)) or not isinstance(texts, Sequence):
            raise UserError(f"synthesize_batch expects a list of texts, found {type(texts).__name__}")
        if not texts:
            raise UserError("synthesize_batch expects a non-empty list of texts, found an empty one")
        texts = [inputs.check_text(text, "text" if len(texts) == 1 else f"texts[{index}]", self.limits)
                 for index, text in enumerate(texts)]
        total = sum(len(text) for text in texts)
        if total > self.limits.max_text_chars:
            raise UserError(f"the texts are {total} characters long in all; {self.limits.holder} takes at most "
                            f"{self.limits.max_text_chars}")
        return texts

    def _check_reference_text(self, reference_text: Any) -> str | None:
        return None if reference_text is None else inputs.check_text(reference_text, "reference_text", self.limits)

    def _check_decoder_steps(self, max_decoder_steps: Any) -> int | None:
        if max_decoder_steps is None:
            return None
        seconds = self.limits.max_sentence_seconds
        return int(inputs.check_number(max_decoder_steps, "max_decoder_steps", 1, self.voice.steps_for(seconds),
                                       integer=True, note=f"{seconds:g} s of speech per sentence for this voice"))

    @staticmethod
    def _generator(seed: Any) -> torch.Generator:
        seed = inputs.check_seed(seed)
        return torch.Generator().manual_seed(seed if seed is not None else secrets.randbits(63))

    def _pitch_and_rhythm(self, pitch: Any, rhythm: Any) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Reference audio for pitch and rhythm, checked and loaded once (the same clip stays one object)."""
        loaded: dict[str, np.ndarray] = {}
        for name, value in (("pitch", pitch), ("rhythm", rhythm)):
            if value is not None:
                self.voice.require(name)  # before reading the file: the voice may not take it at all
                loaded[name] = loaded["pitch"] if name == "rhythm" and value is pitch else \
                    inputs.reference_audio(value, self.sample_rate, name, self.limits)
        return loaded.get("pitch"), loaded.get("rhythm")

    def _check_vocoder_options(self, sigma: float | None, denoise: float | None) -> None:
        is_waveglow = type(self.vocoder).__name__ == "WaveGlowVocoder"
        if sigma is not None and not (is_waveglow or "sigma" in self.voice.capabilities):
            raise UserError("sigma applies to flow models (Flowtron voices, WaveGlow vocoders); this voice is "
                            f"{self.voice.kind} with {type(self.vocoder).__name__}")
        if denoise is not None and not is_waveglow:
            raise UserError("denoise applies to the WaveGlow vocoder; this synthesizer uses "
                            f"{type(self.vocoder).__name__}")

    def _style(self, style: Any) -> Any:
        """None, a GST token index, token weights (1, n_tokens) or a reference mel (1, n_mels, n_frames)."""
        if style is None:
            return None
        self.voice.require("style")
        n_tokens = self.voice.n_style_tokens
        if isinstance(style, (bool, np.bool_)):
            raise UserError("style: expected reference audio, a style-token index or token weights, found a bool")
        if isinstance(style, numbers.Integral):
            if not n_tokens:
                raise UserError(f"style: this {self.kind} voice copies style from reference audio; it has no "
                                "style tokens to pick by index")
            return int(inputs.check_number(style, "style token", 0, n_tokens - 1, integer=True))
        array = None if isinstance(style, (str, os.PathLike, bytes, bytearray, tuple)) else \
            inputs.as_array(style, "style")
        if array is None or array.ndim != 1 or array.size > inputs.MAX_STYLE_WEIGHTS:
            audio = inputs.reference_audio(style if array is None else array, self.sample_rate, "style", self.limits)
            return mel_spectrogram(audio, self.voice.audio).to(self.device)[None]  # (1, n_mels, n_frames)
        if not n_tokens:
            raise UserError(f"style: this {self.kind} voice copies style from reference audio, not token weights")
        weights = inputs.check_style_weights(array, n_tokens)
        return torch.from_numpy(weights).to(self.device).reshape(1, -1)

    def _vocode(self, mel: torch.Tensor, sigma: float | None, denoise: float | None,
                generator: torch.Generator) -> np.ndarray:
        if mel.shape[-1] < 2:  # a model that stopped at once: vocode a frame of silence after it
            silence = torch.full_like(mel[..., :1], float(np.log(self.voice.audio.log_floor)))
            mel = torch.cat((mel, silence.expand(*mel.shape[:-1], 2 - mel.shape[-1])), dim=-1)
        if type(self.vocoder).__name__ == "WaveGlowVocoder":
            audio = self.vocoder(mel, sigma=0.6 if sigma is None else sigma)
            if denoise:
                if self._denoiser is None:
                    from vocoders.denoiser import Denoiser

                    self._denoiser = Denoiser(self.vocoder)
                audio = self._denoiser(audio[None], strength=denoise)[0]
        else:
            audio = self.vocoder(mel, generator=generator)
        return np.clip(audio.float().cpu().numpy(), -1.0, 1.0)

    def _join(self, text: str, sentences: list[str], mels: list[torch.Tensor], alignments: list[np.ndarray | None],
              sigma: float | None, denoise: float | None, generator: torch.Generator) -> SynthesisResult:
        """Vocode each sentence's mel and join them with pauses that follow the punctuation."""
        audio_parts, mel_parts = [], []
        floor = float(np.log(self.voice.audio.log_floor))
        hop = self.voice.audio.hop_length
        for index, (sentence, mel) in enumerate(zip(sentences, mels)):
            audio_parts.append(self._vocode(mel, sigma, denoise, generator))
            mel_parts.append(mel.float().cpu().numpy())
            if index < len(sentences) - 1:
                pause_frames = int(_PAUSE_SECONDS.get(sentence[-1:], 0.2) * self.sample_rate / hop)
                audio_parts.append(np.zeros(pause_frames * hop, dtype=np.float32))
                mel_parts.append(np.full((mel.shape[0], pause_frames), floor, dtype=np.float32))
        alignment = alignments[0] if len(alignments) == 1 else None
        return SynthesisResult(np.concatenate(audio_parts).astype(np.float32), self.sample_rate,
                               np.concatenate(mel_parts, axis=1), alignment, text)
