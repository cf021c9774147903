"""A `Voice`: a loaded mel generator with its text path, speakers and what it can be asked for.

It turns sentences into mels in batches (per-item stopping), and refuses options the model
cannot honour with an error that names the models that can. Used by `tts.api.Synthesizer`.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch

from tts.errors import UserError
from tts.loading import LoadedModel

__all__ = ["Voice", "SUPPORTS"]

# What each option needs, for error messages and for the demo's controls.
SUPPORTS = {
    "style": "voices with Global Style Tokens (Tacotron 2-GST, Mellotron) and Flowtron",
    "pitch": "Mellotron voices",
    "rhythm": "Mellotron voices",
    "speaker": "multi-speaker voices",
}
_BATCH = 16
_FRAMES_PER_TOKEN = 12  # generous: speech runs at ~5-8 mel frames per character


class Voice:
    """Mel generation for one loaded model (kind "tacotron2"; Mellotron and Flowtron plug in here)."""

    def __init__(self, loaded: LoadedModel) -> None:
        self.kind, self.model, self.speakers = loaded.kind, loaded.model, loaded.speakers
        self.config = self.model.config
        self.audio = self.config.audio
        self.device = next(self.model.parameters()).device

    @property
    def has_style(self) -> bool:
        return getattr(self.model, "gst", None) is not None

    @property
    def n_speakers(self) -> int:
        return getattr(self.config, "n_speakers", 0)

    def split(self, text: str) -> list[str]:
        from text import split_sentences

        sentences = split_sentences(text)
        if not sentences:
            raise UserError("no text to synthesize")
        return sentences

    def speaker_id(self, speaker: str | int | None) -> int | None:
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
        raise UserError(f"unknown speaker {speaker!r}; this voice has {known}")

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
                 max_decoder_steps: int | None = None, pitch: Any = None, rhythm: Any = None,
                 sigma: float | None = None) -> tuple[list[torch.Tensor], list[np.ndarray | None]]:
        """Mels (n_mels, n_frames) and alignments (n_frames, n_tokens) of each sentence, in order."""
        for name, value in (("pitch", pitch), ("rhythm", rhythm)):
            if value is not None:
                raise UserError(f"{name} transfer needs {SUPPORTS[name]}; this voice is {self.kind}")
        if style is not None and not self.has_style:
            raise UserError(f"style needs {SUPPORTS['style']}; this {self.kind} voice has no style tokens")
        token_lists = [self.tokens(sentence) for sentence in sentences]
        mels: list[torch.Tensor] = []
        alignments: list[np.ndarray | None] = []
        for start in range(0, len(token_lists), _BATCH):
            batch = token_lists[start:start + _BATCH]
            batch_mels, batch_alignments = self._decode(batch, speaker_id, style, generator, prenet_dropout,
                                                        gate_threshold, max_decoder_steps)
            mels += batch_mels
            alignments += batch_alignments
        return mels, alignments

    @torch.no_grad()
    def _decode(self, token_lists: list[list[int]], speaker_id: int | None, style: Any,
                generator: torch.Generator, prenet_dropout: float | None, gate_threshold: float | None,
                max_decoder_steps: int | None) -> tuple[list[torch.Tensor], list[np.ndarray]]:
        lengths = torch.tensor([len(ids) for ids in token_lists], device=self.device)
        tokens = torch.zeros(len(token_lists), int(lengths.max()), dtype=torch.long, device=self.device)
        for row, ids in enumerate(token_lists):
            tokens[row, :len(ids)] = torch.tensor(ids)
        r = self.config.decoder.frames_per_step
        steps = max_decoder_steps or math.ceil(max(200, _FRAMES_PER_TOKEN * int(lengths.max())) / r)
        output = self.model.infer(tokens, lengths, speaker_id=speaker_id, style=style,
                                  gate_threshold=0.5 if gate_threshold is None else gate_threshold,
                                  max_decoder_steps=steps, prenet_dropout=prenet_dropout, generator=generator)
        mels, alignments = [], []
        for row in range(len(token_lists)):
            n_frames = int(output.mel_lengths[row])
            mels.append(output.mel_postnet[row, :, :n_frames])
            n_steps = math.ceil(n_frames / r)
            alignments.append(output.alignment[row, :n_steps, :len(token_lists[row])].float().cpu().numpy())
        return mels, alignments
