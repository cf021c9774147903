"""Flowtron voices: sampling with sigma, posterior style transfer, latent interpolation.

- style: the posterior mean of z given reference audio and its transcript (NVIDIA's style
  notebook: forward pass, averaged over time, Gaussian shrinkage), added to the prior sample.
- interpolate (`tts.models.flowtron_interpolate`), one mel per step, all of equal length:
  "speakers" (from speaker `start` to `end`), "samples" (between two prior samples), "style"
  (from the prior to the style posterior, in `steps` clips), "style_over_time" (one clip whose
  style moves from the prior at its start to the posterior at its end).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from tts.errors import UserError
from tts.voices.base import BATCH_SIZE, Voice

__all__ = ["FlowtronVoice", "INTERPOLATION_MODES"]

INTERPOLATION_MODES = ("speakers", "samples", "style", "style_over_time")


class FlowtronVoice(Voice):
    @property
    def has_style(self) -> bool:
        return True

    @property
    def capabilities(self) -> frozenset[str]:
        return super().capabilities | {"sigma", "interpolate"}

    @property
    def interpolation_modes(self) -> tuple[str, ...]:
        return INTERPOLATION_MODES

    @property
    def frames_per_step(self) -> int:
        return 1  # max_decoder_steps is Flowtron's n_frames

    def _z_mean(self, style: Any, reference_text: str | None, speaker_id: int) -> torch.Tensor | None:
        if style is None:
            return None
        if not isinstance(style, torch.Tensor) or style.dim() != 3:
            raise UserError("Flowtron style comes from reference audio (with its transcript), not token weights")
        if not reference_text:
            raise UserError("Flowtron style transfer needs the reference's transcript: pass reference_text")
        tokens = torch.tensor(self.tokens(reference_text), device=self.device)
        return self.model.posterior_z([style[0]], [tokens], speaker_id, aggregation="time_and_batch")

    @torch.no_grad()
    def generate(self, sentences: Sequence[str], speaker_id: int | None, style: Any, generator: torch.Generator,
                 prenet_dropout: float | None = None, gate_threshold: float | None = None,
                 max_decoder_steps: int | None = None, pitch: Any = None, rhythm: Any = None,
                 reference_text: str | None = None, pitch_shift: float = 0.0,
                 sigma: float | None = None) -> tuple[list[torch.Tensor], list[np.ndarray | None]]:
        self._check_references({"pitch": pitch, "rhythm": rhythm})
        if prenet_dropout is not None:
            raise UserError("prenet_dropout applies to Tacotron-family voices; Flowtron has no prenet dropout knob")
        speaker_id = speaker_id or 0
        z_mean = self._z_mean(style, reference_text, speaker_id)
        token_lists = [self.tokens(sentence) for sentence in sentences]
        mels, alignments = [], []
        for start in range(0, len(token_lists), BATCH_SIZE):
            batch = token_lists[start:start + BATCH_SIZE]
            tokens, lengths = self.padded_tokens(batch)
            output = self.model.infer(tokens, speaker_id, sigma=0.5 if sigma is None else sigma,
                                      n_frames=max_decoder_steps, generator=generator, z_mean=z_mean,
                                      gate_threshold=0.5 if gate_threshold is None else gate_threshold,
                                      token_lengths=lengths)
            for row, ids in enumerate(batch):
                n_frames = int(output.mel_lengths[row])
                mels.append(output.mel[row, :, :n_frames])
                alignments.append(output.alignment[row, :n_frames, :len(ids)].float().cpu().numpy())
        return mels, alignments

    @torch.no_grad()
    def interpolate(self, sentence: str, mode: str, start: Any, end: Any, steps: int, sigma: float,
                    generator: torch.Generator, style: Any = None,
                    reference_text: str | None = None) -> list[torch.Tensor]:
        """Mels (n_mels, n_frames) along a path in latent or speaker space; see the module docstring."""
        from tts.models import flowtron_interpolate as paths
        from tts.models.flowtron import default_n_frames

        self.check_interpolation_mode(mode)
        tokens = torch.tensor([self.tokens(sentence)], device=self.device)
        n_mels, n_frames = self.audio.n_mels, default_n_frames(tokens.size(1))
        weights = paths.interpolation_weights(steps)
        z = torch.randn(1, n_mels, n_frames, generator=generator).to(self.device) * sigma
        if mode == "speakers":
            speakers = paths.interpolate_speakers(self.model, self.speaker_id(start), self.speaker_id(end), weights)
            return list(paths.synthesize_path(self.model, tokens, z.expand(steps, -1, -1), speakers))
        speaker_id = self.speaker_id(start if mode == "style" else None) or 0
        if mode == "samples":
            other = torch.randn(1, n_mels, n_frames, generator=generator).to(self.device) * sigma
            return list(paths.synthesize_path(self.model, tokens, paths.interpolate_z(z, other, weights), speaker_id))
        z_mean = self._z_mean(style, reference_text, speaker_id)
        if z_mean is None:
            raise UserError("style interpolation needs style= reference audio and its reference_text")
        if mode == "style_over_time":
            return list(paths.synthesize_path(self.model, tokens, paths.prior_to_posterior_over_time(z, z_mean),
                                              speaker_id))
        path = torch.cat([z + weight * z_mean for weight in weights])
        return list(paths.synthesize_path(self.model, tokens, path, speaker_id))
