"""The checkpoint format: round trip, atomic writes, and clear errors for malformed files."""

from __future__ import annotations

import errno
import json
import os

import pytest
import torch
from safetensors import SafetensorError
from safetensors.torch import save_file

from tts.checkpoint import (atomic_write, build_model, is_safetensors, naming_file, read_checkpoint, save_checkpoint,
                            write_failure)
from tts.errors import UserError


def test_round_trip_keeps_tensors_kind_config_and_symbols(tmp_path):
    weight = torch.randn(4, 3)
    state = {"layer.weight": weight, "layer.view": weight[:2]}  # shared storage must still save
    path = save_checkpoint(tmp_path / "m.safetensors", state, "tacotron2", {"dims": [1, 2]}, symbols=["_", "a"])
    checkpoint = read_checkpoint(path)
    assert checkpoint.kind == "tacotron2" and checkpoint.config == {"dims": [1, 2]}
    assert json.loads(checkpoint.metadata["symbols"]) == ["_", "a"]
    torch.testing.assert_close(checkpoint.state_dict["layer.weight"], weight)
    torch.testing.assert_close(checkpoint.state_dict["layer.view"], weight[:2])
    assert is_safetensors(path)
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # no temp files left behind


def test_a_failed_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "ckpt.safetensors"
    save_checkpoint(target, {"w": torch.ones(2)}, "waveglow", {})

    def crash(temporary):
        with open(temporary, "wb") as file:
            file.write(b"half a file")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), temporary)

    with pytest.raises(UserError, match=r"ckpt\.safetensors: cannot write it \(no space left on device\); "
                                        r"the previous file, if any, is unchanged") as caught:
        atomic_write(target, crash)
    assert isinstance(caught.value.__cause__, OSError) and caught.value.__cause__.errno == errno.ENOSPC
    assert read_checkpoint(target).state_dict["w"].tolist() == [1.0, 1.0]
    assert sorted(os.listdir(tmp_path)) == ["ckpt.safetensors"]


def test_written_files_get_the_umask_mode_not_the_temp_files_private_one(tmp_path):
    previous = os.umask(0o027)
    try:
        path = save_checkpoint(tmp_path / "shared.safetensors", {"w": torch.ones(2)}, "waveglow", {})
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == 0o640  # a shipped voice must be readable by its users


def test_a_full_disk_inside_safetensors_is_a_clear_error(tmp_path, monkeypatch):
    # safetensors reports its own write failures as SafetensorError, not OSError (measured on a
    # full 64 KiB tmpfs: "Error while serializing: I/O error: No space left on device (os error 28)").
    def full(tensors, path, metadata=None):
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr("tts.checkpoint.save_file", full)
    with pytest.raises(UserError, match=r"new\.safetensors: cannot write it \(no space left on device\)"):
        save_checkpoint(tmp_path / "sub" / "new.safetensors", {"w": torch.ones(2)}, "waveglow", {})
    assert os.listdir(tmp_path / "sub") == []


def test_errors_that_are_not_io_failures_pass_through(tmp_path):
    def bug(temporary):
        raise ValueError("a bug, not the disk")

    with pytest.raises(ValueError, match="a bug"):
        atomic_write(tmp_path / "x.bin", bug)
    assert os.listdir(tmp_path) == []
    assert write_failure(SafetensorError("Error while serializing: non contiguous tensor")) is None
    assert write_failure(PermissionError(errno.EACCES, "Permission denied")) == "permission denied"


def test_malformed_files_are_clear_user_errors(tmp_path):
    with pytest.raises(UserError, match="no such checkpoint"):
        read_checkpoint(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(UserError, match="junk.safetensors: not a readable safetensors file"):
        read_checkpoint(junk)
    assert not is_safetensors(junk)
    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.ones(1)}, str(plain))
    with pytest.raises(UserError, match="not a voxflow checkpoint"):
        read_checkpoint(plain)
    bad_json = tmp_path / "bad.safetensors"
    save_file({"w": torch.ones(1)}, str(bad_json), metadata={"format_version": "1", "kind": "x", "config": "{"})
    with pytest.raises(UserError, match="not valid JSON"):
        read_checkpoint(bad_json)
    future = tmp_path / "future.safetensors"
    save_file({"w": torch.ones(1)}, str(future), metadata={"format_version": "9", "kind": "x", "config": "{}"})
    with pytest.raises(UserError, match="format 9 is not supported"):
        read_checkpoint(future)


def test_build_model_checks_tensors_on_the_meta_device_first(tmp_path):
    devices = []

    def build():
        devices.append(torch.empty(0).device.type)  # where this build allocates
        return torch.nn.Linear(3, 2)

    weights = {"weight": torch.ones(2, 3), "bias": torch.zeros(2)}
    model = build_model(tmp_path / "ok.safetensors", build, weights)
    assert devices == ["meta", "cpu"] and torch.equal(model.weight, weights["weight"])
    devices.clear()
    wide = {"weight": torch.ones(2, 4), "bias": torch.zeros(2), "extra": torch.zeros(1)}
    with pytest.raises(UserError, match=r"bad\.safetensors: its tensors do not fit the layer its config describes: "
                                        r"unexpected extra \| wrong shapes: weight expected \(2, 3\), found \(2, 4\)"):
        build_model(tmp_path / "bad.safetensors", build, wide, "layer")
    assert devices == ["meta"]  # refused before the real model was allocated
    with pytest.raises(UserError, match=r"missing bias \| .*weight expected a floating-point tensor, found "
                                        r"torch.int64"):
        build_model(tmp_path / "int.safetensors", build, {"weight": torch.ones(2, 3, dtype=torch.int64)})


class _Renamed(torch.nn.Linear):
    """A layer whose load hook accepts an older key name, like WaveGlow's folded weight norm."""

    def _load_from_state_dict(self, state_dict, prefix, *args) -> None:
        if prefix + "old_weight" in state_dict:
            state_dict[prefix + "weight"] = state_dict.pop(prefix + "old_weight")
        super()._load_from_state_dict(state_dict, prefix, *args)


def test_build_model_accepts_layouts_the_model_converts_but_still_checks_them(tmp_path):
    model = build_model(tmp_path / "old.safetensors", lambda: _Renamed(3, 2),
                        {"old_weight": torch.ones(2, 3), "bias": torch.zeros(2)})
    assert torch.equal(model.weight, torch.ones(2, 3))
    with pytest.raises(UserError, match=r"old\.safetensors: .*missing weight"):
        build_model(tmp_path / "old.safetensors", lambda: _Renamed(3, 2),
                    {"old_weight": torch.ones(2, 5), "bias": torch.zeros(2)})
    with pytest.raises(UserError, match=r"weight expected a floating-point tensor, found torch.int64"):
        build_model(tmp_path / "old.safetensors", lambda: _Renamed(3, 2),
                    {"old_weight": torch.ones(2, 3, dtype=torch.int64), "bias": torch.zeros(2)})


def test_naming_file_adds_the_file_to_errors_from_inside(tmp_path):
    from tts.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^.*m\.safetensors: unknown config key width$"):
        with naming_file(tmp_path / "m.safetensors"):
            raise ConfigError("unknown config key width")
    with pytest.raises(UserError, match=r"m\.safetensors: not a usable WaveGlow \(KeyError: 'upsample.weight'\)"):
        with naming_file(tmp_path / "m.safetensors", "WaveGlow"):
            {}["upsample.weight"]
    with pytest.raises(ZeroDivisionError):  # a bug is not the file's fault
        with naming_file(tmp_path / "m.safetensors"):
            1 / 0
