"""Hostile and damaged files through every way users load one: a clear UserError, nothing run.

The entry points: `tts.load_model` / `tts.loading.read_model`, `vocoders.load_vocoder`,
`Synthesizer.from_pretrained` (as the model and as the vocoder), `voxflow convert`, and a training
run's warm start. Every refusal must be a voxflow `UserError` whose message names the file and
says what was wrong; pickled payloads must not run (the marker file they would create stays
absent) and TorchScript must not run either (the RNG seed its `__setstate__` sets stays unset).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import re
import struct
import subprocess
import sys
import tempfile
import types
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

import tts
import vocoders
from tts import Synthesizer
from tts.cli import main
from tts.config import Config
from tts.errors import UserError
from tts.loading import read_model, save_model
from tts.models.tacotron2 import (AttentionConfig, DecoderConfig, EncoderConfig, PostnetConfig, Tacotron2,
                                  Tacotron2Config)
from tts.train.config import TrainConfig
from tts.train.engine import Trainer
from tts.train.task import Task, TaskData
from vocoders.waveglow import WaveGlow, WaveGlowConfig

MICRO = Tacotron2Config(encoder=EncoderConfig(embedding_dim=16, n_convolutions=1, kernel_size=3),
                        attention=AttentionConfig(rnn_dim=16, attention_dim=8, location_n_filters=4,
                                                  location_kernel_size=3),
                        decoder=DecoderConfig(rnn_dim=16, prenet_dim=8),
                        postnet=PostnetConfig(channels=8, n_convolutions=2, kernel_size=3))
MICRO_WAVEGLOW = WaveGlowConfig(n_flows=2, n_early_every=4, wn_layers=1, wn_channels=4, upsample_kernel_size=256)


class _Seeding(nn.Module):
    """Scripted, this saves as a TorchScript archive whose `__setstate__` runs at load time."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight

    @torch.jit.export
    def __getstate__(self) -> tuple[torch.Tensor, bool]:
        return (self.weight, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[torch.Tensor, bool]) -> None:
        torch.manual_seed(4321)  # the visible side effect of code running
        self.weight = state[0]
        self.training = state[1]


@pytest.fixture(scope="module")
def valid(tmp_path_factory) -> types.SimpleNamespace:
    """Good files that the hostile ones are made from (and the model beside a hostile vocoder)."""
    folder = tmp_path_factory.mktemp("valid")
    torch.manual_seed(0)
    model = save_model(folder / "model.safetensors", Tacotron2(MICRO))
    vocoder = vocoders.save_vocoder(folder / "vocoder.safetensors", WaveGlow(MICRO_WAVEGLOW))
    torchscript = folder / "torchscript.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated, not gone from files
        torch.jit.save(torch.jit.script(_Seeding()), str(torchscript))
    return types.SimpleNamespace(model=model, vocoder=vocoder, torchscript=torchscript)


# -- the entry points ----------------------------------------------------------------------------

class _TinyTask(Task):
    kind = "tiny"

    @classmethod
    def preset(cls, name):
        return Config(), TrainConfig()

    def build_model(self) -> nn.Module:
        return nn.Linear(4, 1)

    def build_data(self, data, cache_dir, validation_size, seed) -> TaskData:
        pairs = [(torch.zeros(4), torch.zeros(1))] * 4
        return TaskData(pairs, [], lambda items: items, [1] * 4)

    def compute_loss(self, model, batch):
        raise AssertionError("a warm start that fails never trains")


def _convert(path: Path, valid) -> None:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["convert", str(path), "-o", str(path.parent / "converted.safetensors")])
    lines = err.getvalue().splitlines()
    # One line on stderr, no traceback: the CLI's contract for user mistakes.
    assert code == 1 and len(lines) == 1 and lines[0].startswith("voxflow convert: error: "), err.getvalue()
    assert not (path.parent / "converted.safetensors").exists()
    raise UserError(lines[0])


def _warm_start(path: Path, valid) -> None:
    run = Path(tempfile.mkdtemp(dir=path.parent)) / "run"
    Trainer(_TinyTask(Config()), TrainConfig(batch_size=2, val_size=0), run, run.parent, warm_start_from=path,
            progress_bar=False)


MODEL_LOADERS = {
    "read_model": lambda path, valid: read_model(path),
    "tts.load_model": lambda path, valid: tts.load_model(path),
    "from_pretrained": lambda path, valid: Synthesizer.from_pretrained(path),
    "convert": _convert,
}
VOCODER_LOADERS = {
    "load_vocoder": lambda path, valid: vocoders.load_vocoder(path),
    "from_pretrained(vocoder=)": lambda path, valid: Synthesizer.from_pretrained(valid.model, vocoder=path),
    "convert": _convert,
}
EVERY_LOADER = {**MODEL_LOADERS, "load_vocoder": VOCODER_LOADERS["load_vocoder"],
                "from_pretrained(vocoder=)": VOCODER_LOADERS["from_pretrained(vocoder=)"], "warm_start": _warm_start}


def _refused(load, path: Path, valid, expected: str) -> str:
    with pytest.raises(UserError) as caught:
        load(path, valid)
    message = str(caught.value)
    assert str(path) in message, message  # names the file ...
    assert re.search(expected, message), message  # ... and what is wrong with it
    return message


# -- pickles that run code -------------------------------------------------------------------------

class _Call:
    """Pickles as `function(*args)`, run by a plain unpickler: what an attacker's file holds."""

    def __init__(self, function, *args) -> None:
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


def _raw_call(module: str, name: str, *args: str) -> bytes:
    """A protocol-2 pickle of GLOBAL module.name called with string args (any spelling of a global)."""
    strings = b"".join(b"X" + struct.pack("<I", len(arg.encode())) + arg.encode() for arg in args)
    return b"\x80\x02c" + f"{module}\n{name}\n".encode() + b"(" + strings + b"tR."


def _touch(marker: Path) -> str:
    return f"open({str(marker)!r}, 'w').close()"


PAYLOADS = {
    # id: (how it is written, the payload given the marker path, the global the error must name)
    "os.system zip": ("zip", lambda m: _Call(os.system, f"touch {m}"), r"'(posix|os)\.system'"),
    "os.system legacy": ("legacy", lambda m: _Call(os.system, f"touch {m}"), r"'(posix|os)\.system'"),
    "eval zip": ("zip", lambda m: _Call(eval, _touch(m)), r"'builtins\.eval'"),
    "exec legacy": ("legacy", lambda m: _Call(exec, _touch(m)), r"'builtins\.exec'"),
    "subprocess.Popen zip": ("zip", lambda m: _Call(subprocess.Popen, ["touch", str(m)]), r"'subprocess\.Popen'"),
    "os.system raw": ("raw", lambda m: _raw_call("os", "system", f"touch {m}"), r"'os\.system'"),
    "posix.system raw": ("raw", lambda m: _raw_call("posix", "system", f"touch {m}"), r"'posix\.system'"),
    "__builtin__.eval raw": ("raw", lambda m: _raw_call("__builtin__", "eval", _touch(m)), r"'builtins\.eval'"),
    "unknown module": ("raw", lambda m: _raw_call("nonexistent_mod", "Thing", "x"), r"'nonexistent_mod\.Thing'"),
}


def _write_payload(path: Path, how: str, payload) -> None:
    if how == "raw":
        path.write_bytes(payload)
    else:  # hidden where a loader looks for weights, beside real tensors
        torch.save({"state_dict": {"embedding.weight": torch.zeros(2), "hook": payload}, "iteration": 1}, path,
                   _use_new_zipfile_serialization=how == "zip")


@pytest.mark.parametrize("loader", EVERY_LOADER)
@pytest.mark.parametrize("payload", PAYLOADS)
def test_pickled_code_is_refused_and_never_runs(tmp_path, valid, loader, payload):
    how, make, refused_global = PAYLOADS[payload]
    marker, path = tmp_path / "pwned", tmp_path / "evil.pt"
    _write_payload(path, how, make(marker))
    _refused(EVERY_LOADER[loader], path, valid, rf"refusing to load global {refused_global}")
    assert not marker.exists()
    assert "nonexistent_mod" not in sys.modules


@pytest.mark.parametrize("loader", EVERY_LOADER)
def test_torchscript_archives_are_refused_before_their_code_runs(tmp_path, valid, loader):
    torch.manual_seed(1)
    _refused(EVERY_LOADER[loader], valid.torchscript, valid, "a TorchScript archive .*refusing to load it")
    assert torch.initial_seed() != 4321  # its __setstate__ (torch.manual_seed(4321)) did not run


def _stride_zero(path: Path) -> None:
    # One stored float posing as a 10^10-element weight: a model built from it would not fit in memory.
    torch.save({"state_dict": {"embedding.weight": torch.zeros(1).expand(10**5, 10**5)}}, path)


def _constructed(path: Path) -> None:
    # torch.Tensor(n) is an allowed global (tensors rebuild through it): 40 MB from a file of 1 KB.
    torch.save({"state_dict": {"embedding.weight": _Call(torch.Tensor, 10**7)}}, path)


def _other_codec(path: Path) -> None:
    # `_codecs.encode` spells bytes in protocol-2 pickles; any other codec than latin1 is refused.
    path.write_bytes(_raw_call("_codecs", "encode", "payload", "rot13"))


def _stub_only(path: Path, marker: Path) -> None:
    # NVIDIA's model modules resolve to inert stubs: calling `glow.WaveGlow(...)` runs nothing. A
    # stand-in `glow` module exists only while the file is written, so the pickle can name it.
    glow = types.ModuleType("glow")
    glow.WaveGlow = type("WaveGlow", (), {"__module__": "glow"})
    sys.modules["glow"] = glow
    try:
        torch.save({"model": _Call(glow.WaveGlow, f"touch {marker}"), "iteration": 1}, path)
    finally:
        del sys.modules["glow"]


@pytest.mark.parametrize("loader", EVERY_LOADER)
@pytest.mark.parametrize("make, expected", [
    (_stride_zero, r"claims shape \(100000, 100000\) but its storage holds only 4 bytes"),
    (_constructed, r"its tensors claim 40000000 bytes, more than the file's \d+"),
    (_other_codec, r"refusing _codecs\.encode with encoding 'rot13'"),
    (_stub_only, r"holds no tensors|no weights found"),
], ids=["stride 0", "torch.Tensor(n)", "rot13 codec", "glow stub"])
def test_allowed_globals_cannot_be_turned_against_the_loader(tmp_path, valid, loader, make, expected):
    path, marker = tmp_path / "crafted.pt", tmp_path / "pwned"
    make(path, marker) if make is _stub_only else make(path)
    _refused(EVERY_LOADER[loader], path, valid, expected)
    assert not marker.exists() and "glow" not in sys.modules


# -- damaged files -------------------------------------------------------------------------------

def _truncated(source: Path, path: Path) -> None:
    data = source.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def _safetensors_header(path: Path, header: dict, data: bytes = b"\x00" * 16, length: int | None = None) -> None:
    encoded = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(encoded) if length is None else length) + encoded + data)


def _pt_zip(path: Path) -> None:
    torch.save({"state_dict": {"weight": torch.randn(256)}}, path)


def _pt_legacy(path: Path) -> None:
    torch.save({"state_dict": {"weight": torch.randn(256)}}, path, _use_new_zipfile_serialization=False)


def _noise(path: Path, head: bytes, seed: int) -> None:
    path.write_bytes(head + random.Random(seed).randbytes(4096))


def _tensor_entry(shape: list[int], start: int, end: int) -> dict:
    return {"dtype": "F32", "shape": shape, "data_offsets": [start, end]}


DAMAGED = {
    # id: (file name, how it is made from the valid files, what the error must say)
    "truncated safetensors": ("cut.safetensors", lambda p, v: _truncated(v.model, p),
                              "not a readable safetensors file"),
    "truncated zip .pt": ("cut.pt", lambda p, v: (_pt_zip(p), _truncated(p, p)), "not a readable PyTorch checkpoint"),
    "truncated legacy .pt": ("cut.pt", lambda p, v: (_pt_legacy(p), _truncated(p, p)),
                             "not a readable PyTorch checkpoint"),
    "empty file": ("empty.pt", lambda p, v: p.write_bytes(b""), r"not a PyTorch \.pt checkpoint"),
    "a folder": ("folder.pt", lambda p, v: p.mkdir(), r"no such (\w+ )?file"),
    "random bytes": ("noise.bin", lambda p, v: _noise(p, b"", 0), r"not a PyTorch \.pt checkpoint"),
    "random bytes after a zip head": ("noise.pt", lambda p, v: _noise(p, b"PK\x03\x04", 1),
                                      "not a readable PyTorch checkpoint"),
    "random bytes after a pickle head": ("noise.pt", lambda p, v: _noise(p, b"\x80\x02", 2),
                                         "not a readable PyTorch checkpoint"),
    "enormous tensor sizes": ("huge.safetensors", lambda p, v: _safetensors_header(
        p, {"w": _tensor_entry([10**12], 0, 4 * 10**12)}), "not a readable safetensors file .*incomplete metadata"),
    "overlapping offsets": ("overlap.safetensors", lambda p, v: _safetensors_header(
        p, {"a": _tensor_entry([2], 0, 8), "b": _tensor_entry([2], 4, 12)}),
        "not a readable safetensors file .*offset"),
    "shape beyond its bytes": ("short.safetensors", lambda p, v: _safetensors_header(
        p, {"a": _tensor_entry([2**62, 2**62], 0, 16)}), "not a readable safetensors file .*overflow"),
    "header longer than the file": ("long.safetensors", lambda p, v: _safetensors_header(p, {}, length=10**6),
                                    "not a readable safetensors file"),
    "metadata that is not strings": ("meta.safetensors", lambda p, v: _safetensors_header(
        p, {"__metadata__": {"config": {"n_speakers": 1}}, "a": _tensor_entry([4], 0, 16)}),
        "not a readable safetensors file .*invalid JSON in header"),
}


@pytest.mark.parametrize("loader", EVERY_LOADER)
@pytest.mark.parametrize("damage", DAMAGED)
def test_damaged_files_are_clear_errors(tmp_path, valid, loader, damage):
    name, make, expected = DAMAGED[damage]
    path = tmp_path / name
    make(path, valid)
    _refused(EVERY_LOADER[loader], path, valid, expected)


# -- safetensors files with bad metadata or tensors that do not fit ------------------------------

def _rewrite(source: Path, path: Path, metadata: dict[str, str] | None = None, drop: tuple[str, ...] = (),
             change: dict[str, torch.Tensor] | None = None, config: dict | None = None) -> None:
    """`source` with metadata entries, tensors (added, replaced, dropped) or its config changed;
    `metadata={}` writes no metadata at all."""
    from safetensors import safe_open

    with safe_open(str(source), framework="pt") as file:
        tensors = {key: file.get_tensor(key) for key in file.keys() if key not in drop}
        original = file.metadata()
    tensors.update(change or {})
    if config is not None:
        original["config"] = json.dumps(config)
    save_file(tensors, str(path), metadata=None if metadata == {} else {**original, **(metadata or {})})


def _config(source: Path) -> dict:
    from safetensors import safe_open

    with safe_open(str(source), framework="pt") as file:
        return json.loads(file.metadata()["config"])


def _with(config: dict, dotted: str, value) -> dict:
    config = json.loads(json.dumps(config))
    node = config
    *parents, leaf = dotted.split(".")
    for key in parents:
        node = node[key]
    node[leaf] = value
    return config


def _bad_files(kind: str) -> dict:
    """id → (how to make it from the valid file of `kind`, what the error must say)."""
    other = "vocoder" if kind == "model" else "model"
    first = "embedding.weight" if kind == "model" else "upsample.weight"
    return {
        "no metadata": (lambda v, p: _rewrite(getattr(v, kind), p, metadata={}),
                        r"not a voxflow checkpoint \(its metadata lacks format_version, kind, config\)"),
        "config not JSON": (lambda v, p: _rewrite(getattr(v, kind), p, metadata={"config": "{'n_speakers': 1"}),
                            "config metadata is not valid JSON"),
        "config a JSON list": (lambda v, p: _rewrite(getattr(v, kind), p, metadata={"config": "[1, 2]"}),
                               "config metadata is not a JSON object"),
        "config of another kind": (lambda v, p: _rewrite(getattr(v, kind), p, config=_config(getattr(v, other))),
                                   "unknown config key"),
        "a field of the wrong type": (lambda v, p: _rewrite(getattr(v, kind), p, config=_with(
            _config(getattr(v, kind)), "audio.n_mels", "eighty")), r"audio\.n_mels: expected int, found str"),
        "unknown kind": (lambda v, p: _rewrite(getattr(v, kind), p, metadata={"kind": "resnet"}), "'resnet'"),
        "future format": (lambda v, p: _rewrite(getattr(v, kind), p, metadata={"format_version": "7"}),
                          "format 7 is not supported"),
        "a missing tensor": (lambda v, p: _rewrite(getattr(v, kind), p, drop=(first,)), rf"missing {first}"),
        "an extra tensor": (lambda v, p: _rewrite(getattr(v, kind), p, change={"extra.weight": torch.zeros(3)}),
                            r"unexpected extra\.weight"),
        "a wrong shape": (lambda v, p: _rewrite(getattr(v, kind), p, change={first: torch.zeros(3, 5)}),
                          rf"{re.escape(first)} expected \(\d+, \d+(, \d+)?\), found \(3, 5\)"),
        "config wider than the weights": (lambda v, p: _rewrite(getattr(v, kind), p, config=_with(
            _config(getattr(v, kind)), *(("encoder.embedding_dim", 512) if kind == "model" else ("wn_channels", 512)))),
                                          r"wrong shapes: .*expected \(.*512.*\), found"),
        "integers for weights": (lambda v, p: _rewrite(getattr(v, kind), p, change={
            first: torch.zeros(_shape(getattr(v, kind), first), dtype=torch.int64)}),
                                 rf"{re.escape(first)} expected a floating-point tensor, found torch.int64"),
    }


def _shape(source: Path, key: str) -> tuple[int, ...]:
    from safetensors import safe_open

    with safe_open(str(source), framework="pt") as file:
        return tuple(file.get_slice(key).get_shape())


MODEL_FILES, VOCODER_FILES = _bad_files("model"), _bad_files("vocoder")


@pytest.mark.parametrize("loader", MODEL_LOADERS)
@pytest.mark.parametrize("bad", MODEL_FILES)
def test_model_files_with_bad_metadata_or_tensors(tmp_path, valid, loader, bad):
    make, expected = MODEL_FILES[bad]
    path = tmp_path / "bad.safetensors"
    make(valid, path)
    _refused(MODEL_LOADERS[loader], path, valid, expected)


@pytest.mark.parametrize("loader", VOCODER_LOADERS)
@pytest.mark.parametrize("bad", VOCODER_FILES)
def test_vocoder_files_with_bad_metadata_or_tensors(tmp_path, valid, loader, bad):
    make, expected = VOCODER_FILES[bad]
    path = tmp_path / "bad.safetensors"
    make(valid, path)
    _refused(VOCODER_LOADERS[loader], path, valid, expected)


def test_speaker_names_must_be_a_list_of_names(tmp_path, valid):
    path = tmp_path / "speakers.safetensors"
    _rewrite(valid.model, path, metadata={"speakers": '{"rms": 0}'})
    _refused(MODEL_LOADERS["read_model"], path, valid, "speakers metadata: expected a JSON list of names")


def test_warm_start_names_the_file_whose_tensors_do_not_fit(tmp_path, valid):
    _refused(_warm_start, valid.model, valid, r"cannot warm start from .*keys the model does not have")
