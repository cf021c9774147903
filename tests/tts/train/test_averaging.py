"""`voxflow average`: the mean of a run's step checkpoints, written as a normal, loadable checkpoint."""

from __future__ import annotations

import json

import pytest
import torch

import tts
from tts.checkpoint import read_checkpoint
from tts.cli import main
from tts.errors import UserError
from tts.loading import save_model
from tts.models.presets import tacotron2_preset
from tts.models.tacotron2 import Tacotron2
from tts.train.averaging import average_checkpoints, run_checkpoints
from tts.train.config import TrainConfig
from tts.train.engine import Trainer

from toy_task import ToyTask


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    """A toy run that saved steps 4, 8, 12 and 14 and kept the newest three."""
    root = tmp_path_factory.mktemp("averaging")
    config = TrainConfig(batch_size=4, learning_rate=1e-2, max_steps=14, checkpoint_every=4, validate_every=100,
                         log_every=100, val_size=4, seed=7, keep_checkpoints=3)
    Trainer(ToyTask(), config, root / "run", root, progress_bar=False).fit()
    return root / "run"


def _step_tensors(run, step):
    return read_checkpoint(run / "checkpoints" / f"step_{step:06d}" / "model.safetensors").state_dict


def test_a_run_folder_averages_its_kept_checkpoints(toy_run, tmp_path, capsys):
    output = tmp_path / "mean.safetensors"
    assert main(["average", str(toy_run), "-o", str(output)]) == 0
    assert "the mean of 3 toy checkpoints (steps 8, 12, 14)" in capsys.readouterr().out
    averaged = read_checkpoint(output)
    steps = [_step_tensors(toy_run, step) for step in (8, 12, 14)]
    for name, tensor in averaged.state_dict.items():
        expected = sum(state[name].double() for state in steps) / 3
        torch.testing.assert_close(tensor, expected.float(), rtol=0, atol=1e-7)
    # the steps really differ, so the mean is none of them
    assert not torch.equal(averaged.state_dict["0.weight"], steps[-1]["0.weight"])
    assert averaged.kind == "toy" and averaged.metadata["step"] == "14"
    assert [source["step"] for source in json.loads(averaged.metadata["averaged_from"])] == [8, 12, 14]


def test_last_picks_the_newest_checkpoints(toy_run, tmp_path):
    assert [path.parent.name for path in run_checkpoints(toy_run, 2)] == ["step_000012", "step_000014"]
    output = tmp_path / "mean2.safetensors"
    assert main(["average", str(toy_run), "--last", "2", "-o", str(output)]) == 0
    found = read_checkpoint(output).state_dict["0.weight"]
    expected = (_step_tensors(toy_run, 12)["0.weight"] + _step_tensors(toy_run, 14)["0.weight"]) / 2
    torch.testing.assert_close(found, expected)


def test_more_checkpoints_than_the_run_kept_is_a_clear_error(toy_run, tmp_path, capsys):
    assert main(["average", str(toy_run), "--last", "5", "-o", str(tmp_path / "x.safetensors")]) == 1
    assert "3 complete step checkpoint(s) (steps: 8, 12, 14), fewer than the 5 asked for" in capsys.readouterr().err
    assert not (tmp_path / "x.safetensors").exists()


def _tiny_tacotron2(seed: int, **changes) -> Tacotron2:
    torch.manual_seed(seed)
    config = tacotron2_preset("tiny")
    return Tacotron2(config.replace(**changes) if changes else config).eval()


def test_an_averaged_mel_generator_loads_and_speaks_in_float16(tmp_path):
    first, second = _tiny_tacotron2(0), _tiny_tacotron2(1)
    save_model(tmp_path / "a.safetensors", first)
    save_model(tmp_path / "b.safetensors", second)
    output = tmp_path / "mean.safetensors"
    assert main(["average", str(tmp_path / "a.safetensors"), str(tmp_path / "b.safetensors"), "-o", str(output),
                 "--half"]) == 0
    model = tts.load_model(output)
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point():
            expected = (first.state_dict()[name] + second.state_dict()[name]) / 2
            torch.testing.assert_close(tensor, expected.half().float(), rtol=0, atol=0, msg=name)
    with pytest.warns(UserWarning, match="max_decoder_steps"):
        mel = model.infer(torch.tensor([[10, 20, 30, 11]]), gate_threshold=1.1, max_decoder_steps=4).mel_postnet
    assert mel.shape[:2] == (1, model.config.audio.n_mels) and torch.isfinite(mel).all()


def test_checkpoints_of_different_models_are_refused_by_name(tmp_path):
    save_model(tmp_path / "a.safetensors", _tiny_tacotron2(0))
    other = _tiny_tacotron2(0)
    save_model(tmp_path / "b.safetensors", Tacotron2(other.config.replace(
        encoder=other.config.encoder.replace(n_convolutions=2))))
    with pytest.raises(UserError, match=r"b\.safetensors: its model config differs from .*a\.safetensors's "
                                        r"\(in encoder\)"):
        average_checkpoints([tmp_path / "a.safetensors", tmp_path / "b.safetensors"])
    with pytest.raises(UserError, match="nothing to average: 1 checkpoint given"):
        average_checkpoints([tmp_path / "a.safetensors"])


def test_the_output_is_never_overwritten_unasked(toy_run, tmp_path, capsys):
    output = tmp_path / "mean.safetensors"
    output.write_bytes(b"keep me")
    assert main(["average", str(toy_run), "-o", str(output)]) == 1
    assert "already exists; pass --force" in capsys.readouterr().err and output.read_bytes() == b"keep me"
    assert main(["average", str(tmp_path), "-o", str(tmp_path / "y.safetensors")]) == 1
    assert "not a training run folder" in capsys.readouterr().err
