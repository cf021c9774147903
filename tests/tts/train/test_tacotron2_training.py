"""A tiny Tacotron 2 trained briefly on the committed synthetic corpus: loss falls, attention aligns."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tts.data import collate_text_mel
from tts.models.tacotron2 import GuidedAttentionConfig
from tts.train.config import TrainConfig
from tts.train.engine import Trainer
from tts.train.tacotron2_task import Tacotron2Task


def _attention_measures(trainer: Trainer, batch) -> tuple[float, float, float]:
    """Teacher-forced loss, mean max attention weight per step, and how diagonal the path is
    (correlation of the attended token with the decoder step), over the real steps and tokens."""
    model = trainer.model.eval()
    with torch.no_grad():
        loss, _ = trainer.task.compute_loss(model, batch)
        output = model(batch.tokens, batch.token_lengths, batch.mel, batch.mel_lengths, prenet_dropout=0.0)
    r = model.frames_per_step
    peaks, diagonal = [], []
    for item in range(batch.tokens.size(0)):
        n_steps = -(-int(batch.mel_lengths[item]) // r)
        attention = output.alignment[item, :n_steps, :int(batch.token_lengths[item])]
        peaks.append(attention.max(dim=1).values.mean().item())
        diagonal.append(np.corrcoef(np.arange(n_steps), attention.argmax(dim=1).numpy())[0, 1])
    model.train()
    return loss.item(), float(np.mean(peaks)), float(np.nanmean(diagonal))


@pytest.mark.slow
def test_tiny_tacotron2_learns_and_its_attention_becomes_diagonal(small_corpus, tmp_path):
    model_config, _ = Tacotron2Task.preset("tiny")
    model_config = model_config.replace(guided_attention=GuidedAttentionConfig(weight=1.0, sigma=0.2))
    train = TrainConfig(batch_size=8, learning_rate=2e-3, max_steps=150, checkpoint_every=1000,
                        validate_every=1000, val_size=0, seed=0)
    trainer = Trainer(Tacotron2Task(model_config), train, tmp_path / "run", small_corpus, progress_bar=False)
    batch = collate_text_mel([trainer.data_sets.train[index] for index in range(8)])
    loss_before, peak_before, _ = _attention_measures(trainer, batch)
    trainer.fit()
    loss_after, peak_after, diagonal_after = _attention_measures(trainer, batch)
    assert loss_after < 0.2 * loss_before
    assert peak_after > 3 * peak_before and peak_after > 0.2  # from spread out to focused
    assert diagonal_after > 0.9  # the attended token advances with the decoder step
