"""How a model plugs into the training engine: a `Task` builds the model and data and scores a batch.

The engine (`tts.train.engine.Trainer`) owns the optimizer, schedule, checkpoints, logging and
processes; a task owns everything model-specific. A task is small:

    class MyTask(Task):
        kind = "tacotron2"
        def build_model(self) -> nn.Module: ...
        def build_data(self, data, cache_dir) -> TaskData: ...
        def compute_loss(self, model, batch) -> (loss, {"mel": 0.31, ...}): ...
        def examples(self, model, batch) -> Examples: ...   # optional TensorBoard images/audio
"""

from __future__ import annotations

import abc
import importlib
import dataclasses
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from tts.config import Config
from tts.train.config import TrainConfig
from tts.errors import TrainingError

__all__ = ["Task", "TaskData", "Examples", "move_to", "task_for", "TRAINABLE_KINDS"]


@dataclasses.dataclass
class TaskData:
    """Training and validation sets, how to batch them, and each training item's length."""

    train: torch.utils.data.Dataset
    validation: torch.utils.data.Dataset
    collate: Callable[[Sequence[Any]], Any]
    train_lengths: list[int]


@dataclasses.dataclass
class Examples:
    """What validation shows in TensorBoard: matplotlib figures and (audio, sample_rate) pairs."""

    figures: dict[str, Any] = dataclasses.field(default_factory=dict)
    audio: dict[str, tuple[np.ndarray, int]] = dataclasses.field(default_factory=dict)


class Task(abc.ABC):
    """A trainable model kind: its config, model, data and loss."""

    kind: str = ""
    config_class: type[Config]
    preset_names: tuple[str, ...] = ("nvidia", "small", "tiny")

    def __init__(self, model_config: Config) -> None:
        self.model_config = model_config
        self.step = 0  # the engine's optimizer-step count, set before each training batch is scored
        self.critic: nn.Module | None = None  # the engine's copy of `build_critic()`, on its device

    @classmethod
    @abc.abstractmethod
    def preset(cls, name: str) -> tuple[Config, TrainConfig]:
        """The model and training configs of a named preset (one of `preset_names`)."""

    @abc.abstractmethod
    def build_model(self) -> nn.Module:
        """A freshly initialised model for `self.model_config`."""

    @abc.abstractmethod
    def build_data(self, data: Path, cache_dir: Path | None, validation_size: int, seed: int) -> TaskData:
        """The data sets read from `data` (a folder or filelist)."""

    @abc.abstractmethod
    def compute_loss(self, model: nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, float | torch.Tensor]]:
        """The scalar loss to minimise and named parts of it for logging (floats or detached 0-d
        tensors: the engine reads tensors only on logging steps, so no device sync per step)."""

    def examples(self, model: nn.Module, batch: Any) -> Examples:
        return Examples()

    def build_critic(self) -> nn.Module | None:
        """A network that trains beside the model but is not part of it (an adversarial critic), or
        None. The engine optimizes it with the model, keeps it in the training state (resume restores
        it; the model's weights never hold it) and sets `self.critic` before scoring batches."""
        return None

    def adapt_warm_start(self, model: nn.Module, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Another model's weights made to fit `model` before a warm start (e.g. a Tacotron 2 →
        Mellotron); by default unchanged."""
        return state_dict

    def symbols(self) -> list[str] | None:
        """The symbol list stored in checkpoints (text models)."""
        return None

    def checkpoint_metadata(self) -> dict[str, str]:
        """Extra string metadata for checkpoints (e.g. speaker names); called after `build_data`."""
        return {}


# `voxflow train KIND` → the module and class of its task, imported only when used.
_TASKS: dict[str, tuple[str, str]] = {
    "tacotron2": ("tts.train.tacotron2_task", "Tacotron2Task"),
    "mellotron": ("tts.train.mellotron_task", "MellotronTask"),
    "waveglow": ("tts.train.waveglow_task", "WaveGlowTask"),
    "flowtron": ("tts.train.flowtron_task", "FlowtronTask"),
}


TRAINABLE_KINDS = tuple(_TASKS)


def task_for(kind: str) -> type[Task]:
    if kind not in _TASKS:
        raise TrainingError(f"unknown model kind {kind!r}; trainable kinds: {', '.join(sorted(_TASKS))}")
    module, name = _TASKS[kind]
    return getattr(importlib.import_module(module), name)


def move_to(batch: Any, device: torch.device) -> Any:
    """Move a batch (a tensor, a dataclass with `.to`, or a tuple/list/dict of them) to `device`."""
    if isinstance(batch, torch.Tensor) or hasattr(batch, "to"):
        return batch.to(device)
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to(item, device) for item in batch)
    if isinstance(batch, dict):
        return {key: move_to(value, device) for key, value in batch.items()}
    return batch
