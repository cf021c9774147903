"""voxflow's checkpoint format: one safetensors file, self-describing through its metadata.

The `__metadata__` (a str → str map, as safetensors requires) holds `format_version`, `kind`
(e.g. "tacotron2", "waveglow"), `config` (the model config as JSON), `voxflow_version` and,
for text models, `symbols` (JSON list). That is enough to rebuild the model without any
training script. Files are written atomically (temp file in the same folder, fsync, rename),
so a crash mid-save leaves the previous file intact. Reading never unpickles anything.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from tts.errors import UserError

__all__ = ["FORMAT_VERSION", "Checkpoint", "save_checkpoint", "read_checkpoint", "atomic_write", "is_safetensors"]

FORMAT_VERSION = 1
VOXFLOW_VERSION = "0.1.0"


@dataclasses.dataclass
class Checkpoint:
    """What a checkpoint file holds: the model kind, its config as a dict, and its tensors."""

    kind: str
    config: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    metadata: dict[str, str]


def is_safetensors(path: str | os.PathLike) -> bool:
    """True when the file starts like a safetensors file (an 8-byte length, then a JSON header)."""
    with open(path, "rb") as file:
        head = file.read(9)
    return len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 100_000_000


def atomic_write(path: str | os.PathLike, write) -> Path:
    """Call `write(temporary_path)`, fsync it, then rename over `path` so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(temporary)
        with open(temporary, "rb") as file:
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return path


def save_checkpoint(path: str | os.PathLike, state_dict: dict[str, torch.Tensor], kind: str,
                    config: dict[str, Any], symbols: list[str] | None = None,
                    extra_metadata: dict[str, str] | None = None) -> Path:
    """Write weights + metadata atomically. Tensors are copied contiguous (safetensors requires it)."""
    metadata = {
        "format_version": str(FORMAT_VERSION),
        "kind": kind,
        "config": json.dumps(config, sort_keys=True),
        "voxflow_version": VOXFLOW_VERSION,
        **({"symbols": json.dumps(list(symbols), ensure_ascii=False)} if symbols is not None else {}),
        **(extra_metadata or {}),
    }
    # clone(): tensors that share storage (tied or viewed weights) cannot be saved as they are.
    tensors = {name: tensor.detach().cpu().contiguous().clone() for name, tensor in state_dict.items()}
    return atomic_write(path, lambda temporary: save_file(tensors, temporary, metadata=metadata))


def read_checkpoint(path: str | os.PathLike, device: str = "cpu") -> Checkpoint:
    """Read a voxflow safetensors checkpoint; anything malformed is a `UserError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such checkpoint file")
    try:
        with safe_open(str(path), framework="pt", device=device) as file:
            metadata = file.metadata() or {}
            state_dict = {name: file.get_tensor(name) for name in file.keys()}
    except (SafetensorError, OSError, ValueError) as error:
        raise UserError(f"{path}: not a readable safetensors file ({error})") from None
    missing = [key for key in ("format_version", "kind", "config") if key not in metadata]
    if missing:
        raise UserError(f"{path}: not a voxflow checkpoint (its metadata lacks {', '.join(missing)})")
    if metadata["format_version"] != str(FORMAT_VERSION):
        raise UserError(f"{path}: checkpoint format {metadata['format_version']} is not supported "
                        f"(this voxflow reads format {FORMAT_VERSION})")
    try:
        config = json.loads(metadata["config"])
    except json.JSONDecodeError as error:
        raise UserError(f"{path}: the checkpoint's config metadata is not valid JSON ({error})") from None
    if not isinstance(config, dict):
        raise UserError(f"{path}: the checkpoint's config metadata is not a JSON object")
    return Checkpoint(metadata["kind"], config, state_dict, metadata)
