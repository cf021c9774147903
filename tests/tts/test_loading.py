"""Loading mel generators: our safetensors and NVIDIA-layout files, kind detection, clear errors."""

from __future__ import annotations

import pytest
import torch

import tts
from tts.errors import UserError
from tts.loading import read_model, save_model
from tts.models.presets import tacotron2_preset
from tts.models.tacotron2 import Tacotron2


def _tiny_model() -> Tacotron2:
    config = tacotron2_preset("tiny").replace(n_speakers=2, speaker_embedding_dim=8)
    torch.manual_seed(0)
    return Tacotron2(config).eval()


def _infer(model, tokens):
    return model.infer(tokens, speaker_id=1, prenet_dropout=0.0, max_decoder_steps=5).mel_postnet


def test_save_then_load_gives_the_same_model_and_speakers(tmp_path):
    model = _tiny_model()
    path = save_model(tmp_path / "voice.safetensors", model, speakers=("rms", "slt"))
    loaded = read_model(path)
    assert loaded.kind == "tacotron2" and loaded.speakers == ("rms", "slt")
    tokens = torch.tensor([[12, 13, 14, 15]])
    with pytest.warns(UserWarning, match="max_decoder_steps"):
        torch.testing.assert_close(_infer(loaded.model, tokens), _infer(model, tokens), rtol=0, atol=0)


def test_half_precision_storage_loads_close(tmp_path):
    model = _tiny_model()
    path = save_model(tmp_path / "voice.safetensors", model, half=True)
    loaded = tts.load_model(path)
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point():
            torch.testing.assert_close(loaded.state_dict()[name], tensor, rtol=1e-3, atol=1e-3)


def test_nvidia_layout_pickle_is_recognised(tmp_path):
    model = tacotron2_preset("tiny")
    torch.manual_seed(0)
    source = Tacotron2(model.replace(decoder=model.decoder.replace(frames_per_step=1)))
    state = {f"module.{key}": value for key, value in source.state_dict().items()}  # DLE-style prefix
    path = tmp_path / "checkpoint_tacotron2.pt"
    torch.save({"state_dict": state, "iteration": 10, "learning_rate": 1e-3}, path)
    loaded = read_model(path)
    assert loaded.kind == "tacotron2" and loaded.model.config.text.symbol_set == "tacotron2"
    for name, tensor in source.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[name], tensor), name


def test_clear_errors(tmp_path):
    with pytest.raises(UserError, match="no such model file"):
        read_model(tmp_path / "missing.safetensors")
    path = tmp_path / "other.pt"
    torch.save({"state_dict": {"weight": torch.zeros(2)}}, path)
    with pytest.raises(UserError, match="not a checkpoint of a known model"):
        read_model(path)
    waveglow = tmp_path / "waveglow.pt"
    torch.save({"upsample.weight": torch.zeros(2), "WN.0.start.weight": torch.zeros(2)}, waveglow)
    with pytest.raises(UserError, match="WaveGlow vocoder, not a mel generator"):
        read_model(waveglow)


def test_loading_restores_init_and_leaves_torch_compile_unimported(tmp_path):
    """Building the model to load into skips random init: on the meta device init would import
    torch._dynamo (seconds of `voxflow say`'s start), and the strict load overwrites it anyway."""
    import subprocess
    import sys

    path = save_model(tmp_path / "voice.safetensors", _tiny_model())
    script = ("import sys, torch; from tts.loading import read_model; read_model(sys.argv[1]); "
              "assert 'torch._dynamo' not in sys.modules, 'torch._dynamo was imported'; "
              "weight = torch.nn.Linear(64, 64).weight; assert weight.abs().max() > 0, 'init left off'")
    subprocess.run([sys.executable, "-c", script, str(path)], check=True, timeout=120)
    assert torch.nn.init.uniform_.__name__ == "uniform_"
