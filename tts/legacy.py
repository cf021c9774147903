"""Read NVIDIA's `.pt` checkpoints without running any pickled code.

NVIDIA's files are pickles: plain state dicts, `{'state_dict', 'optimizer', 'iteration',
'learning_rate'}` training checkpoints (Tacotron 2, Mellotron, Flowtron, DLE), and whole pickled
models such as WaveGlow's `{'model': <glow.WaveGlow>}`, which the reference code can only load with
`glow.py` on `sys.path`. Here a restricted unpickler resolves only:

- tensor and storage rebuild functions, dtypes, `OrderedDict`, `set`, `torch.Size` (the real ones);
- classes from the model modules NVIDIA pickled (`glow`, `glow_old`, `flowtron`) and from
  `torch.nn.modules`, `torch.nn.utils` weight norm / parametrizations and `torch.nn.backends`,
  as inert stubs that only record their pickled state (nothing of theirs is imported or run);
- anything else (`os.system`, `builtins.eval`, an unknown module, ...) raises `UserError` naming
  the file and the global, before anything of it is imported or called.

TorchScript archives (zip files with `constants.pkl` or `code/`, which `torch.load` would hand to
`torch.jit.load`, running the archive's code) are refused, and so are tensors that hold more than
the file could (a stride-0 view posing as a huge weight, a pickled `torch.Tensor(n)` call): a
model built from their shapes would not fit in memory. Any other malformed structure is a
`UserError` naming the file too.

The stub tree is then walked (`_parameters`, `_buffers`, `_modules`) into a flat state dict
with NVIDIA's key names. Keys are normalised: `module.` prefixes (DataParallel/DLE) stripped,
new-style `parametrizations.weight.original0/1` renamed to `weight_g`/`weight_v`, floating
tensors cast to float32, and pre-2019 WaveGlow layouts (per-layer `cond_layers`, separate
`res_layers`/`skip_layers`) fused into `glow.py`'s `cond_layer`/`res_skip_layers`.
"""

from __future__ import annotations

import _compat_pickle
import codecs
import dataclasses
import io
import os
import pickle
import re
import types
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any, BinaryIO

import torch

from tts.errors import UserError

__all__ = ["LegacyCheckpoint", "read_legacy_checkpoint", "read_legacy_state_dict", "fuse_old_waveglow"]

_MODEL_MODULES = ("glow", "glow_old", "flowtron")
_TORCH_MODULE_PREFIXES = ("torch.nn.modules.", "torch.nn.utils.weight_norm", "torch.nn.utils.parametriz",
                          "torch.nn.backends.")
_METADATA_KEYS = ("iteration", "learning_rate", "epoch", "config")
_MAX_DEPTH = 64  # nesting of pickled modules / plain values; NVIDIA's files nest a few levels
_MAX_MODULES = 100_000  # module visits in one file; NVIDIA's largest has a few hundred


@dataclasses.dataclass
class LegacyCheckpoint:
    """What a legacy file held: the weights, plain metadata, and (for pickled models) the classes.

    `classes` maps a module path ("" for the root, "WN.0", ...) to its pickled class name
    ("glow.WaveGlow"); `attributes` holds pickled modules' plain attributes by dotted path
    (e.g. "n_flows": 12, "upsample.stride": (256,)). Both are empty for state-dict files.
    """

    state_dict: dict[str, torch.Tensor]
    metadata: dict[str, Any]
    classes: dict[str, str]
    attributes: dict[str, Any]

    @property
    def model_class(self) -> str | None:
        return self.classes.get("")


class _Stub:
    """An inert stand-in for a pickled class: records constructor arguments and state, runs nothing."""

    qualified_name = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.__dict__["_stub_args"] = args

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (__dict__, __slots__ state)
            for part in state:
                self.__setstate__(part)
        elif isinstance(state, dict):
            self.__dict__.update({str(key): value for key, value in state.items()})
        elif state is not None:
            self.__dict__["_stub_state"] = state


_stub_classes: dict[str, type] = {}


def _stub_class(qualified_name: str) -> type:
    if qualified_name not in _stub_classes:
        name = qualified_name.rsplit(".", 1)[-1]
        _stub_classes[qualified_name] = type(name, (_Stub,), {"qualified_name": qualified_name})
    return _stub_classes[qualified_name]


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """How protocol-2 pickles spell bytes: `_codecs.encode(text, "latin1")`; no other codec is reachable."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"refusing _codecs.encode with encoding {encoding!r}")
    return codecs.encode(text, "latin1")


def _real_globals() -> dict[str, Any]:
    allowed: dict[str, Any] = {
        "collections.OrderedDict": OrderedDict,
        "builtins.set": set,
        "builtins.frozenset": frozenset,
        "_codecs.encode": _latin1_encode,
        "torch.Size": torch.Size,
        "torch.Tensor": torch.Tensor,
        "torch._tensor.Tensor": torch.Tensor,
        "torch.nn.parameter.Parameter": torch.nn.Parameter,
        "torch._tensor._rebuild_from_type_v2": torch._tensor._rebuild_from_type_v2,
    }
    for name in ("_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter",
                 "_rebuild_parameter_with_state"):
        if hasattr(torch._utils, name):
            allowed[f"torch._utils.{name}"] = getattr(torch._utils, name)
    for value in vars(torch).values():
        if isinstance(value, torch.dtype):
            allowed[str(value)] = value  # str(torch.float32) == "torch.float32"
    for storage in (torch.UntypedStorage, torch.storage.TypedStorage):
        allowed[f"{storage.__module__}.{storage.__name__}"] = storage
        allowed[f"torch.{storage.__name__}"] = storage
    return allowed


def _restricted_pickle_module(path: Path) -> types.ModuleType:
    """A `pickle`-like module for `torch.load(pickle_module=...)` whose Unpickler refuses code."""
    allowed = _real_globals()

    class RestrictedUnpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            # Protocol-2 pickles spell Python 2 names (`__builtin__.set`); map them as pickle does.
            module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
            qualified = f"{module}.{name}"
            if qualified in allowed:
                return allowed[qualified]
            if module.split(".")[0] in _MODEL_MODULES or module.startswith(_TORCH_MODULE_PREFIXES):
                return _stub_class(qualified)
            raise UserError(f"{path}: refusing to load global {qualified!r}: a legacy checkpoint may only hold "
                            f"tensors, plain containers and known model classes (the file may be unsafe)")

    def load(file, **kwargs: Any) -> Any:
        return RestrictedUnpickler(file, **kwargs).load()

    module = types.ModuleType("voxflow_restricted_pickle")
    module.Unpickler = RestrictedUnpickler
    module.load = load
    return module


def _refuse_torchscript(file: BinaryIO, path: Path) -> None:
    """`torch.load` hands a zip holding `constants.pkl` to `torch.jit.load`, which runs the archive's
    TorchScript (its `__setstate__` methods) whatever `pickle_module` says: refuse such files.
    The check reads the zip with the reader `torch.load` uses, so both see the same records."""
    try:
        records = torch._C.PyTorchFileReader(file).get_all_records()
    except Exception as error:  # a truncated or damaged zip
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(f"{path}: not a readable PyTorch checkpoint ({message})") from None
    finally:
        file.seek(0)
    if "constants.pkl" in records or any(record.startswith("code/") for record in records):
        raise UserError(f"{path}: a TorchScript archive (it holds code); refusing to load it. Only state dicts "
                        f"and NVIDIA's pickled checkpoints can be read (torch.jit.load it yourself if you trust it)")


class _NoDescriptor(io.BufferedReader):
    """A file without `fileno()`: `torch.load` then reads it through Python calls only, and never
    tries it as a torch 0.1 tar archive (whose members it would extract to disk before unpickling)."""

    def fileno(self) -> int:
        raise io.UnsupportedOperation("fileno")


def _load_pickle(path: Path) -> Any:
    if not path.is_file():
        raise UserError(f"{path}: no such checkpoint file" + (" (it is a folder)" if path.is_dir() else ""))
    with _NoDescriptor(io.FileIO(path, "rb")) as file:
        head = file.read(4)
        file.seek(0)
        # A torch >= 1.6 file is a zip; older ones (and raw pickles) start with a pickle PROTO opcode.
        if head[:4] != b"PK\x03\x04" and head[:1] != b"\x80":
            raise UserError(f"{path}: not a PyTorch .pt checkpoint (neither a zip nor a pickle file)")
        if head[:4] == b"PK\x03\x04":
            _refuse_torchscript(file, path)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # old pickles warn about source changes of stub classes
                # weights_only=False is required to pass a pickle_module; that module is the restriction.
                # The open file (not the path) is passed, so torch.load reads the bytes checked above.
                return torch.load(file, map_location="cpu", pickle_module=_restricted_pickle_module(path),
                                  weights_only=False)
        except UserError:
            raise
        except Exception as error:
            message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise UserError(f"{path}: not a readable PyTorch checkpoint ({message})") from None


def _is_plain(value: Any, depth: int = 0) -> bool:
    """bool/int/float/str/None, or lists, tuples and str-keyed dicts of them (a pickle may nest
    or even contain itself; past `_MAX_DEPTH` a value does not count as plain)."""
    if isinstance(value, (bool, int, float, str)) or value is None:
        return True
    if depth >= _MAX_DEPTH:
        return False
    if isinstance(value, (list, tuple)):
        return all(_is_plain(item, depth + 1) for item in value)
    if isinstance(value, dict):
        return all(isinstance(key, str) and _is_plain(item, depth + 1) for key, item in value.items())
    return False


def _named(mapping: Any) -> dict[str, Any]:
    """A pickled `_parameters` / `_buffers` / `_modules` as a str-keyed dict ({} if it is not a dict)."""
    return {str(key): value for key, value in mapping.items()} if isinstance(mapping, dict) else {}


def _walk(stub: _Stub, prefix: str, tensors: dict, classes: dict, attributes: dict, ancestors: list[int],
          budget: list[int]) -> None:
    """Collect a pickled module tree's tensors, classes and plain attributes under dotted names.

    A module may appear under two names (PyTorch allows shared submodules, and NVIDIA's Flowtron
    has them); it is walked under each, as `state_dict()` would. Only a module that contains
    itself is refused, and `budget` bounds the total walk against a pickle that shares modules
    to blow up exponentially."""
    budget[0] -= 1
    if id(stub) in ancestors or prefix.count(".") > _MAX_DEPTH or budget[0] < 0:
        raise ValueError(f"the pickled modules nest too deeply or contain themselves (at {prefix.rstrip('.')!r})")
    ancestors.append(id(stub))
    state = stub.__dict__
    classes[prefix.rstrip(".")] = type(stub).qualified_name
    for name, tensor in _named(state.get("_parameters")).items():
        if isinstance(tensor, torch.Tensor):
            tensors[prefix + name] = tensor.detach()
    non_persistent = state.get("_non_persistent_buffers_set")
    non_persistent = non_persistent if isinstance(non_persistent, (set, frozenset)) else set()
    for name, tensor in _named(state.get("_buffers")).items():
        if isinstance(tensor, torch.Tensor) and name not in non_persistent:
            tensors[prefix + name] = tensor.detach()
    for name, value in state.items():
        if not name.startswith("_") and name != "training" and _is_plain(value):
            attributes[prefix + name] = value
    for name, child in _named(state.get("_modules")).items():
        if isinstance(child, _Stub):
            _walk(child, f"{prefix}{name}.", tensors, classes, attributes, ancestors, budget)
    ancestors.pop()


def _check_storage(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """Refuse tensors that hold more than the file could: a shape claiming more elements than the
    storage (a stride-0 view of one value posing as a (10**9, 512) weight), or storages larger than
    the file (made by a pickled `torch.Tensor(n)` call). A model built from such shapes would not
    fit in memory; real checkpoints store every byte of their tensors."""
    storages: dict[int, int] = {}
    for key, tensor in tensors.items():
        if tensor.layout != torch.strided:
            raise UserError(f"{path}: tensor {key!r} has layout {tensor.layout}; expected a dense tensor")
        storage = tensor.untyped_storage()
        if tensor.numel() * tensor.element_size() > storage.nbytes():
            raise UserError(f"{path}: tensor {key!r} claims shape {tuple(tensor.shape)} but its storage holds only "
                            f"{storage.nbytes()} bytes (overlapping strides); the file is malformed")
        storages[storage.data_ptr()] = storage.nbytes()
    if sum(storages.values()) > path.stat().st_size:
        raise UserError(f"{path}: its tensors claim {sum(storages.values())} bytes, more than the file's "
                        f"{path.stat().st_size}; the file is malformed")


def _find_weights(obj: Any, path: Path) -> tuple[dict, _Stub | None]:
    if isinstance(obj, _Stub):
        return {}, obj
    if not isinstance(obj, dict):
        raise UserError(f"{path}: expected a dict or a pickled model, found {type(obj).__name__}")
    if isinstance(obj.get("model"), _Stub):
        return {}, obj["model"]
    for key in ("state_dict", "model"):
        if isinstance(obj.get(key), dict):
            return obj[key], None
    if obj and all(isinstance(value, torch.Tensor) for value in obj.values()):
        return obj, None
    raise UserError(f"{path}: no weights found (expected a state dict, or a dict with 'state_dict' or 'model'; "
                    f"found keys {', '.join(map(str, list(obj)[:8]))})")


def read_legacy_checkpoint(path: str | os.PathLike) -> LegacyCheckpoint:
    """Weights (NVIDIA key names, float32, CPU) plus plain metadata from an NVIDIA/DLE `.pt` file."""
    path = Path(path)
    obj = _load_pickle(path)
    weights, model = _find_weights(obj, path)
    tensors: dict[str, torch.Tensor] = {}
    classes: dict[str, str] = {}
    attributes: dict[str, Any] = {}
    try:
        if model is not None:
            _walk(model, "", tensors, classes, attributes, [], [_MAX_MODULES])
        else:
            tensors = {str(key): value for key, value in weights.items() if isinstance(value, torch.Tensor)}
        if not tensors:
            raise UserError(f"{path}: the checkpoint holds no tensors")
        _check_storage(path, tensors)
        metadata = {key: obj[key] for key in _METADATA_KEYS
                    if isinstance(obj, dict) and key in obj and _is_plain(obj[key])}
        state_dict = fuse_old_waveglow(_normalise_keys(tensors))
    except UserError:
        raise
    except (KeyError, IndexError, ValueError, TypeError, RuntimeError, AttributeError, RecursionError) as error:
        # A structure no NVIDIA file has: layers missing their bias, tensors that do not concatenate ...
        raise UserError(f"{path}: not a usable checkpoint ({type(error).__name__}: {str(error)[:300]})") from None
    return LegacyCheckpoint(state_dict, metadata, classes, attributes)


def read_legacy_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The flat state dict (NVIDIA key names) of an NVIDIA/DLE `.pt` file; nothing pickled is run."""
    return read_legacy_checkpoint(path).state_dict


def _normalise_keys(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # DLE strips "module.1." (a model wrapped at index 1 of a Sequential) and "module." (DDP);
    # "module.1." only when every key has it, so a DDP-wrapped Sequential keeps its index.
    prefixes = ("module.1.", "module.", "_orig_mod.") if all(key.startswith("module.1.") for key in tensors) \
        else ("module.", "_orig_mod.")
    normalised = {}
    for key, tensor in tensors.items():
        for prefix in prefixes:
            if key.startswith(prefix):
                key = key[len(prefix):]
        key = key.replace("parametrizations.weight.original0", "weight_g")
        key = key.replace("parametrizations.weight.original1", "weight_v")
        normalised[key] = tensor.float() if tensor.is_floating_point() else tensor
    return normalised


def _folded(tensors: dict[str, torch.Tensor], prefix: str) -> torch.Tensor:
    """The effective weight g · v / ‖v‖ (dim 0) of a layer, or its plain weight."""
    if prefix + "weight_v" not in tensors:
        return tensors[prefix + "weight"]
    g, v = tensors[prefix + "weight_g"], tensors[prefix + "weight_v"]
    return v * (g / v.norm(dim=tuple(range(1, v.dim())), keepdim=True))


def _concat_layers(tensors: dict, prefixes: list[str], target: str, out: dict) -> None:
    """Concatenate conv layers along the output dim. A dim-0 weight norm is per output row, so
    concatenating g and v commutes with it; mixed forms are folded first."""
    if all(p + "weight_v" in tensors and p + "weight_g" in tensors for p in prefixes):
        suffixes = ("weight_g", "weight_v")
        for suffix in suffixes:
            out[target + suffix] = torch.cat([tensors[p + suffix] for p in prefixes])
    else:
        out[target + "weight"] = torch.cat([_folded(tensors, p) for p in prefixes])
    out[target + "bias"] = torch.cat([tensors[p + "bias"] for p in prefixes])


def fuse_old_waveglow(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Convert pre-2019 WaveGlow layouts to `glow.py`'s (NVIDIA `convert_model.py`, §5.6).

    Per-layer `WN.k.cond_layers.i` become one `WN.k.cond_layer` (concatenated in layer order);
    `WN.k.res_layers.i` + `WN.k.skip_layers.i` become `WN.k.res_skip_layers.i` (residual rows
    first; the last layer has only its skip rows). Other keys pass through.
    """
    pattern = re.compile(r"^WN\.(\d+)\.(cond_layers|res_layers|skip_layers)\.(\d+)\.")
    found: dict[tuple[str, str], set[int]] = {}
    for key in tensors:
        match = pattern.match(key)
        if match:
            found.setdefault((match[1], match[2]), set()).add(int(match[3]))
    if not found:
        return tensors
    out = {key: tensor for key, tensor in tensors.items() if not pattern.match(key)}
    for (flow, kind), layers in sorted(found.items()):
        if kind == "cond_layers":
            _concat_layers(tensors, [f"WN.{flow}.cond_layers.{i}." for i in sorted(layers)],
                           f"WN.{flow}.cond_layer.", out)
        elif kind == "skip_layers":
            residual = found.get((flow, "res_layers"), set())
            for i in sorted(layers):
                parts = ([f"WN.{flow}.res_layers.{i}."] if i in residual else []) + [f"WN.{flow}.skip_layers.{i}."]
                _concat_layers(tensors, parts, f"WN.{flow}.res_skip_layers.{i}.", out)
    return out
