"""From command-line style inputs to the configs of a run: presets, JSON files, `--set` overrides.

A config file is JSON with two optional parts, `{"model": {...}, "train": {...}}`, each a full or
partial dict over the preset it starts from ("preset": "small" by default). `--set` keys start
with `model.` or `train.`: `--set model.decoder.rnn_dim=512 --set train.batch_size=8`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from tts.config import Config, apply_overrides
from tts.errors import ConfigError
from tts.train.config import TrainConfig
from tts.train.task import Task

__all__ = ["resolve_configs", "DEFAULT_PRESET"]

DEFAULT_PRESET = "small"


def _merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in changes.items():
        merged[key] = _merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return merged


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path}:{error.lineno}: not valid JSON ({error.msg})") from None
    unknown = sorted(set(data) - {"preset", "model", "train"}) if isinstance(data, dict) else ["(not an object)"]
    if unknown:
        raise ConfigError(f"{path}: expected keys preset, model, train; found {', '.join(unknown)}")
    return data


def resolve_configs(task_class: type[Task], config: str | None = None,
                    overrides: Sequence[str] = ()) -> tuple[Config, TrainConfig]:
    """The model and train configs from a preset name or JSON file, then `--set` overrides."""
    data: dict[str, Any] = {}
    if config and Path(config).suffix == ".json":
        data = _read_config_file(Path(config))
        preset = data.get("preset", DEFAULT_PRESET)
    else:
        preset = config or DEFAULT_PRESET
    if preset not in task_class.preset_names:
        raise ConfigError(f"unknown {task_class.kind} preset {preset!r}; presets: {', '.join(task_class.preset_names)} "
                          "(or a .json config file)")
    model_config, train_config = task_class.preset(preset)
    if "model" in data:
        model_config = type(model_config).from_dict(_merge(model_config.to_dict(), data["model"]))
    if "train" in data:
        train_config = TrainConfig.from_dict(_merge(train_config.to_dict(), data["train"]))
    return apply_split_overrides(model_config, train_config, overrides)


def apply_split_overrides(model_config: Config, train_config: TrainConfig,
                          overrides: Sequence[str]) -> tuple[Config, TrainConfig]:
    """Apply `model.x=...` to the model config and `train.x=...` to the train config."""
    model_overrides, train_overrides = [], []
    for item in overrides:
        head, _, rest = item.partition(".")
        if head == "model" and rest:
            model_overrides.append(rest)
        elif head == "train" and rest:
            train_overrides.append(rest)
        else:
            raise ConfigError(f"--set {item}: keys start with model. or train. (e.g. train.batch_size=8)")
    return apply_overrides(model_config, model_overrides), apply_overrides(train_config, train_overrides)
