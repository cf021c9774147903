"""Training Mellotron with the shared engine: Tacotron 2's task plus an F0 contour per clip.

Data as for Tacotron 2 (LJSpeech folder or NVIDIA filelist); speakers come from the data (the
model's `n_speakers` is set to the number of speakers found, at least 1; their names, in id
order, go into every checkpoint). Each clip's F0 (`tts.conditioning.extract_f0` with the model's
`pitch` settings: NVIDIA's YIN by default) is computed once and cached as .npy next to its mel.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from tts.audio import load_audio
from tts.data import SpeakerMap, TextMelBatch, TextMelDataset, TextMelItem, collate_text_mel, cached_array
from tts.models.mellotron import Mellotron, MellotronConfig, mellotron_preset
from tts.models.tacotron2 import tacotron2_loss
from tts.train.config import TrainConfig
from tts.train.tacotron2_task import TRAIN_PRESETS, Tacotron2Task
from tts.train.task import Examples

__all__ = ["MellotronTask", "MellotronBatch", "F0TextMelDataset", "collate_mellotron"]

log = logging.getLogger(__name__)


@dataclasses.dataclass
class MellotronBatch(TextMelBatch):
    f0: torch.Tensor = None  # (batch, n_frames) Hz, zero-padded

    def to(self, device: torch.device | str) -> "MellotronBatch":
        return MellotronBatch(**{f.name: getattr(self, f.name).to(device) for f in dataclasses.fields(self)})


class F0TextMelDataset(TextMelDataset):
    """`TextMelDataset` items plus the clip's F0 (n_frames,) Hz, cached beside the mel cache."""

    def __init__(self, *args, pitch=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.pitch = pitch

    def __getitem__(self, index: int) -> tuple[TextMelItem, torch.Tensor]:
        item = super().__getitem__(index)
        f0 = self.f0(self.utterances[index])
        n_frames = item.mel.shape[1]
        f0 = np.pad(f0, (0, max(0, n_frames - len(f0))))[:n_frames]
        return item, torch.from_numpy(np.ascontiguousarray(f0, dtype=np.float32))

    def f0(self, utterance) -> np.ndarray:
        """The (n_frames,) F0 of an utterance, from the cache when it is there."""
        from tts.conditioning.f0 import extract_f0

        def compute() -> np.ndarray:
            audio, pitch = load_audio(utterance.audio_path, self.audio_config.sample_rate), self.pitch
            return extract_f0(audio, self.audio_config.sample_rate, pitch.f0_min, pitch.f0_max, pitch.harm_thresh,
                              pitch.method, self.audio_config.win_length, self.audio_config.hop_length)

        return cached_array(self._f0_cache_file(utterance.audio_path), compute)

    def _f0_cache_file(self, audio_path: Path) -> Path | None:
        mel_file = self._cache_file(audio_path)
        if mel_file is None:
            return None
        # keyed on the extraction settings only: a training knob such as f0_dropout keeps the cache
        pitch = self.pitch
        extraction = json.dumps([pitch.method, pitch.f0_min, pitch.f0_max, pitch.harm_thresh])
        digest = hashlib.sha1(extraction.encode()).hexdigest()[:8]
        return mel_file.with_name(f"{mel_file.stem}-f0-{digest}.npy")


def collate_mellotron(items: Sequence[tuple[TextMelItem, torch.Tensor]]) -> MellotronBatch:
    """Tacotron 2's collate plus the F0 contours, zero-padded to the longest mel."""
    batch = collate_text_mel([item for item, _ in items])
    f0 = torch.zeros(len(items), batch.mel.size(2))
    for index, (_, contour) in enumerate(items):
        f0[index, :len(contour)] = contour
    return MellotronBatch(**{f.name: getattr(batch, f.name) for f in dataclasses.fields(batch)}, f0=f0)


class MellotronTask(Tacotron2Task):
    kind = "mellotron"
    config_class = MellotronConfig
    collate = staticmethod(collate_mellotron)

    @classmethod
    def preset(cls, name: str) -> tuple[MellotronConfig, TrainConfig]:
        # NVIDIA's Mellotron: batch 32, lr 1e-3 halved every 50k steps (nvidia-models.md §4).
        train = TRAIN_PRESETS[name] if name != "nvidia" else dataclasses.replace(
            TRAIN_PRESETS["nvidia"], batch_size=32, decay_start=50_000, decay_half_life=50_000)
        return mellotron_preset(name), train

    def build_model(self) -> nn.Module:
        return self.refiner_alone(Mellotron(self.model_config))

    def fit_speakers(self, data: Path, speakers: SpeakerMap) -> None:
        n_speakers = max(1, len(speakers))  # unnamed single-speaker data: speaker 0
        if n_speakers != self.model_config.n_speakers:
            log.info("mellotron: %d speaker(s) in %s; setting model.n_speakers=%d", n_speakers, data, n_speakers)
            self.model_config = self.model_config.replace(n_speakers=n_speakers)

    def make_dataset(self, utterances, cache_dir: Path | None, seed: int) -> "F0TextMelDataset":
        return F0TextMelDataset(utterances, self.model_config.text, self.model_config.audio, self.speakers,
                                cache_dir=cache_dir, seed=seed, pitch=self.model_config.pitch)

    def adapt_warm_start(self, model: nn.Module, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        # a trained Tacotron 2 starts a Mellotron (zero weights on the F0 input); a narrower one grows
        return super().adapt_warm_start(model, model.tacotron2_state_dict(state_dict))

    def compute_loss(self, model: nn.Module, batch: MellotronBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        config = self.model_config
        f0 = batch.f0
        if model.training and config.pitch.f0_dropout > 0:
            keep = torch.rand(f0.size(0), 1, device=f0.device) >= config.pitch.f0_dropout
            f0 = f0 * keep
        if config.refiner is not None:
            return self.refiner_loss(model, batch, f0=f0)
        output = model(batch.tokens, batch.token_lengths, batch.mel, batch.mel_lengths, f0=f0,
                       speaker_id=batch.speaker_ids)
        loss, parts = tacotron2_loss(output, batch.mel, batch.mel_lengths, batch.token_lengths,
                                     config.decoder.frames_per_step, config.guided_attention, config.mel_loss)
        return loss, {name: value for name, value in parts.items() if name != "total"}

    @torch.no_grad()
    def examples(self, model: nn.Module, batch: MellotronBatch) -> Examples:
        from vocoders.griffin_lim import GriffinLim
        from tts.train.figures import plot_alignment, plot_mel

        config, one = self.model_config, slice(0, 1)
        n_tokens, n_frames = int(batch.token_lengths[0]), int(batch.mel_lengths[0])
        tokens, mel, f0 = batch.tokens[one, :n_tokens], batch.mel[one, :, :n_frames], batch.f0[one, :n_frames]
        speaker_id = batch.speaker_ids[one]
        forced = model(tokens, batch.token_lengths[one], mel, batch.mel_lengths[one], f0=f0, speaker_id=speaker_id)
        # style transfer of the clip onto itself: its rhythm, pitch and GST style
        transfer = model.infer(tokens, speaker_id=speaker_id, style=mel, f0=f0,
                               alignment=forced.frame_alignment(),
                               prenet_dropout=0.0)
        transfer_mel = transfer.mel_postnet[0].float().cpu()
        return Examples(
            figures={"mel_target": plot_mel(mel[0].cpu().numpy(), "target"),
                     "mel_teacher_forced": plot_mel(forced.mel_postnet[0].float().cpu().numpy(), "teacher-forced"),
                     "alignment": plot_alignment(forced.alignment[0].float().cpu().numpy()),
                     "mel_transfer": plot_mel(transfer_mel.numpy(), "rhythm + pitch + style transfer")},
            audio={"transfer": (GriffinLim(config.audio, n_iters=32)(transfer_mel).numpy(), config.audio.sample_rate)})
