"""The restricted legacy reader: NVIDIA's .pt forms load; pickled code is refused, never run."""

from __future__ import annotations

import os
import pickle
import sys
import types
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tts.errors import UserError
from tts.legacy import fuse_old_waveglow, read_legacy_checkpoint, read_legacy_state_dict

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


def _golden_weights() -> dict[str, torch.Tensor]:
    data = load_file(GOLDEN / "waveglow_tiny_nvidia.safetensors")
    return {key[len("weights."):]: value for key, value in data.items() if key.startswith("weights.")}


def _assert_same(found: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert sorted(found) == sorted(expected)
    for key, tensor in expected.items():
        torch.testing.assert_close(found[key], tensor, atol=0, rtol=0, msg=key)


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv1d(3, 4, 3), torch.nn.BatchNorm1d(4), torch.nn.Linear(5, 2))


def test_plain_state_dict(tmp_path):
    state = _model().state_dict()
    torch.save(state, tmp_path / "plain.pt")
    _assert_same(read_legacy_state_dict(tmp_path / "plain.pt"), dict(state))


def test_training_checkpoint_with_metadata(tmp_path):
    model = _model()
    optimizer = torch.optim.Adam(model.parameters())
    torch.save({"state_dict": model.state_dict(), "optimizer": optimizer.state_dict(), "iteration": 1200,
                "learning_rate": 1e-3}, tmp_path / "checkpoint_1200")
    checkpoint = read_legacy_checkpoint(tmp_path / "checkpoint_1200")
    _assert_same(checkpoint.state_dict, dict(model.state_dict()))
    assert checkpoint.metadata == {"iteration": 1200, "learning_rate": 1e-3}
    assert checkpoint.model_class is None


def test_module_prefixes_are_stripped_and_half_tensors_cast(tmp_path):
    state = _model().state_dict()  # a Sequential: keys "0.weight", "1.running_mean", ...
    prefixed = OrderedDict((f"module.{key}", value.half() if value.is_floating_point() else value)
                           for key, value in state.items())
    torch.save({"state_dict": prefixed, "config": {"n_mel_channels": 80}, "epoch": 3}, tmp_path / "dle.pt")
    checkpoint = read_legacy_checkpoint(tmp_path / "dle.pt")
    assert sorted(checkpoint.state_dict) == sorted(state)
    assert checkpoint.state_dict["0.weight"].dtype == torch.float32
    assert checkpoint.metadata == {"config": {"n_mel_channels": 80}, "epoch": 3}
    # DLE's "module.1." (model at index 1 of a wrapper Sequential) goes only when every key has it.
    torch.save({"module.1.decoder.weight": torch.ones(2), "module.1.decoder.bias": torch.zeros(2)}, tmp_path / "w.pt")
    assert sorted(read_legacy_state_dict(tmp_path / "w.pt")) == ["decoder.bias", "decoder.weight"]


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_pickled_code_is_refused_without_running(tmp_path, writer):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    if writer == "torch.save":
        torch.save({"state_dict": {"weight": torch.zeros(2)}, "hook": _Exploit(marker)}, path)
    else:  # a bare pickle: torch.load reads its first object as the legacy format's magic number
        with open(path, "wb") as file:
            pickle.dump({"iteration": 1, "hook": _Exploit(marker)}, file, protocol=2)
    with pytest.raises(UserError, match=r"evil\.pt: refusing to load global '(posix|os)\.system'"):
        read_legacy_state_dict(path)
    assert not marker.exists()


def test_nvidia_whole_model_pickle_is_read_through_stubs():
    # Made by torch.save({'model': glow.WaveGlow(...), 'iteration': 7}) with NVIDIA's glow.py (README).
    checkpoint = read_legacy_checkpoint(GOLDEN / "waveglow_tiny_nvidia_model.pt")
    _assert_same(checkpoint.state_dict, _golden_weights())
    assert checkpoint.model_class == "glow.WaveGlow"
    assert checkpoint.classes["WN.0"] == "glow.WN" and checkpoint.classes["WN.0.start"].endswith("Conv1d")
    assert checkpoint.attributes["n_flows"] == 6 and checkpoint.attributes["upsample.stride"] == (256,)
    assert checkpoint.metadata == {"iteration": 7}
    assert "glow" not in sys.modules


@pytest.mark.filterwarnings("ignore:.*weight_norm.*is deprecated:FutureWarning")
@pytest.mark.parametrize("zip_format", [True, False])
def test_pickled_torch_modules_with_weight_norm(tmp_path, zip_format):
    conv = torch.nn.utils.weight_norm(torch.nn.Conv1d(3, 4, 1))
    # zip_format=False is the pre-1.6 layout of NVIDIA's 2018-2019 files.
    torch.save({"model": torch.nn.Sequential(conv)}, tmp_path / "module.pt", _use_new_zipfile_serialization=zip_format)
    state = read_legacy_state_dict(tmp_path / "module.pt")
    assert sorted(state) == ["0.bias", "0.weight_g", "0.weight_v"]
    torch.testing.assert_close(state["0.weight_v"], conv.weight_v.detach())


def test_parametrized_weight_norm_keys_are_renamed(tmp_path):
    conv = torch.nn.utils.parametrizations.weight_norm(torch.nn.Conv1d(3, 4, 1))
    torch.save(conv.state_dict(), tmp_path / "new_style.pt")
    assert sorted(read_legacy_state_dict(tmp_path / "new_style.pt")) == ["bias", "weight_g", "weight_v"]


def _split_rows(weights: dict, fused: str, parts: list[str], sizes: list[int]) -> dict:
    """Undo a fusion: split `fused`'s tensors along dim 0 into `parts` (how old files stored them)."""
    out = {key: value for key, value in weights.items() if not key.startswith(fused)}
    for suffix in ("weight_g", "weight_v", "bias"):
        for part, piece in zip(parts, torch.split(weights[fused + suffix], sizes)):
            out[part + suffix] = piece.clone()
    return out


@pytest.mark.parametrize("folded", [False, True])
def test_old_waveglow_layouts_are_fused(tmp_path, folded):
    weights = _golden_weights()
    old = dict(weights)
    for flow in range(6):  # per-layer cond_layers (pre-Aug-2019) and separate res/skip (pre-Nov-2018)
        old = _split_rows(old, f"WN.{flow}.cond_layer.", [f"WN.{flow}.cond_layers.{i}." for i in range(3)], [16] * 3)
        for i in range(2):
            old = _split_rows(old, f"WN.{flow}.res_skip_layers.{i}.",
                              [f"WN.{flow}.res_layers.{i}.", f"WN.{flow}.skip_layers.{i}."], [8, 8])
        old = {key.replace(f"WN.{flow}.res_skip_layers.2.", f"WN.{flow}.skip_layers.2."): value
               for key, value in old.items()}
    if folded:  # as after remove_weightnorm: the fused weight equals the fused g · v / ‖v‖
        for key in [key for key in old if key.endswith("weight_v")]:
            g, v = old.pop(key[:-1] + "g"), old.pop(key)
            old[key[:-2]] = v * (g / v.norm(dim=(1, 2), keepdim=True))
    torch.save({"state_dict": old}, tmp_path / "old.pt")
    fused = read_legacy_state_dict(tmp_path / "old.pt")
    assert sorted(fused) == sorted(fused_keys := fuse_old_waveglow(old)) and set(fused) == set(fused_keys)
    if not folded:
        _assert_same(fused, weights)
    else:
        v, g = weights["WN.3.cond_layer.weight_v"], weights["WN.3.cond_layer.weight_g"]
        torch.testing.assert_close(fused["WN.3.cond_layer.weight"], v * (g / v.norm(dim=(1, 2), keepdim=True)))
        assert fused["WN.3.res_skip_layers.1.weight"].shape == (16, 8, 1)


def test_files_that_are_not_pt_checkpoints(tmp_path):
    with pytest.raises(UserError, match="no such checkpoint file"):
        read_legacy_state_dict(tmp_path / "missing.pt")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(UserError, match="not a PyTorch .pt checkpoint"):
        read_legacy_state_dict(tmp_path / "notes.txt")
    with pytest.raises(UserError, match="not a PyTorch .pt checkpoint"):
        read_legacy_state_dict(GOLDEN / "waveglow_tiny_nvidia.safetensors")
    with open(tmp_path / "list.pt", "wb") as file:
        pickle.dump([1, 2, 3], file, protocol=2)
    with pytest.raises(UserError, match="list.pt"):
        read_legacy_state_dict(tmp_path / "list.pt")
    torch.save({"note": "no weights"}, tmp_path / "empty.pt")
    with pytest.raises(UserError, match="no weights found"):
        read_legacy_state_dict(tmp_path / "empty.pt")


def _pickled_glow_module(monkeypatch, path: Path, build) -> None:
    """torch.save an object of a stand-in `glow.WN` class (gone again before the file is read)."""
    glow = types.ModuleType("glow")
    glow.WN = type("WN", (), {"__module__": "glow"})
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "glow", glow)
        torch.save({"model": build(glow.WN)}, path)


def test_malformed_pickled_models_are_user_errors(tmp_path, monkeypatch):
    def looped(cls):  # a module that contains itself: the walk must not recurse forever
        module = cls()
        module._parameters = {"weight": torch.ones(2)}
        module._modules = {"inner": module}
        return module

    _pickled_glow_module(monkeypatch, tmp_path / "loop.pt", looped)
    with pytest.raises(UserError, match=r"loop\.pt: not a usable checkpoint \(ValueError: .*contain themselves"):
        read_legacy_state_dict(tmp_path / "loop.pt")

    def odd(cls):  # containers of the wrong type and non-string names are tolerated, not crashed on
        module = cls()
        module._parameters, module._buffers, module._modules = [torch.ones(2)], {0: torch.ones(3)}, "no modules"
        return module

    _pickled_glow_module(monkeypatch, tmp_path / "odd.pt", odd)
    assert list(read_legacy_state_dict(tmp_path / "odd.pt")) == ["0"]
    assert "glow" not in sys.modules


def test_layouts_no_nvidia_file_has_are_user_errors(tmp_path):
    # An old-style WaveGlow layer without its bias cannot be fused.
    torch.save({"state_dict": {"WN.0.cond_layers.0.weight": torch.ones(4, 2, 1)}}, tmp_path / "no_bias.pt")
    with pytest.raises(UserError, match=r"no_bias\.pt: not a usable checkpoint \(KeyError: 'WN.0.cond_layers.0.bias'"):
        read_legacy_state_dict(tmp_path / "no_bias.pt")
    nested: list = []
    for _ in range(200):  # plain metadata nested deeper than any real file: dropped, not a RecursionError
        nested = [nested]
    torch.save({"state_dict": {"w": torch.ones(1)}, "config": nested, "iteration": 3}, tmp_path / "deep.pt")
    assert read_legacy_checkpoint(tmp_path / "deep.pt").metadata == {"iteration": 3}
