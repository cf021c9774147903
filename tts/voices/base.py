"""`Voice`: a loaded mel generator with its text path, speakers and what it can be asked for.

The base class serves Tacotron 2 (with or without GST and speakers): sentences → token ids →
mels in batches (per-item stopping). Subclasses add what their model can do (Mellotron: pitch,
rhythm, singing; Flowtron: sigma, posterior style, interpolation). An option a model cannot
honour is an error that names the models that can.
"""

from __future__ import annotations

import math
import numbers
import reprlib
from typing import Any, Sequence

import numpy as np
import torch

from tts.errors import UserError
from tts.loading import LoadedModel

__all__ = ["Voice", "SUPPORTS", "BATCH_SIZE"]

# What each option needs, for error messages and for the demo's controls.
SUPPORTS = {
    "style": "voices with Global Style Tokens (Tacotron 2-GST, Mellotron) and Flowtron",
    "pitch": "Mellotron voices",
    "rhythm": "Mellotron voices",
    "sing": "Mellotron voices",
    "interpolate": "Flowtron voices (every path) or multi-speaker / GST Tacotron 2 and Mellotron voices "
                   "(the speakers and style paths)",
    "speaker": "multi-speaker voices",
}
BATCH_SIZE = 16  # sentences decoded together
_FRAMES_PER_TOKEN = 12  # generous: speech runs at ~5-8 mel frames per character


class Voice:
    """Mel generation for one loaded Tacotron 2; `capabilities` lists the options it takes."""

    def __init__(self, loaded: LoadedModel) -> None:
        self.kind, self.model, self.speakers = loaded.kind, loaded.model, loaded.speakers
        self.config = self.model.config
        self.audio = self.config.audio
        self.device = next(self.model.parameters()).device

    @property
    def has_style(self) -> bool:
        return getattr(self.model, "gst", None) is not None

    @property
    def capabilities(self) -> frozenset[str]:
        """Which of "style", "speaker", "pitch", "rhythm", "sing", "interpolate", "sigma" apply."""
        return (frozenset({"style"} if self.has_style else set()) | ({"speaker"} if self.n_speakers else set())
                | ({"interpolate"} if self.interpolation_modes else set()))

    @property
    def interpolation_modes(self) -> tuple[str, ...]:
        """The paths `interpolate` walks: "speakers" (between two speakers' embeddings) with more than
        one speaker, "style" (from equal token weights to a reference's GST style) with GST."""
        return (("speakers",) if self.n_speakers > 1 else ()) + (("style",) if self.has_style else ())

    def require(self, capability: str) -> None:
        if capability not in self.capabilities:
            raise UserError(f"{capability} needs {SUPPORTS[capability]}; this voice is {self.kind}"
                            + (" without style tokens" if capability == "style" else ""))

    @property
    def n_speakers(self) -> int:
        return getattr(self.config, "n_speakers", 0)

    @property
    def n_style_tokens(self) -> int:
        """GST tokens a style index or weights can pick (0: no GST)."""
        gst = getattr(self.config, "gst", None)
        return gst.n_tokens if gst is not None else 0

    @property
    def frames_per_step(self) -> int:
        return self.config.decoder.frames_per_step

    def steps_for(self, seconds: float) -> int:
        """Decoder steps (what `max_decoder_steps` counts) that make `seconds` of speech."""
        frames = int(seconds * self.audio.sample_rate / self.audio.hop_length)
        return max(1, frames // self.frames_per_step)

    def split(self, text: str) -> list[str]:
        from text import split_sentences

        sentences = split_sentences(text)
        if not sentences:
            raise UserError("no text to synthesize")
        return sentences

    def speaker_id(self, speaker: str | int | None) -> int | None:
        if isinstance(speaker, (bool, np.bool_)) or not isinstance(speaker, (str, numbers.Integral, type(None))):
            raise UserError(f"speaker: expected a name or an id, found {type(speaker).__name__}")
        speaker = int(speaker) if isinstance(speaker, numbers.Integral) else speaker
        if not self.n_speakers:
            if speaker is not None:
                raise UserError(f"this {self.kind} voice has one speaker; speakers are for {SUPPORTS['speaker']}")
            return None
        if speaker is None:
            return 0
        if isinstance(speaker, str) and speaker in self.speakers:
            return self.speakers.index(speaker)
        if isinstance(speaker, str) and speaker.isdigit() and not self.speakers:
            speaker = int(speaker)
        if isinstance(speaker, int) and 0 <= speaker < self.n_speakers:
            return speaker
        known = ", ".join(self.speakers) if self.speakers else f"ids 0..{self.n_speakers - 1}"
        raise UserError(f"unknown speaker {reprlib.repr(speaker)}; this voice has {known}")

    def tokens(self, sentence: str) -> list[int]:
        from text import text_to_sequence

        text_config = self.config.text
        # Voices trained with some ARPAbet read every dictionary word as ARPAbet at inference,
        # as NVIDIA does for Flowtron (p_arpabet 1.0); heteronyms stay graphemes.
        p_arpabet = 1.0 if text_config.p_arpabet > 0 else 0.0
        ids = text_to_sequence(sentence, list(text_config.cleaners), symbol_set=text_config.symbol_set,
                               p_arpabet=p_arpabet)
        if not ids:
            raise UserError(f"nothing speakable in {sentence!r} for the {text_config.symbol_set} symbol set")
        return ids

    def generate(self, sentences: Sequence[str], speaker_id: int | None, style: Any, generator: torch.Generator,
                 prenet_dropout: float | None = None, gate_threshold: float | None = None,
                 max_decoder_steps: int | None = None, **references: Any) -> tuple[list[torch.Tensor],
                                                                                  list[np.ndarray | None]]:
        """Mels (n_mels, n_frames) and alignments (n_frames, n_tokens) of each sentence, in order.
        `references`: pitch / rhythm / reference_text / pitch_shift / sigma, for voices that take them."""
        self._check_references(references)
        if style is not None:
            self.require("style")
        token_lists = [self.tokens(sentence) for sentence in sentences]
        mels: list[torch.Tensor] = []
        alignments: list[np.ndarray | None] = []
        for start in range(0, len(token_lists), BATCH_SIZE):
            batch = token_lists[start:start + BATCH_SIZE]
            batch_mels, batch_alignments = self._decode(batch, speaker_id, style, generator, prenet_dropout,
                                                        gate_threshold, max_decoder_steps)
            mels += batch_mels
            alignments += batch_alignments
        return mels, alignments

    def check_interpolation_mode(self, mode: Any) -> None:
        if mode not in self.interpolation_modes:
            raise UserError(f"interpolation mode: this {self.kind} voice takes "
                            f"{', '.join(self.interpolation_modes) or 'none'}, found {reprlib.repr(mode)}"
                            + ("" if self.kind == "flowtron" else "; the others need a Flowtron voice"))

    @torch.no_grad()
    def interpolate(self, sentence: str, mode: str, start: Any, end: Any, steps: int, sigma: float,
                    generator: torch.Generator, style: Any = None,
                    reference_text: str | None = None) -> list[torch.Tensor]:
        """Mels (n_mels, n_frames), one per step, decoded as one batch: "speakers" walks from
        speaker `start`'s embedding to `end`'s; "style" from equal token weights (the default style)
        to the GST style of `style` (a reference mel), spoken by speaker `start`. `sigma` and
        `reference_text` are Flowtron's and unused here."""
        from tts.models.gst import StyleVectors
        from tts.models.interpolation import interpolate_speakers, interpolation_weights, lerp

        self.check_interpolation_mode(mode)
        weights = interpolation_weights(steps).to(self.device)
        token_lists = [self.tokens(sentence)] * steps
        tokens, lengths = self.padded_tokens(token_lists)
        if mode == "speakers":
            speakers, path_style = interpolate_speakers(self.model, self.speaker_id(start), self.speaker_id(end),
                                                        weights), None
        else:
            if not isinstance(style, torch.Tensor) or style.dim() != 3:
                raise UserError("style interpolation needs style= reference audio")
            neutral, target = self.model.gst.style(None, 1), self.model.gst.style(style, 1)
            speakers, path_style = self.speaker_id(start), StyleVectors(lerp(neutral, target, weights.view(-1, 1)))
        output = self.model.infer(tokens, lengths, speaker_id=speakers, style=path_style,
                                  max_decoder_steps=self.decoder_steps(len(token_lists[0]), None),
                                  generator=generator)
        return self.split_output(output, [len(ids) for ids in token_lists])[0]

    def _check_references(self, references: dict[str, Any]) -> None:
        for name in ("pitch", "rhythm"):
            if references.get(name) is not None:
                self.require(name)
        if references.get("sigma") is not None:
            self.require("sigma")

    def padded_tokens(self, token_lists: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = torch.tensor([len(ids) for ids in token_lists], device=self.device)
        tokens = torch.zeros(len(token_lists), int(lengths.max()), dtype=torch.long, device=self.device)
        for row, ids in enumerate(token_lists):
            tokens[row, :len(ids)] = torch.tensor(ids)
        return tokens, lengths

    def decoder_steps(self, n_tokens: int, max_decoder_steps: int | None) -> int:
        r = self.config.decoder.frames_per_step
        return max_decoder_steps or math.ceil(max(200, _FRAMES_PER_TOKEN * n_tokens) / r)

    @torch.no_grad()
    def _decode(self, token_lists: list[list[int]], speaker_id: int | None, style: Any,
                generator: torch.Generator, prenet_dropout: float | None, gate_threshold: float | None,
                max_decoder_steps: int | None) -> tuple[list[torch.Tensor], list[np.ndarray]]:
        tokens, lengths = self.padded_tokens(token_lists)
        output = self.model.infer(tokens, lengths, speaker_id=speaker_id, style=style,
                                  gate_threshold=0.5 if gate_threshold is None else gate_threshold,
                                  max_decoder_steps=self.decoder_steps(int(lengths.max()), max_decoder_steps),
                                  prenet_dropout=prenet_dropout, generator=generator)
        return self.split_output(output, [len(ids) for ids in token_lists])

    def split_output(self, output, n_tokens: list[int]) -> tuple[list[torch.Tensor], list[np.ndarray]]:
        """A batched Tacotron-family output → per-item mels (n_mels, n_frames) and alignments."""
        r = self.config.decoder.frames_per_step
        mels, alignments = [], []
        for row, count in enumerate(n_tokens):
            n_frames = int(output.mel_lengths[row])
            mels.append(output.mel_postnet[row, :, :n_frames])
            n_steps = math.ceil(n_frames / r)
            alignments.append(output.alignment[row, :n_steps, :count].float().cpu().numpy())
        return mels, alignments
