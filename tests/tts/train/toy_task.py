"""A toy regression task for the training engine's tests: y = x·w for x of shape (4,), learned by
a small MLP. Dropout (on by default) makes an exact resumption depend on the restored RNG state.
With `critic=True` a second network trains beside it (`Task.build_critic`): a linear map from the
detached predictions to the targets, standing in for an adversarial critic.
`logged` reads back the scalars a run wrote to TensorBoard.

Imported by the engine, fault and multi-process tests, and by the child processes they start
(pytest finds it through `pythonpath` in pyproject.toml; a child through its script's folder or
PYTHONPATH).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from tts.config import Config
from tts.train.config import TrainConfig
from tts.train.task import Task, TaskData

_WEIGHTS = torch.tensor([[1.0], [-2.0], [0.5], [3.0]])


@dataclasses.dataclass(frozen=True)
class ToyConfig(Config):
    width: int = 16
    dropout: float = 0.2
    n_items: int = 40
    critic: bool = False


class Pairs(torch.utils.data.Dataset):
    """`count` (x, y) pairs drawn with `seed`; the items in `broken` raise as an unreadable clip would."""

    def __init__(self, count: int, seed: int = 0, broken=()) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.inputs = torch.randn(count, 4, generator=generator)
        self.targets = self.inputs @ _WEIGHTS
        self.broken = set(broken)

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index):
        if index in self.broken:
            raise OSError(f"clip{index}.wav: unreadable")
        return self.inputs[index], self.targets[index]


def collate(items):
    inputs, targets = zip(*items)
    return torch.stack(inputs), torch.stack(targets)


class ToyTask(Task):
    """`on_step(calls)` runs before each loss (to send a signal, or to slow a step down); `calls`
    counts the losses computed, one per micro-batch."""

    kind = "toy"

    def __init__(self, model_config: ToyConfig = ToyConfig(), on_step: Callable[[int], None] | None = None,
                 broken=()) -> None:
        super().__init__(model_config)
        self.on_step = on_step
        self.broken = broken
        self.calls = 0

    @classmethod
    def preset(cls, name):
        return ToyConfig(width={"tiny": 4, "small": 16, "nvidia": 64}[name]), TrainConfig()

    def build_model(self) -> nn.Module:
        width = self.model_config.width
        return nn.Sequential(nn.Linear(4, width), nn.Tanh(), nn.Dropout(self.model_config.dropout),
                             nn.Linear(width, 1))

    def build_critic(self) -> nn.Module | None:
        return nn.Linear(1, 1) if self.model_config.critic else None

    def build_data(self, data: Path, cache_dir, validation_size: int, seed: int) -> TaskData:
        n_items = self.model_config.n_items
        return TaskData(Pairs(n_items, 0, self.broken), Pairs(validation_size, 1), collate, [1] * n_items)

    def compute_loss(self, model, batch):
        self.calls += 1
        if self.on_step is not None:
            self.on_step(self.calls)
        inputs, targets = batch
        prediction = model(inputs)
        loss = nn.functional.mse_loss(prediction, targets)
        if self.critic is None:
            return loss, {"mse": loss.detach()}
        critic_loss = nn.functional.mse_loss(self.critic(prediction.detach()), targets)
        return loss + critic_loss, {"mse": loss.detach(), "critic": critic_loss.detach()}


def logged(run: Path, tag: str = "train/loss") -> list[tuple[int, float]]:
    """(step, value) pairs of a TensorBoard scalar the run logged."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "logs"))
    events.Reload()
    return [(event.step, event.value) for event in events.Scalars(tag)]
