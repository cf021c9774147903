"""The training engine on a toy regression task: resume, stop signals, NaN guard, warm start,
gradient accumulation."""

from __future__ import annotations

import os
import signal
import threading

import pytest
import torch
from torch import nn

from tts.checkpoint import read_checkpoint
from tts.errors import TrainingError
from tts.train.config import TrainConfig, learning_rate_at
from tts.train.engine import Trainer, read_run_config
from tts.train.state import latest_step_dir
from tts.train.warm_start import freeze

from toy_task import ToyConfig, ToyTask, logged


def _config(**changes) -> TrainConfig:
    base = dict(batch_size=4, learning_rate=1e-2, max_steps=14, checkpoint_every=4, validate_every=5,
                log_every=2, val_size=4, seed=7, decay_start=6, decay_half_life=4)
    return TrainConfig(**{**base, **changes})


def _parameters(model: nn.Module) -> list[torch.Tensor]:
    return [parameter.detach().clone() for parameter in model.parameters()]


def test_loss_falls_and_checkpoints_are_self_describing(tmp_path):
    trainer = Trainer(ToyTask(), _config(max_steps=60, checkpoint_every=20, decay_start=1000), tmp_path / "run", tmp_path,
                      progress_bar=False)
    before = trainer.validate()["loss"]
    progress = trainer.fit()
    after = trainer.validate()["loss"]
    assert progress.step == 60 and after < 0.5 * before
    checkpoint = read_checkpoint(tmp_path / "run" / "model.safetensors")
    assert checkpoint.kind == "toy" and checkpoint.metadata["step"] == "60"
    assert read_run_config(tmp_path / "run")["train"]["max_steps"] == 60
    assert sorted(path.name for path in (tmp_path / "run" / "checkpoints").iterdir()) == [
        "step_000020", "step_000040", "step_000060"]
    assert any((tmp_path / "run" / "logs").iterdir())


def test_resumed_run_follows_the_uninterrupted_one_exactly(tmp_path):
    straight = Trainer(ToyTask(), _config(), tmp_path / "straight", tmp_path, progress_bar=False)
    straight.fit()
    first = Trainer(ToyTask(), _config(max_steps=6), tmp_path / "resumed", tmp_path, progress_bar=False)
    first.fit()
    second = Trainer(ToyTask(), _config(), tmp_path / "resumed", tmp_path, resume=True, progress_bar=False)
    assert second.progress.step == 6 and second.progress.batch_in_epoch == 6
    second.fit()
    for expected, found in zip(_parameters(straight.model), _parameters(second.model)):
        torch.testing.assert_close(found, expected, rtol=0, atol=0)
    assert second.optimizer.param_groups[0]["lr"] == pytest.approx(learning_rate_at(13, _config()))


def test_a_critic_trains_beside_the_model_and_resumes_from_the_training_state_only(tmp_path):
    from safetensors import safe_open

    task = lambda: ToyTask(ToyConfig(critic=True))  # noqa: E731
    straight = Trainer(task(), _config(), tmp_path / "straight", tmp_path, progress_bar=False)
    critic_before = _parameters(straight.critic)
    straight.fit()
    assert all(not torch.equal(a, b) for a, b in zip(critic_before, _parameters(straight.critic)))  # it trained
    first = Trainer(task(), _config(max_steps=6), tmp_path / "resumed", tmp_path, progress_bar=False)
    first.fit()
    step_dir = latest_step_dir(tmp_path / "resumed")
    assert not any(key.startswith("critic.") for key in read_checkpoint(step_dir / "model.safetensors").state_dict)
    with safe_open(str(step_dir / "train_state.safetensors"), framework="pt") as state:
        assert {"critic.weight", "critic.bias"} <= set(state.keys())
    second = Trainer(task(), _config(), tmp_path / "resumed", tmp_path, resume=True, progress_bar=False)
    second.fit()
    for expected, found in zip(_parameters(straight.model) + _parameters(straight.critic),
                               _parameters(second.model) + _parameters(second.critic)):
        torch.testing.assert_close(found, expected, rtol=0, atol=0)
    # a run saved without a critic cannot resume as one with a critic
    Trainer(ToyTask(), _config(max_steps=4), tmp_path / "plain", tmp_path, progress_bar=False).fit()
    with pytest.raises(TrainingError, match="does not fit"):
        Trainer(task(), _config(), tmp_path / "plain", tmp_path, resume=True, progress_bar=False)


def test_gradient_accumulation_follows_the_full_batch_trajectory(tmp_path):
    # 37 items: global batches of 8, 8, 8, 8 and 5 (2 + 3 items: each micro-batch weighs its share).
    task_config = ToyConfig(dropout=0.0, n_items=37)
    config = _config(max_steps=8, log_every=1, validate_every=100, checkpoint_every=100)
    full = Trainer(ToyTask(task_config), config.replace(batch_size=8), tmp_path / "full", tmp_path,
                   progress_bar=False)
    initial = _parameters(full.model)
    full.fit()
    split = ToyTask(task_config)
    accumulated = Trainer(split, config.replace(batch_size=4, grad_accumulation=2), tmp_path / "split",
                          tmp_path, progress_bar=False)
    accumulated.fit()
    assert split.calls == 2 * 8  # two micro-batches per optimizer step; max_steps counts steps
    losses = {name: logged(tmp_path / name) for name in ("full", "split")}
    assert [step for step, _ in losses["split"]] == list(range(1, 9))
    torch.testing.assert_close(torch.tensor(losses["split"]), torch.tensor(losses["full"]), rtol=1e-5, atol=1e-6)
    for before, expected, found in zip(initial, _parameters(full.model), _parameters(accumulated.model)):
        assert (expected - before).abs().max() > 1e-2  # trained: the comparison is not of two idle models
        torch.testing.assert_close(found, expected, rtol=1e-5, atol=1e-6)
    assert accumulated.progress == full.progress  # steps, epoch and position count global batches


class _CountingScaler(torch.amp.GradScaler):
    def __init__(self) -> None:
        super().__init__("cpu")
        self.steps = 0

    def step(self, optimizer, *args, **kwargs):
        self.steps += 1
        return super().step(optimizer, *args, **kwargs)


def test_the_grad_scaler_steps_once_per_accumulated_optimizer_step(tmp_path):
    # The engine makes a GradScaler for fp16 on CUDA; the same object on CPU checks how it meets
    # accumulation: scaled micro-batch losses, one unscale_/step/update per optimizer step.
    config = _config(max_steps=6, batch_size=4, grad_accumulation=2, validate_every=100, checkpoint_every=100)
    plain = Trainer(ToyTask(ToyConfig(dropout=0.0)), config, tmp_path / "plain", tmp_path, progress_bar=False)
    plain.fit()
    scaled = Trainer(ToyTask(ToyConfig(dropout=0.0)), config, tmp_path / "scaled", tmp_path, progress_bar=False)
    scaled.scaler = _CountingScaler()
    scaled.fit()
    assert scaled.scaler.steps == 6 and scaled.scaler.get_scale() == 2.0 ** 16  # no overflow, no skipped step
    for expected, found in zip(_parameters(plain.model), _parameters(scaled.model)):
        torch.testing.assert_close(found, expected, rtol=1e-6, atol=1e-7)


def test_a_resumed_accumulating_run_follows_the_uninterrupted_one_exactly(tmp_path):
    config = _config(batch_size=2, grad_accumulation=2)  # 10 steps of 4 items an epoch
    straight = Trainer(ToyTask(), config, tmp_path / "straight", tmp_path, progress_bar=False)
    straight.fit()
    Trainer(ToyTask(), config.replace(max_steps=13), tmp_path / "resumed", tmp_path, progress_bar=False).fit()
    second = Trainer(ToyTask(), config, tmp_path / "resumed", tmp_path, resume=True, progress_bar=False)
    assert (second.progress.step, second.progress.epoch, second.progress.batch_in_epoch) == (13, 1, 3)
    second.fit()
    for expected, found in zip(_parameters(straight.model), _parameters(second.model)):
        torch.testing.assert_close(found, expected, rtol=0, atol=0)


def test_sigterm_finishes_the_step_saves_and_stops(tmp_path):
    def send_sigterm(call):
        if call == 3:
            os.kill(os.getpid(), signal.SIGTERM)

    trainer = Trainer(ToyTask(on_step=send_sigterm), _config(max_steps=100, checkpoint_every=50,
                                                             validate_every=50), tmp_path / "run", tmp_path,
                      progress_bar=False)
    progress = trainer.fit()
    assert progress.step == 3
    assert latest_step_dir(tmp_path / "run").name == "step_000003"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is put back


def test_non_finite_losses_are_skipped_then_stop_the_run_with_advice(tmp_path):
    class Diverging(ToyTask):
        def compute_loss(self, model, batch):
            loss, logs = super().compute_loss(model, batch)
            return (loss * float("nan") if self.calls > 2 else loss), logs

    threads_before = set(threading.enumerate())
    trainer = Trainer(Diverging(), _config(max_bad_steps=3), tmp_path / "run", tmp_path, progress_bar=False)
    with pytest.raises(TrainingError, match="not finite for 3 steps.*lower train.learning_rate"):
        trainer.fit()
    assert latest_step_dir(tmp_path / "run").name == "step_000005"
    assert all(torch.isfinite(parameter).all() for parameter in trainer.model.parameters())
    # The TensorBoard writer's thread is joined on the error path too: a daemon thread left
    # running can abort the process at interpreter exit (seen under torchrun).
    assert set(threading.enumerate()) <= threads_before


def test_run_folder_rules(tmp_path):
    with pytest.raises(TrainingError, match="no checkpoint to resume"):
        Trainer(ToyTask(), _config(), tmp_path / "run", tmp_path, resume=True, progress_bar=False)
    Trainer(ToyTask(), _config(max_steps=2), tmp_path / "run", tmp_path, progress_bar=False).fit()
    with pytest.raises(TrainingError, match="already holds a training run; pass --resume"):
        Trainer(ToyTask(), _config(), tmp_path / "run", tmp_path, progress_bar=False)


def test_a_half_written_step_folder_is_ignored(tmp_path):
    Trainer(ToyTask(), _config(max_steps=4), tmp_path / "run", tmp_path, progress_bar=False).fit()
    staging = tmp_path / "run" / "checkpoints" / ".step_000008.abc"
    staging.mkdir()
    (staging / "model.safetensors").write_bytes(b"partial")
    assert latest_step_dir(tmp_path / "run").name == "step_000004"
    resumed = Trainer(ToyTask(), _config(max_steps=6), tmp_path / "run", tmp_path, resume=True, progress_bar=False)
    assert resumed.fit().step == 6


def test_warm_start_drops_only_named_layers(tmp_path):
    Trainer(ToyTask(), _config(max_steps=4), tmp_path / "source", tmp_path, progress_bar=False).fit()
    source = tmp_path / "source" / "model.safetensors"
    wide = ToyTask(ToyConfig(width=8))
    with pytest.raises(TrainingError, match="shape mismatch: 0.bias .*--ignore-layers"):
        Trainer(wide, _config(), tmp_path / "a", tmp_path, warm_start_from=source, progress_bar=False)
    trainer = Trainer(ToyTask(), _config(), tmp_path / "b", tmp_path, warm_start_from=source,
                      ignore_layers=["3"], freeze_layers=["0"], progress_bar=False)
    loaded = read_checkpoint(source).state_dict
    torch.testing.assert_close(trainer.model[0].weight, loaded["0.weight"])
    assert not torch.equal(trainer.model[3].weight, loaded["3.weight"])
    frozen = trainer.model[0].weight.detach().clone()
    trainer.fit()
    assert torch.equal(trainer.model[0].weight, frozen)
    with pytest.raises(TrainingError, match="no parameter has these names"):
        freeze(trainer.model, ["decoder"])


def test_frozen_batch_norm_keeps_its_running_statistics(tmp_path):
    class Normalised(ToyTask):
        def build_model(self) -> nn.Module:
            width = self.model_config.width
            return nn.Sequential(nn.Linear(4, width), nn.BatchNorm1d(width), nn.Tanh(),
                                 nn.Linear(width, width), nn.BatchNorm1d(width), nn.Tanh(), nn.Linear(width, 1))

    trainer = Trainer(Normalised(), _config(max_steps=4), tmp_path / "run", tmp_path, freeze_layers=["0", "1"],
                      progress_bar=False)
    frozen, trained = trainer.model[1], trainer.model[4]
    before = {name: layer.running_mean.clone() for name, layer in (("frozen", frozen), ("trained", trained))}
    trainer.fit()
    assert torch.equal(frozen.running_mean, before["frozen"]) and frozen.num_batches_tracked == 0
    assert not torch.equal(trained.running_mean, before["trained"])  # the unfrozen one did learn its statistics


def test_learning_rate_schedule_is_a_pure_function_of_the_step():
    config = TrainConfig(learning_rate=1e-3, warmup_steps=10, decay_start=100, decay_half_life=50,
                         min_learning_rate=1e-4)
    assert learning_rate_at(0, config) == pytest.approx(1e-4)
    assert learning_rate_at(50, config) == pytest.approx(1e-3)
    assert learning_rate_at(150, config) == pytest.approx(5e-4)
    assert learning_rate_at(10_000, config) == pytest.approx(1e-4)


def test_configs_come_from_presets_json_files_and_overrides(tmp_path):
    from tts.errors import ConfigError
    from tts.train.setup import resolve_configs

    model, train = resolve_configs(ToyTask, "tiny", ["train.batch_size=3", "model.width=5"])
    assert (model.width, train.batch_size) == (5, 3)
    config_file = tmp_path / "c.json"
    config_file.write_text('{"preset": "nvidia", "train": {"learning_rate": 0.5}}')
    model, train = resolve_configs(ToyTask, str(config_file))
    assert (model.width, train.learning_rate, train.batch_size) == (64, 0.5, TrainConfig().batch_size)
    with pytest.raises(ConfigError, match="unknown toy preset 'huge'"):
        resolve_configs(ToyTask, "huge")
    with pytest.raises(ConfigError, match="keys start with model. or train."):
        resolve_configs(ToyTask, "tiny", ["batch_size=3"])
    with pytest.raises(ConfigError, match="unknown config key"):
        resolve_configs(ToyTask, "tiny", ["train.batch_sise=3"])
    config_file.write_text('{"train": {"learning_rate": 0.5,}}')
    with pytest.raises(ConfigError, match="c.json:1: not valid JSON"):
        resolve_configs(ToyTask, str(config_file))
    with pytest.raises(ConfigError, match="train.grad_accumulation: expected a positive integer, found 0"):
        resolve_configs(ToyTask, "tiny", ["train.grad_accumulation=0"])
    with pytest.raises(ConfigError, match=r"max_bad_item_fraction: expected a fraction in \[0, 1\), found 1"):
        resolve_configs(ToyTask, "tiny", ["train.max_bad_item_fraction=1"])
