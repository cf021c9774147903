"""The checkpoint format: round trip, atomic writes, and clear errors for malformed files."""

from __future__ import annotations

import json
import os

import pytest
import torch
from safetensors.torch import save_file

from tts.checkpoint import atomic_write, is_safetensors, read_checkpoint, save_checkpoint
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
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, crash)
    assert read_checkpoint(target).state_dict["w"].tolist() == [1.0, 1.0]
    assert sorted(os.listdir(tmp_path)) == ["ckpt.safetensors"]


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
