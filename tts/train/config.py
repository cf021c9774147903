"""The training config: optimizer, schedule, batching, checkpoint and logging cadence.

Kept apart from the model config (style.md §4): the same model trains with different settings,
and a checkpoint records both. The learning-rate schedule is a pure function of the step.
"""

from __future__ import annotations

import dataclasses
import math

from tts.config import Config
from tts.errors import ConfigError

__all__ = ["TrainConfig", "learning_rate_at"]

_AMP_MODES = ("auto", "off", "bf16", "fp16")


@dataclasses.dataclass(frozen=True)
class TrainConfig(Config):
    """How to train. `amp`: "auto" = bf16 on GPUs that support it, else fp16; never on CPU.

    `batch_size` is per process and micro-batch: an optimizer step trains on a global batch of
    batch_size × processes × `grad_accumulation` items, and `max_steps`, the schedule, logging
    and checkpoints count optimizer steps. `max_bad_item_fraction`: items that fail to load
    (a file broken mid-run) are reported and skipped; the run stops once more than
    ceil(fraction × training items) distinct items have failed (0: at the first failure).
    `cache_dir`: where the clips' mels (and F0) are cached; "" = the run folder's `cache`. Runs on
    the same data can share one: entries are keyed on the audio file (path, size, mtime) and the
    audio and pitch settings, and written atomically, so runs of other settings or at the same
    time never read each other's.
    """

    batch_size: int = 16
    learning_rate: float = 1e-3
    min_learning_rate: float = 1e-5
    warmup_steps: int = 0
    decay_start: int = 10_000
    decay_half_life: int = 10_000
    weight_decay: float = 1e-6
    grad_clip: float = 1.0
    max_steps: int = 100_000
    checkpoint_every: int = 1000
    validate_every: int = 1000
    log_every: int = 10
    keep_checkpoints: int = 3
    val_size: int = 8
    seed: int = 1234
    num_workers: int = 0
    amp: str = "auto"
    max_bad_steps: int = 20
    grad_accumulation: int = 1
    max_bad_item_fraction: float = 0.01
    cache_dir: str = ""

    def __post_init__(self) -> None:
        positive = ("batch_size", "max_steps", "checkpoint_every", "validate_every", "log_every",
                    "keep_checkpoints", "decay_half_life", "max_bad_steps", "grad_accumulation")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name}: expected a positive integer, found {getattr(self, name)}")
        if not self.learning_rate > 0 or self.min_learning_rate < 0:
            raise ConfigError(f"train.learning_rate: expected > 0 (and min_learning_rate >= 0), "
                              f"found {self.learning_rate} / {self.min_learning_rate}")
        if self.amp not in _AMP_MODES:
            raise ConfigError(f"train.amp: expected one of {list(_AMP_MODES)}, found {self.amp!r}")
        if self.val_size < 0 or self.num_workers < 0 or self.warmup_steps < 0:
            raise ConfigError("train.val_size, num_workers and warmup_steps: expected >= 0")
        if not 0 <= self.max_bad_item_fraction < 1:
            raise ConfigError(f"train.max_bad_item_fraction: expected a fraction in [0, 1), "
                              f"found {self.max_bad_item_fraction}")


def learning_rate_at(step: int, config: TrainConfig) -> float:
    """Linear warm-up, constant, then exponential decay with a half-life, floored at the minimum."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    if step < config.decay_start:
        return config.learning_rate
    decayed = config.learning_rate * math.pow(0.5, (step - config.decay_start) / config.decay_half_life)
    return max(config.min_learning_rate, decayed)
