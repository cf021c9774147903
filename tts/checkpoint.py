"""voxflow's checkpoint format: one safetensors file, self-describing through its metadata.

The `__metadata__` (a str → str map, as safetensors requires) holds `format_version`, `kind`
(e.g. "tacotron2", "waveglow"), `config` (the model config as JSON), `voxflow_version` and,
for text models, `symbols` (JSON list). That is enough to rebuild the model without any
training script. Reading never unpickles anything.

- Writes are atomic (temp file in the same folder, fsync, rename, fsync the folder): a crash or
  `kill -9` mid-save leaves the previous file intact, and a failed write (a full disk) is a
  `UserError` naming the file and the reason, with no temp file left behind.
- Loads are checked: anything malformed is a `UserError` naming the file (`read_checkpoint`,
  `naming_file`), and `build_model` compares the file's tensors with the model its config
  describes before allocating that model (a hostile config cannot ask for a huge one).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from tts.errors import UserError

__all__ = ["FORMAT_VERSION", "Checkpoint", "float16_state_dict", "save_checkpoint", "read_checkpoint", "atomic_write", "is_safetensors",
           "sync_directory", "write_failure", "naming_file", "check_tensors", "build_model"]

FORMAT_VERSION = 1
VOXFLOW_VERSION = "0.1.0"

# What a malformed file can provoke in config parsing, key lookups and model building; `naming_file`
# turns these into a UserError naming the file (anything else is a bug and keeps its traceback).
_MALFORMED = (KeyError, IndexError, ValueError, TypeError, AttributeError, RuntimeError, OverflowError)


@dataclasses.dataclass
class Checkpoint:
    """What a checkpoint file holds: the model kind, its config as a dict, and its tensors."""

    kind: str
    config: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    metadata: dict[str, str]


def is_safetensors(path: str | os.PathLike) -> bool:
    """True when `path` is a file that starts like a safetensors file (an 8-byte length, then a JSON header)."""
    if not Path(path).is_file():
        return False
    with open(path, "rb") as file:
        head = file.read(9)
    return len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 100_000_000


def sync_directory(path: str | os.PathLike) -> None:
    """fsync a folder, so a rename or new entry in it survives a power cut (not only a killed process)."""
    directory = os.open(path, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def write_failure(error: BaseException) -> str | None:
    """Why a write failed, in words ("no space left on device"), or None when `error` is not an I/O
    failure. safetensors reports its own I/O errors as `SafetensorError("... I/O error: No space left
    on device (os error 28)")`, not as OSError."""
    if isinstance(error, OSError):
        reason = error.strerror or str(error) or type(error).__name__
    elif isinstance(error, SafetensorError) and (match := re.search(r"I/O error: (.+?)(?: \(os error \d+\))?$",
                                                                    str(error))):
        reason = match.group(1)
    else:
        return None
    return reason[:1].lower() + reason[1:]


def atomic_write(path: str | os.PathLike, write: Callable[[str], Any]) -> Path:
    """Call `write(temporary_path)`, fsync it, then rename over `path` so readers never see half a file.

    A failed write (a full disk, a read-only folder) raises a `UserError` naming `path` and the
    reason; the temporary file is removed and a previous `path` is left as it was.
    """
    path = Path(path)
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(handle)
        write(temporary)
        with open(temporary, "rb") as file:
            os.fsync(file.fileno())
        # mkstemp makes the file private (0600); give it the mode a plain open() would have
        os.chmod(temporary, _new_file_mode())
        os.replace(temporary, path)
        temporary = None
        sync_directory(path.parent)
    except BaseException as error:
        kept = temporary is not None  # failed before the rename: `path` is untouched
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
        reason = write_failure(error)
        if reason is None:
            raise
        raise UserError(f"{path}: cannot write it ({reason})"
                        + ("; the previous file, if any, is unchanged" if kept else "")) from error
    return path


def _new_file_mode() -> int:
    umask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(umask)
    return 0o666 & ~umask


def float16_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`state_dict` with its floating-point tensors as float16 (half the storage); others unchanged."""
    return {name: tensor.half() if tensor.is_floating_point() else tensor for name, tensor in state_dict.items()}


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
        raise UserError(f"{path}: no such checkpoint file" + (" (it is a folder)" if path.is_dir() else ""))
    try:
        # safetensors checks the header itself: offsets that overlap or leave gaps, shapes that do not
        # match their byte ranges, sizes beyond the file, non-string metadata.
        with safe_open(str(path), framework="pt", device=device) as file:
            metadata = file.metadata() or {}
            state_dict = {name: file.get_tensor(name) for name in file.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise UserError(f"{path}: not a readable safetensors file ({error})") from None
    missing = [key for key in ("format_version", "kind", "config") if key not in metadata]
    if missing:
        raise UserError(f"{path}: not a voxflow checkpoint (its metadata lacks {', '.join(missing)})")
    if metadata["format_version"] != str(FORMAT_VERSION):
        raise UserError(f"{path}: checkpoint format {metadata['format_version'][:20]} is not supported "
                        f"(this voxflow reads format {FORMAT_VERSION})")
    try:
        config = json.loads(metadata["config"])
    except json.JSONDecodeError as error:
        raise UserError(f"{path}: the checkpoint's config metadata is not valid JSON ({error})") from None
    if not isinstance(config, dict):
        raise UserError(f"{path}: the checkpoint's config metadata is not a JSON object "
                        f"(found {type(config).__name__})")
    return Checkpoint(metadata["kind"], config, state_dict, metadata)


@contextlib.contextmanager
def naming_file(path: str | os.PathLike, what: str = "checkpoint") -> Iterator[None]:
    """Re-raise what a malformed file provokes inside the block as a `UserError` that names it.

    A `UserError` that does not name the file yet (e.g. a `ConfigError` from `Config.from_dict`)
    keeps its type and gains the file name; key, type, value and shape errors become
    "PATH: not a usable WHAT (...)".
    """
    try:
        yield
    except UserError as error:
        if str(path) in str(error):
            raise
        raise type(error)(f"{path}: {error}") from error
    except _MALFORMED as error:
        message = str(error).strip().splitlines()[0][:300] if str(error).strip() else ""
        raise UserError(f"{path}: not a usable {what} ({type(error).__name__}: {message})") from error


def _shape(tensor: torch.Tensor) -> str:
    return "(" + ", ".join(str(size) for size in tensor.shape) + ")"


def check_tensors(path: str | os.PathLike, expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor],
                  what: str = "model") -> None:
    """Raise a `UserError` unless `found` has exactly `expected`'s keys, shapes and kinds of dtype
    (floating or not); the message lists the missing and unexpected keys and the shapes that differ."""
    missing = [key for key in expected if key not in found]
    unexpected = [key for key in found if key not in expected]
    shapes = [f"{key} expected {_shape(tensor)}, found {_shape(found[key])}" for key, tensor in expected.items()
              if key in found and found[key].shape != tensor.shape]
    dtypes = [f"{key} expected a {'floating-point' if tensor.is_floating_point() else str(tensor.dtype)} tensor, "
              f"found {found[key].dtype}" for key, tensor in expected.items()
              if key in found and found[key].is_floating_point() != tensor.is_floating_point()]

    def listed(keys: list[str], limit: int = 6) -> str:
        return "; ".join(keys[:limit]) + (f" (and {len(keys) - limit} more)" if len(keys) > limit else "")

    problems = [f"{label}{listed(keys)}" for label, keys in (("missing ", missing), ("unexpected ", unexpected),
                                                             ("wrong shapes: ", shapes), ("wrong dtypes: ", dtypes))
                if keys]
    if problems:
        raise UserError(f"{path}: its tensors do not fit the {what} its config describes: " + " | ".join(problems))


def build_model(path: str | os.PathLike, build: Callable[[], nn.Module], state_dict: dict[str, torch.Tensor],
                what: str = "model") -> nn.Module:
    """`build()` holding `state_dict`, checked strictly against the file at `path`.

    The model is first built on the meta device (no memory) and its tensors compared with the
    file's (`check_tensors`), so a config that does not fit its weights is a clear error, and a
    hostile config cannot make us allocate a model much larger than the file itself. A file in
    another layout that the model's own load hooks convert (WaveGlow's folded weight norm) is
    accepted when it loads into the meta model.
    """
    with naming_file(path, what):
        with torch.device("meta"), _skipping_init():
            skeleton = build()
        expected = skeleton.state_dict()
        try:
            check_tensors(path, expected, state_dict, what)
        except UserError:
            converted = _converted(skeleton, state_dict)
            if converted is None:
                raise
            check_tensors(path, expected, converted, what)
        with _skipping_init():  # every tensor is overwritten by the strict load below
            model = build()
        model.load_state_dict(state_dict, strict=True)
    return model


@contextlib.contextmanager
def _skipping_init() -> Iterator[None]:
    """`torch.nn.init`'s in-place initialisers as no-ops while a model is built to be loaded into.

    Random initialisation of meta tensors runs through torch's Python reference kernels, whose
    first use imports torch._dynamo (about 2 s, more than the rest of `voxflow say`'s start), and
    on a real model it only draws numbers the load replaces. (The patch is process-wide for the
    moment of the build: a model initialised in another thread meanwhile would start unset.)"""
    names = [name for name in torch.nn.init.__all__ if name.endswith("_")]
    saved = {name: getattr(torch.nn.init, name) for name in names}
    try:
        for name in names:
            setattr(torch.nn.init, name, _keep)
        yield
    finally:
        for name, function in saved.items():
            setattr(torch.nn.init, name, function)


def _keep(tensor: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    return tensor


def _converted(skeleton: nn.Module, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor] | None:
    """`state_dict` as the meta `skeleton`'s load hooks turn it into the model's own layout (shapes and
    dtypes only, nothing copied), or None when they cannot."""
    for parameter in skeleton.parameters():
        parameter.requires_grad_(False)  # so integer tensors load too, and the dtype check names them
    try:
        skeleton.load_state_dict({key: tensor.to("meta") for key, tensor in state_dict.items()}, strict=True,
                                 assign=True)
    except RuntimeError:
        return None
    return skeleton.state_dict()
