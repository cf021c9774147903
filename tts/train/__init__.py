"""The training engine every model shares (see `tts.train.engine.Trainer`) and its parts."""

from tts.train.config import TrainConfig, learning_rate_at
from tts.train.engine import Trainer, read_run_config
from tts.train.task import Examples, Task, TaskData, task_for

__all__ = ["TrainConfig", "learning_rate_at", "Trainer", "read_run_config", "Task", "TaskData", "Examples",
           "task_for"]
