"""Load any mel generator from a file: voxflow safetensors (kind in the metadata) or NVIDIA `.pt`.

    model = tts.load_model("voice.safetensors")          # or "tacotron2_statedict.pt"
    loaded = tts.loading.read_model("voice.safetensors")  # the model plus speakers, kind, symbols

NVIDIA files are read by `tts.legacy`'s restricted unpickler (nothing pickled ever runs); their
kind is recognised from the tensor names and their config from the tensor shapes. Whatever is
wrong with a file (unknown kind, a config of the wrong kind or types, tensors that do not fit the
config) is a `UserError` naming the file; a voxflow file's tensors are checked against its config
before the model is allocated (`tts.checkpoint.build_model`).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
from pathlib import Path

import torch
from torch import nn

from tts.checkpoint import build_model, float16_state_dict, is_safetensors, naming_file, read_checkpoint, save_checkpoint
from tts.errors import UserError

__all__ = ["LoadedModel", "MODEL_KINDS", "load_model", "read_model", "save_model", "model_kind"]

# kind → (module, class, "module:function" telling whether an NVIDIA state dict is of this kind).
# Each class has `config_class`, `__init__(config)` and `from_nvidia_state_dict(state_dict)`.
# Order matters for NVIDIA files: later kinds are tried first (Mellotron's keys include Tacotron 2's).
MODEL_KINDS: dict[str, tuple[str, str, str]] = {
    "tacotron2": ("tts.models.tacotron2", "Tacotron2", "tts.models.presets:looks_like_nvidia_tacotron2"),
    "mellotron": ("tts.models.mellotron", "Mellotron", "tts.models.mellotron:looks_like_nvidia_mellotron"),
    "flowtron": ("tts.models.flowtron", "Flowtron", "tts.models.flowtron:looks_like_nvidia_flowtron"),
}


@dataclasses.dataclass
class LoadedModel:
    """A mel generator ready for inference (eval mode), with what its file says about it."""

    kind: str
    model: nn.Module
    speakers: tuple[str, ...]
    source: Path


def _model_class(kind: str) -> type[nn.Module]:
    if kind not in MODEL_KINDS:
        raise UserError(f"checkpoint kind {kind!r} is not a mel generator; known kinds: {', '.join(MODEL_KINDS)}"
                        + (" (load vocoders with vocoders.load_vocoder or --vocoder)" if kind == "waveglow" else ""))
    module, name, _ = MODEL_KINDS[kind]
    return getattr(importlib.import_module(module), name)


def _nvidia_detector(kind: str):
    module, name = MODEL_KINDS[kind][2].split(":")
    return getattr(importlib.import_module(module), name)


def model_kind(model: nn.Module) -> str:
    for kind, (module, name, _) in MODEL_KINDS.items():
        if type(model).__module__ == module and type(model).__name__ == name:
            return kind
    raise UserError(f"{type(model).__name__} is not a known mel generator")


def _read_nvidia(path: Path) -> tuple[str, nn.Module]:
    from tts.legacy import read_legacy_state_dict

    state_dict = read_legacy_state_dict(path)
    with naming_file(path, "NVIDIA checkpoint"):
        for kind in reversed(MODEL_KINDS):  # most specific first: Mellotron's keys include Tacotron 2's
            if _nvidia_detector(kind)(state_dict):
                return kind, _model_class(kind).from_nvidia_state_dict(state_dict)
    if any(key.startswith(("flows.", "WN.", "convinv.", "upsample.")) for key in state_dict):
        raise UserError(f"{path}: this is a WaveGlow vocoder, not a mel generator; pass it as --vocoder "
                        "(or vocoders.load_vocoder)")
    raise UserError(f"{path}: not a checkpoint of a known model (its tensors match none of "
                    f"{', '.join(MODEL_KINDS)})")


def _speakers(path: Path, metadata: dict[str, str]) -> tuple[str, ...]:
    try:
        speakers = json.loads(metadata.get("speakers", "[]"))
    except json.JSONDecodeError as error:
        raise UserError(f"{path}: the checkpoint's speakers metadata is not valid JSON ({error})") from None
    if not isinstance(speakers, list) or not all(isinstance(name, str) for name in speakers):
        raise UserError(f"{path}: the checkpoint's speakers metadata: expected a JSON list of names, "
                        f"found {metadata['speakers'][:100]}")
    return tuple(speakers)


def _read_voxflow(path: Path) -> tuple[str, nn.Module, tuple[str, ...]]:
    checkpoint = read_checkpoint(path)
    with naming_file(path):
        model_class = _model_class(checkpoint.kind)
        config = model_class.config_class.from_dict(checkpoint.config)
    model = build_model(path, lambda: model_class(config), checkpoint.state_dict, f"{checkpoint.kind} model")
    return checkpoint.kind, model, _speakers(path, checkpoint.metadata)


def read_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> LoadedModel:
    """The model in `path`, in eval mode on `device`, with its speaker names (empty if none)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such model file" + (" (it is a folder)" if path.is_dir() else ""))
    if is_safetensors(path):
        kind, model, speakers = _read_voxflow(path)
    else:
        kind, model = _read_nvidia(path)
        speakers = tuple(getattr(model, "nvidia_speaker_names", ()))
    return LoadedModel(kind, model.to(device).eval(), speakers, path)


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """The mel generator in `path` (voxflow or NVIDIA checkpoint), in eval mode."""
    return read_model(path, device).model


def save_model(path: str | os.PathLike, model: nn.Module, speakers: tuple[str, ...] = (),
               half: bool = False) -> Path:
    """Write a mel generator as a voxflow checkpoint; `half` stores float tensors as float16."""
    from text.symbols import symbols_for

    state_dict = float16_state_dict(model.state_dict()) if half else model.state_dict()
    config = model.config
    return save_checkpoint(path, state_dict, model_kind(model), config.to_dict(),
                           list(symbols_for(config.text.symbol_set)), {"speakers": json.dumps(list(speakers))})
