"""Mellotron voices: plain speech, pitch and rhythm transfer from reference audio, and singing.

- pitch: the reference's F0 contour (Hz per frame, `tts.conditioning.extract_f0` with the model's
  own pitch settings), optionally shifted by `pitch_shift` semitones; the model keeps its rhythm.
- rhythm: the reference's alignment to its transcript from a teacher-forced pass (Mellotron as a
  forced aligner), so the result speaks the reference's own words with its timing.
- singing: a MusicXML part gives tokens, per-token durations (the rhythm) and note F0s.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from tts.errors import UserError
from tts.inputs import InputLimits, check_f0
from tts.voices.base import Voice

__all__ = ["MellotronVoice"]


class MellotronVoice(Voice):
    @property
    def capabilities(self) -> frozenset[str]:
        return super().capabilities | {"pitch", "rhythm", "sing"}

    def generate(self, sentences: Sequence[str], speaker_id: int | None, style: Any, generator: torch.Generator,
                 prenet_dropout: float | None = None, gate_threshold: float | None = None,
                 max_decoder_steps: int | None = None, pitch: Any = None, rhythm: Any = None,
                 reference_text: str | None = None, pitch_shift: float = 0.0,
                 sigma: float | None = None) -> tuple[list[torch.Tensor], list[np.ndarray | None]]:
        if sigma is not None:
            self.require("sigma")
        if pitch is None and rhythm is None:
            if pitch_shift:
                raise UserError("pitch_shift shifts a reference contour: pass pitch= (reference audio) too")
            return super().generate(sentences, speaker_id, style, generator, prenet_dropout, gate_threshold,
                                    max_decoder_steps)
        if len(sentences) != 1:
            raise UserError("pitch and rhythm transfer take one sentence (the reference's length and timing)")
        return self._transfer(sentences[0], speaker_id, style, generator, prenet_dropout, gate_threshold,
                              max_decoder_steps, pitch, rhythm, reference_text, pitch_shift)

    def reference(self, audio: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Reference audio (path or array) → its mel (1, n_mels, n_frames) and F0 (1, n_frames) Hz."""
        from tts.audio import load_audio, mel_spectrogram
        from tts.conditioning.f0 import extract_f0

        if isinstance(audio, (str, bytes)) or hasattr(audio, "__fspath__"):
            audio = load_audio(audio, self.audio.sample_rate)
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        mel = mel_spectrogram(audio, self.audio).to(self.device)[None]
        pitch = self.config.pitch
        f0 = extract_f0(audio, self.audio.sample_rate, pitch.f0_min, pitch.f0_max, pitch.harm_thresh, pitch.method,
                        hop=self.audio.hop_length)[:mel.size(2)]
        # A contour with NaN would turn every later decoder step into NaN: refuse it here, by frame.
        return mel, torch.from_numpy(check_f0(f0, "the reference's F0")).to(self.device)[None]

    @torch.no_grad()
    def _transfer(self, sentence: str, speaker_id: int | None, style: Any, generator: torch.Generator,
                  prenet_dropout: float | None, gate_threshold: float | None, max_decoder_steps: int | None,
                  pitch: Any, rhythm: Any, reference_text: str | None,
                  pitch_shift: float) -> tuple[list[torch.Tensor], list[np.ndarray]]:
        if rhythm is not None and reference_text is not None and reference_text.strip() != sentence.strip():
            raise UserError("rhythm transfer speaks the reference's own words with its timing: the text must be "
                            "the reference's transcript (reference_text)")
        ids = self.tokens(sentence)
        tokens = torch.tensor([ids], device=self.device)
        alignment = f0 = None
        if rhythm is not None:
            rhythm_mel, rhythm_f0 = self.reference(rhythm)
            alignment = self.model.align(tokens, rhythm_mel, rhythm_f0, speaker_id or 0, prenet_dropout, generator)
            f0 = rhythm_f0 if pitch is rhythm else None
        if pitch is not None and f0 is None:
            f0 = self.reference(pitch)[1]
            if alignment is not None:  # a different clip for pitch: stretch its contour to the rhythm
                from tts.conditioning.f0 import resample_f0

                f0 = resample_f0(f0, alignment.size(1))
        output = self.model.infer(tokens, torch.tensor([len(ids)], device=self.device), speaker_id=speaker_id,
                                  style=style, f0=f0, alignment=alignment, pitch_shift=pitch_shift,
                                  gate_threshold=0.5 if gate_threshold is None else gate_threshold,
                                  max_decoder_steps=self.decoder_steps(len(ids), max_decoder_steps),
                                  prenet_dropout=prenet_dropout, generator=generator)
        return self.split_output(output, [len(ids)])

    @torch.no_grad()
    def sing(self, score: Any, part: int | str, speaker_id: int | None, style: Any, generator: torch.Generator,
             pitch_shift: float = 0.0, bpm: float | None = None, prenet_dropout: float | None = None,
             limits: InputLimits | None = None) -> tuple[torch.Tensor, np.ndarray, str]:
        """One part of a MusicXML score → mel (n_mels, n_frames), alignment, and the sung text.
        A part longer than `limits.max_song_seconds` is refused before anything is decoded."""
        from tts.models.singing import read_score

        if self.config.text.symbol_set == "tacotron2":
            raise UserError("singing needs a voice on the 185-symbol text path (mellotron/flowtron)")
        try:
            parts = read_score(score, bpm=bpm, sample_rate=self.audio.sample_rate, hop_length=self.audio.hop_length)
        except Exception as error:  # music21 raises many kinds of errors for files it cannot read
            raise UserError(f"{score}: not a readable MusicXML score ({error})") from None
        names = [sung.name for sung in parts]
        chosen = parts[part] if isinstance(part, int) and 0 <= part < len(parts) else (
            parts[names.index(part)] if part in names else None)
        if chosen is None:
            raise UserError(f"{score}: no part {part!r}; parts: {', '.join(names)} (or 0..{len(parts) - 1})")
        limits = limits or InputLimits()
        seconds = float(chosen.durations.sum()) * self.audio.hop_length / self.audio.sample_rate
        if seconds > limits.max_song_seconds:
            raise UserError(f"{score}: part {chosen.name!r} lasts {seconds:.0f} s; {limits.holder} sings up to "
                            f"{limits.max_song_seconds:g} s")
        f0 = torch.from_numpy(check_f0(chosen.f0, f"{score}: the F0 of part {chosen.name!r}"))
        tokens = chosen.token_ids.to(self.device)[None]
        output = self.model.infer(tokens, speaker_id=speaker_id, style=style, f0=f0.to(self.device)[None],
                                  alignment=chosen.alignment().to(self.device)[None], pitch_shift=pitch_shift,
                                  prenet_dropout=prenet_dropout, generator=generator)
        mels, alignments = self.split_output(output, [tokens.size(1)])
        return mels[0], alignments[0], chosen.text
