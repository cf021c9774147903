"""`voxflow convert`: NVIDIA-layout Tacotron 2 and WaveGlow files → safetensors with identical outputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import tts
import vocoders
from tts.checkpoint import read_checkpoint
from tts.cli import main
from tts.models.presets import tacotron2_preset
from tts.models.tacotron2 import Tacotron2

GOLDEN_WAVEGLOW = Path(__file__).resolve().parents[1] / "golden" / "waveglow_tiny_nvidia_model.pt"


def _nvidia_tacotron2(path: Path) -> Tacotron2:
    """A tiny Tacotron 2 saved as NVIDIA's train.py saves one (DDP `module.` prefix included)."""
    config = tacotron2_preset("tiny")
    torch.manual_seed(0)
    model = Tacotron2(config.replace(decoder=config.decoder.replace(frames_per_step=1))).eval()
    state_dict = {f"module.{key}": value for key, value in model.state_dict().items()}
    torch.save({"state_dict": state_dict, "iteration": 42, "learning_rate": 1e-3}, path)
    return model


def _mel(model, tokens):
    # A gate threshold above 1 never stops, so both models decode all 6 steps (and warn).
    with pytest.warns(UserWarning, match="max_decoder_steps"):
        return model.infer(tokens, gate_threshold=1.1, prenet_dropout=0.0, max_decoder_steps=6).mel_postnet


def test_tacotron2_statedict_converts_to_the_same_model(tmp_path, capsys):
    source = _nvidia_tacotron2(tmp_path / "tacotron2_statedict.pt")
    assert main(["convert", str(tmp_path / "tacotron2_statedict.pt"), "-o", str(tmp_path / "t2.safetensors")]) == 0
    out = capsys.readouterr().out
    assert "tacotron2" in out and f"{sum(p.numel() for p in source.parameters()):,} parameters" in out
    converted = tts.load_model(tmp_path / "t2.safetensors")
    for name, tensor in source.state_dict().items():
        assert torch.equal(converted.state_dict()[name], tensor), name
    tokens = torch.tensor([[10, 20, 30, 40, 11]])
    torch.testing.assert_close(_mel(converted, tokens), _mel(source, tokens), rtol=0, atol=0)


def test_pickled_waveglow_converts_to_the_same_vocoder(tmp_path, capsys):
    output = tmp_path / "waveglow.safetensors"
    assert main(["convert", str(GOLDEN_WAVEGLOW), "-o", str(output)]) == 0
    assert "waveglow (6 flows, 8 channels, 3 WaveNet layers, 4 mels" in capsys.readouterr().out
    assert read_checkpoint(output).kind == "waveglow"
    original, converted = vocoders.load_vocoder(GOLDEN_WAVEGLOW), vocoders.load_vocoder(output)
    mel = torch.randn(2, 4, 6, generator=torch.Generator().manual_seed(3))
    expected = original(mel, sigma=0.6, generator=torch.Generator().manual_seed(7))
    found = converted(mel, sigma=0.6, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(found, expected, rtol=0, atol=0)

    half = tmp_path / "waveglow_fp16.safetensors"
    assert main(["convert", str(GOLDEN_WAVEGLOW), "-o", str(half), "--half"]) == 0
    assert {tensor.dtype for tensor in read_checkpoint(half).state_dict.values()} == {torch.float16}
    found = vocoders.load_vocoder(half)(mel, sigma=0.6, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(found, expected, rtol=0.05, atol=0.02)


def test_user_mistakes_are_one_line_errors(tmp_path, capsys):
    _nvidia_tacotron2(tmp_path / "t2.pt")
    (tmp_path / "exists.safetensors").write_bytes(b"")
    torch.save({"state_dict": {"foo.weight": torch.zeros(2)}}, tmp_path / "unknown.pt")
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    cases = [
        (["missing.pt", "-o", "a.safetensors"], "missing.pt: no such file"),
        (["t2.pt", "-o", "exists.safetensors"], "already exists; pass --force"),
        (["t2.pt", "-o", "t2.bin"], "must end in .safetensors"),
        (["unknown.pt", "-o", "b.safetensors"], "not a checkpoint of a known model"),
        (["notes.txt", "-o", "c.safetensors"], "not a PyTorch .pt checkpoint"),
    ]
    for arguments, message in cases:
        source, *rest = arguments
        assert main(["convert", str(tmp_path / source), *[str(tmp_path / a) if a.endswith((".safetensors", ".bin"))
                                                           else a for a in rest]]) == 1
        err = capsys.readouterr().err
        assert err.startswith("voxflow convert: error: ") and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "b.safetensors").exists() and (tmp_path / "exists.safetensors").read_bytes() == b""
