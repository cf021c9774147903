"""Training WaveGlow with the shared engine, as NVIDIA/waveglow trains it (nvidia-models.md §5.5).

Data: the audio of an LJSpeech folder or NVIDIA filelist (the text is not used). Each item is a
random `segment_length`-sample segment of a clip (NVIDIA: 16000) with its log-mel frames:

    audio (segment_length,)  float32          mel (n_mels, 1 + segment_length // hop_length)

The mel is a slice of the whole clip's mel (computed once, cached in `RUN/cache`), so the segment
starts on a hop boundary: frame t of the slice is centred on segment sample t · hop_length, the
alignment WaveGlow's upsampler assumes, and the mel carries the clip's own context at the segment
edges, as at inference. Clips shorter than a segment are zero-padded and their mel computed from
the padded audio (NVIDIA `mel2samp.py`). The start is drawn from an RNG seeded by (seed, epoch,
index), so a resumed run picks the same segments as an uninterrupted one. `set_epoch(epoch)` moves
the training set to a new epoch, like `LengthBucketSampler.set_epoch`; the engine must call it at the
start of each epoch, or every epoch reuses epoch 0's segments. Validation items keep epoch 0 (fixed
segments, comparable losses).

Loss: `WaveGlowLoss(sigma)`, the negative log-likelihood per audio sample (NVIDIA divides by
batch · n_group · n_steps); sigma 1.0 in training. Validation vocodes the first validation clip
(at most 4 s) at sigma 0.6 with a fixed seed, logged as audio with its target and vocoded mels.

The task's own settings (`WaveGlowTaskConfig`: segment length, training and example sigma) are
neither model dimensions (the checkpoint config must stay a plain `WaveGlowConfig` for
`vocoders.load_vocoder`, and inference never needs them) nor engine-wide `TrainConfig` fields;
checkpoints record them in their `waveglow_task` metadata.
"""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from tts.audio import AudioConfig, load_audio, mel_spectrogram
from tts.config import Config, TextConfig
from tts.data import TextMelDataset, Utterance, load_utterances, split_validation
from tts.errors import ConfigError, DataError
from tts.train.config import TrainConfig
from tts.train.figures import plot_mel
from tts.train.task import Examples, Task, TaskData
from vocoders.waveglow import WaveGlow, WaveGlowConfig, WaveGlowLoss, WaveGlowOutput

__all__ = ["WaveGlowTask", "WaveGlowTaskConfig", "AudioSegments", "AudioMelBatch", "TRAIN_PRESETS"]

# NVIDIA's config.json for "nvidia": Adam lr 1e-4, no weight decay, no clipping (the float32 maximum,
# as DeepLearningExamples' fp32 WaveGlow script passes), batch 12 per GPU, a checkpoint every 2000
# iterations, constant learning rate; the paper trained 580k iterations. "small"/"tiny" move faster.
_NO_CLIP = 3.4028234663852886e38
TRAIN_PRESETS = {
    "nvidia": TrainConfig(batch_size=12, learning_rate=1e-4, weight_decay=0.0, grad_clip=_NO_CLIP,
                          decay_start=580_000, max_steps=580_000, checkpoint_every=2000, validate_every=2000),
    "small": TrainConfig(batch_size=12, learning_rate=2e-4, weight_decay=0.0, grad_clip=_NO_CLIP,
                         decay_start=100_000, decay_half_life=50_000, max_steps=200_000,
                         checkpoint_every=1000, validate_every=1000),
    "tiny": TrainConfig(batch_size=8, learning_rate=1e-3, weight_decay=0.0, grad_clip=_NO_CLIP,
                        decay_start=10_000, decay_half_life=5_000, max_steps=20_000,
                        checkpoint_every=250, validate_every=250),
}

_EXAMPLE_SECONDS = 4.0
_EXAMPLE_SEED = 0


@dataclasses.dataclass(frozen=True)
class WaveGlowTaskConfig(Config):
    """What training needs beyond the model and the engine. Defaults are NVIDIA's `config.json`."""

    segment_length: int = 16000  # samples per training item (data_config.segment_length)
    sigma: float = 1.0  # the prior's standard deviation in the training loss (train_config.sigma)
    example_sigma: float = 0.6  # z's scale when vocoding the validation example (NVIDIA's CLI default)

    def __post_init__(self) -> None:
        if self.segment_length <= 0:
            raise ConfigError(f"waveglow_task.segment_length: expected a positive number, found {self.segment_length}")
        if not self.sigma > 0 or self.example_sigma < 0:
            raise ConfigError(f"waveglow_task.sigma: expected > 0 (example_sigma >= 0), found "
                              f"{self.sigma} / {self.example_sigma}")


@dataclasses.dataclass
class AudioMelBatch:
    audio: torch.Tensor  # (batch, segment_length)
    mel: torch.Tensor  # (batch, n_mels, 1 + segment_length // hop_length)

    def to(self, device: torch.device | str) -> "AudioMelBatch":
        return AudioMelBatch(self.audio.to(device), self.mel.to(device))


def collate_audio_mel(items: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> AudioMelBatch:
    audio, mel = zip(*items)
    return AudioMelBatch(torch.stack(audio), torch.stack(mel))


class AudioSegments(torch.utils.data.Dataset):
    """Clip i → (audio segment, its mel frames); the segment is fixed by (seed, epoch, i)."""

    def __init__(self, utterances: Sequence[Utterance], audio_config: AudioConfig, segment_length: int,
                 cache_dir: str | Path | None = None, seed: int = 0) -> None:
        self.utterances = list(utterances)
        self.audio_config = audio_config
        self.segment_length = segment_length
        self.seed = seed
        self.epoch = 0
        # Whole-clip mels, cached on disk exactly as the text-to-mel tasks cache them.
        self._mels = TextMelDataset(self.utterances, TextConfig(), audio_config, cache_dir=cache_dir)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.utterances)

    def start_frame(self, index: int, n_samples: int) -> int:
        """The segment's first mel frame; the segment starts at sample start_frame · hop_length."""
        last = (n_samples - self.segment_length) // self.audio_config.hop_length
        return random.Random(f"{self.seed}:{self.epoch}:{index}").randint(0, last)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        utterance, config, length = self.utterances[index], self.audio_config, self.segment_length
        audio = load_audio(utterance.audio_path, config.sample_rate)
        n_frames = config.n_frames(length)
        if len(audio) < length:  # NVIDIA: zero-pad to a whole segment, mel of the padded audio
            audio = np.pad(audio, (0, length - len(audio)))
            return torch.from_numpy(audio), mel_spectrogram(audio, config)
        first = self.start_frame(index, len(audio))
        mel = self._mels.mel(utterance)
        if mel.shape[1] != config.n_frames(len(audio)):
            raise DataError(f"{utterance.where}: the cached mel of {utterance.audio_path} has {mel.shape[1]} frames, "
                            f"expected {config.n_frames(len(audio))}; delete the run's cache folder")
        start = first * config.hop_length
        segment = np.ascontiguousarray(audio[start:start + length])
        return torch.from_numpy(segment), torch.from_numpy(np.ascontiguousarray(mel[:, first:first + n_frames]))

    def clip(self, index: int, max_frames: int) -> tuple[np.ndarray, torch.Tensor]:
        """The first `max_frames` frames of clip `index` (whole-clip mel) and their audio."""
        utterance = self.utterances[index]
        audio = load_audio(utterance.audio_path, self.audio_config.sample_rate)
        mel = torch.from_numpy(self._mels.mel(utterance)[:, :max_frames])
        return audio[:mel.shape[1] * self.audio_config.hop_length], mel


class WaveGlowTask(Task):
    kind = "waveglow"
    config_class = WaveGlowConfig

    def __init__(self, model_config: WaveGlowConfig, task_config: WaveGlowTaskConfig | None = None) -> None:
        super().__init__(model_config)
        self.task_config = task_config or WaveGlowTaskConfig()
        if self.task_config.segment_length % model_config.n_group:
            raise ConfigError(f"waveglow_task.segment_length: expected a multiple of n_group {model_config.n_group}, "
                              f"found {self.task_config.segment_length}")
        self.loss = WaveGlowLoss(self.task_config.sigma)
        self.validation: AudioSegments | None = None

    @classmethod
    def preset(cls, name: str) -> tuple[WaveGlowConfig, TrainConfig]:
        return WaveGlowConfig.preset(name), TRAIN_PRESETS[name]

    def build_model(self) -> nn.Module:
        return WaveGlow(self.model_config)

    def build_data(self, data: Path, cache_dir: Path | None, validation_size: int, seed: int) -> TaskData:
        utterances = load_utterances(data)
        train_items, validation_items = split_validation(utterances, validation_size, seed)

        def dataset(items):
            return AudioSegments(items, self.model_config.audio, self.task_config.segment_length, cache_dir, seed)

        train = dataset(train_items)
        self.validation = dataset(validation_items)
        # Every item has the same length, so the engine's length buckets reduce to a shuffle.
        return TaskData(train, self.validation, collate_audio_mel, [1] * len(train))

    def compute_loss(self, model: nn.Module, batch: AudioMelBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        output: WaveGlowOutput = model(batch.audio, batch.mel)
        loss = self.loss(output)
        # The loss's three terms, per audio sample (they sum to it): a falling log_det/log_s
        # term with z² near 1/2 means the flow learns to shrink the audio towards the prior.
        with torch.no_grad():
            n = output.z.numel()
            parts = {"z_square": output.z.float().square().sum() / (2 * self.task_config.sigma ** 2) / n,
                     "log_s": -sum(log_s.float().sum() for log_s in output.log_s) / n,
                     "log_det": -sum(log_det.float() for log_det in output.log_det) / n}
        return loss, parts

    @torch.no_grad()
    def examples(self, model: nn.Module, batch: AudioMelBatch) -> Examples:
        if self.validation is None or len(self.validation) == 0:
            return Examples()
        audio_config = self.model_config.audio
        max_frames = int(_EXAMPLE_SECONDS * audio_config.sample_rate / audio_config.hop_length)
        target, mel = self.validation.clip(0, max_frames)
        sigma = self.task_config.example_sigma
        # `infer` on the training model itself: no weight-norm folding or cached inverses to undo.
        generator = torch.Generator().manual_seed(_EXAMPLE_SEED)
        audio = model.infer(mel[None].to(batch.mel.device), sigma, generator)[0].float().cpu().clamp(-1, 1)
        vocoded_mel = mel_spectrogram(audio, audio_config) if audio.numel() > audio_config.n_fft else mel
        rate = audio_config.sample_rate
        return Examples(figures={"mel_target": plot_mel(mel.numpy(), "target"),
                                 "mel_vocoded": plot_mel(vocoded_mel.numpy(), f"vocoded (sigma {sigma})")},
                        audio={"vocoded": (audio.numpy(), rate), "target": (target, rate)})

    def checkpoint_metadata(self) -> dict[str, str]:
        return {"waveglow_task": json.dumps(self.task_config.to_dict(), sort_keys=True)}
