"""Frozen config dataclasses that round-trip through JSON, strictly.

Every config in voxflow (audio, text, models, training) is a `@dataclass(frozen=True)` that
inherits `Config`. `to_dict()` gives plain JSON types; `from_dict()` rebuilds the dataclass and
rejects unknown keys (naming their dotted path) and wrongly typed values, so a typo in a JSON
config or a `--set key=value` override is an error instead of a silently ignored setting.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any, TypeVar

from tts.errors import ConfigError

__all__ = ["Config", "TextConfig", "apply_overrides"]

C = TypeVar("C", bound="Config")


@dataclasses.dataclass(frozen=True)
class Config:
    """Base class: JSON round-trip and dotted-path overrides for frozen dataclasses."""

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _to_plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any], _path: str = "") -> C:
        if not isinstance(data, dict):
            raise ConfigError(f"{_path or cls.__name__}: expected an object, found {type(data).__name__}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            where = ", ".join(_path + key for key in unknown)
            raise ConfigError(f"unknown config key {where} (known keys: {', '.join(sorted(fields))})")
        hints = typing.get_type_hints(cls)
        values = {name: _from_plain(hints[name], value, _path + name) for name, value in data.items()}
        return cls(**values)

    @classmethod
    def from_json(cls: type[C], text: str) -> C:
        return cls.from_dict(json.loads(text))

    def replace(self: C, **changes: Any) -> C:
        return dataclasses.replace(self, **changes)


def apply_overrides(config: C, overrides: list[str]) -> C:
    """Apply `key.sub=value` strings (from `--set`) to a config, type-checked like JSON input.

    Values are parsed as JSON when they parse (`3`, `0.5`, `true`, `[1,2]`, `null`), otherwise
    taken as a plain string.
    """
    data = config.to_dict()
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, found {item!r}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        node = data
        parts = key.split(".")
        for depth, part in enumerate(parts):
            if not isinstance(node, dict) or part not in node:
                raise ConfigError(f"--set {key}: unknown config key {'.'.join(parts[:depth + 1])}")
            if depth == len(parts) - 1:
                node[part] = value
            else:
                node = node[part]
    return type(config).from_dict(data)


def _to_plain(value: Any) -> Any:
    if isinstance(value, Config):
        return value.to_dict()
    if isinstance(value, (tuple, list)):
        return [_to_plain(item) for item in value]
    return value


def _from_plain(hint: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _from_plain(option, value, path)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0] if errors else f"{path}: unexpected null")
    if isinstance(hint, type) and issubclass(hint, Config):
        return hint.from_dict(value, _path=path + ".")
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, found {type(value).__name__} {value!r}")
        args = typing.get_args(hint)
        item_hint = args[0] if args else Any
        items = [_from_plain(item_hint, item, f"{path}[{i}]") for i, item in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if hint is Any:
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is typing.Literal or origin is typing.Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            raise ConfigError(f"{path}: expected one of {list(allowed)}, found {value!r}")
        return value
    if isinstance(hint, type):
        if isinstance(value, bool) and hint is not bool:
            raise ConfigError(f"{path}: expected {hint.__name__}, found bool {value!r}")
        if not isinstance(value, hint):
            raise ConfigError(f"{path}: expected {hint.__name__}, found {type(value).__name__} {value!r}")
    return value


@dataclasses.dataclass(frozen=True)
class TextConfig(Config):
    """How text becomes token ids: the symbol set, the cleaners and the ARPAbet probability.

    `symbol_set` names the model whose text path is reproduced ("tacotron2", "flowtron",
    "mellotron"); see `text.text_to_sequence`.
    """

    symbol_set: str = "tacotron2"
    cleaners: tuple[str, ...] = ("english_cleaners",)
    p_arpabet: float = 0.0

    def __post_init__(self) -> None:
        from text.symbols import SYMBOL_SETS

        if self.symbol_set not in SYMBOL_SETS:
            raise ConfigError(f"text.symbol_set: expected one of {sorted(SYMBOL_SETS)}, found {self.symbol_set!r}")
        if not 0.0 <= self.p_arpabet <= 1.0:
            raise ConfigError(f"text.p_arpabet: expected a probability in [0, 1], found {self.p_arpabet}")

    @property
    def n_symbols(self) -> int:
        """Rows of the embedding: the size of the symbol set (derived, never configured)."""
        from text.symbols import symbols_for

        return len(symbols_for(self.symbol_set))
