"""Items that fail to load mid-run are reported and skipped; too many stop the run with advice."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from tts.config import Config
from tts.data import CollateLoaded, ItemFailure, SkipFailedItems
from tts.errors import AudioError, TrainingError
from tts.train.config import TrainConfig
from tts.train.engine import Trainer
from tts.train.state import latest_step_dir
from tts.train.tacotron2_task import Tacotron2Task
from tts.train.task import Task, TaskData

from toy_task import logged


class _Numbers(torch.utils.data.Dataset):
    """Item i is the tensor [i]; the items in `broken` raise as a damaged file would."""

    def __init__(self, count: int, broken=()) -> None:
        self.count, self.broken = count, set(broken)

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index):
        if index in self.broken:
            if index % 2:
                raise AudioError(f"clip{index}.wav: not a readable audio file (garbage)")
            raise ValueError(f"cannot reshape array of size {index} (clip{index}.npy)")
        return torch.tensor([float(index)])


def test_the_loader_sets_failed_items_aside_with_their_error():
    dataset = SkipFailedItems(_Numbers(6, broken=[1, 4]))
    assert dataset[0].tolist() == [0.0] and len(dataset) == 6
    assert dataset[1] == ItemFailure(1, "clip1.wav: not a readable audio file (garbage)")  # a UserError names its file
    assert dataset[4] == ItemFailure(4, "ValueError: cannot reshape array of size 4 (clip4.npy)")
    # Through a worker process: the failures travel back beside the batch of the good items.
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=[[0, 1, 2], [4], []], num_workers=1,
                                         collate_fn=CollateLoaded(torch.cat))
    first, only_broken, empty = list(loader)
    assert first.batch.tolist() == [0.0, 2.0] and first.size == 2 and [f.index for f in first.failures] == [1]
    assert only_broken.batch is None and only_broken.size == 0 and only_broken.failures[0].index == 4
    assert empty.batch is None and empty.size == 0 and empty.failures == []


class _ToyTask(Task):
    kind = "toy"
    config_class = Config

    def __init__(self, broken=(), validation_broken=()) -> None:
        super().__init__(Config())
        self.broken, self.validation_broken = broken, validation_broken
        self.seen: list[float] = []

    @classmethod
    def preset(cls, name):
        return Config(), TrainConfig()

    def build_model(self) -> nn.Module:
        return nn.Linear(1, 1)

    def build_data(self, data: Path, cache_dir, validation_size: int, seed: int) -> TaskData:
        return TaskData(_Numbers(20, self.broken), _Numbers(4, self.validation_broken), torch.stack, [1] * 20)

    def compute_loss(self, model, batch):
        self.seen += batch[:, 0].tolist()
        return (model(batch) - 2 * batch).square().mean(), {}


def _config(**changes) -> TrainConfig:
    base = dict(batch_size=4, max_steps=5, checkpoint_every=100, validate_every=100, log_every=1, val_size=4, seed=3)
    return TrainConfig(**{**base, **changes})


def test_the_engine_trains_the_rest_counts_and_warns_once_per_item(tmp_path, caplog):
    task = _ToyTask(broken=[3, 8], validation_broken=[1])
    trainer = Trainer(task, _config(max_steps=10, max_bad_item_fraction=0.1), tmp_path / "run", tmp_path,
                      progress_bar=False)
    with caplog.at_level(logging.WARNING, logger="tts.train.engine"):
        progress = trainer.fit()  # two epochs of five batches
        assert progress.step == 10 and sorted(task.seen) == sorted(2 * [float(i) for i in range(20) if i not in (3, 8)])
        task.seen.clear()
        assert trainer.validate()["loss"] >= 0 and sorted(task.seen) == [0.0, 2.0, 3.0]  # validation skips too
    assert trainer.skipped_items == 4 and sorted(trainer.bad_items) == [3, 8]
    warnings = [record.getMessage() for record in caplog.records]
    assert sum("skipping training item 3, which failed to load: clip3.wav: not a readable" in w for w in warnings) == 1
    assert sum("skipping training item 8, which failed to load: ValueError: cannot reshape" in w for w in warnings) == 1
    assert any("skipped 4 item loads that failed (2 distinct training items)" in w for w in warnings)
    assert any("skipping validation item 1, which failed to load: clip1.wav" in w for w in warnings)


def test_too_many_broken_items_stop_the_run_and_keep_its_state(tmp_path):
    # max_bad_item_fraction 0: the first broken item is one too many.
    trainer = Trainer(_ToyTask(broken=[3]), _config(max_bad_item_fraction=0.0), tmp_path / "run", tmp_path,
                      progress_bar=False)
    with pytest.raises(TrainingError, match=r"1 of the 20 training items failed to load, more than "
                                            r"train.max_bad_item_fraction=0.0 allows \(e.g. clip3.wav: not a readable"):
        trainer.fit()
    assert latest_step_dir(tmp_path / "run") is not None
    # Everything broken but allowed: an epoch that trains nothing stops instead of looping forever.
    everything = Trainer(_ToyTask(broken=range(20)), _config(max_bad_item_fraction=0.99), tmp_path / "all", tmp_path,
                         progress_bar=False)
    with pytest.raises(TrainingError, match="no batch of epoch 0 could be trained: every item failed to load"):
        everything.fit()
    assert everything.progress.step == 0


class _CountingTacotron2(Tacotron2Task):
    def __init__(self, model_config) -> None:
        super().__init__(model_config)
        self.items = 0

    def compute_loss(self, model, batch):
        self.items += batch.tokens.shape[0]
        return super().compute_loss(model, batch)


@pytest.mark.slow
def test_a_tacotron2_run_survives_clips_broken_after_it_started(small_corpus, tmp_path, caplog):
    data = tmp_path / "corpus"
    shutil.copytree(small_corpus, data)
    model_config, _ = Tacotron2Task.preset("tiny")
    config = TrainConfig(batch_size=4, max_steps=4, checkpoint_every=100, validate_every=100, log_every=1,
                         val_size=0, seed=0, max_bad_item_fraction=0.2)
    task = _CountingTacotron2(model_config)
    trainer = Trainer(task, config, tmp_path / "run", data, progress_bar=False)
    clips = trainer.data_sets.train.utterances
    # The run has started (one clip's mel is cached); now one clip is overwritten, one deleted and
    # the cached mel of a third truncated.
    trainer.data_sets.train.mel(clips[2])
    (cached,) = (tmp_path / "run" / "cache").rglob("*.npy")
    cached.write_bytes(cached.read_bytes()[:100])
    clips[0].audio_path.write_bytes(b"this is no longer a wav file" * 40)
    clips[1].audio_path.unlink()
    with caplog.at_level(logging.WARNING):
        progress = trainer.fit()  # 16 clips in 4 batches: one epoch, every clip tried once
    assert progress.step == 4 and task.items == 14  # the broken two are left out of their batches
    assert trainer.skipped_items == 2 and sorted(trainer.bad_items) == [0, 1]
    assert str(clips[0].audio_path) in trainer.bad_items[0] and "not a readable audio file" in trainer.bad_items[0]
    assert trainer.bad_items[1] == f"{clips[1].audio_path}: no such audio file"
    warnings = "\n".join(record.getMessage() for record in caplog.records)
    assert f"{cached}: unreadable cache file" in warnings  # derived data: computed again, not skipped
    assert np.load(cached).shape[0] == model_config.audio.n_mels
    assert str(clips[0].audio_path) in warnings and str(clips[1].audio_path) in warnings
    assert logged(tmp_path / "run", "train/skipped_items")[-1][1] == 2
    assert latest_step_dir(tmp_path / "run").name == "step_000004"
