"""WaveGlow training on the shared engine: segments, falling loss, exact resume, loadable weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import vocoders
from tts.audio import AudioConfig, load_audio, mel_spectrogram
from tts.data import load_utterances
from tts.errors import ConfigError
from tts.train.config import TrainConfig
from tts.train.engine import Trainer
from tts.train.task import task_for
from tts.train.waveglow_task import AudioSegments, WaveGlowTask, WaveGlowTaskConfig, collate_audio_mel
from vocoders.waveglow import WaveGlowConfig

# 16 mel bands and a 512-sample upsampler keep a step at ~0.1 s on one thread; 2048-sample
# segments = 9 mel frames.
MODEL = WaveGlowConfig(audio=AudioConfig(n_mels=16), n_flows=4, n_early_every=2, wn_layers=2, wn_channels=8,
                       upsample_kernel_size=512)
SEGMENTS = WaveGlowTaskConfig(segment_length=2048)


def _train_config(**changes) -> TrainConfig:
    base = dict(batch_size=4, learning_rate=3e-3, weight_decay=0.0, max_steps=12, checkpoint_every=6,
                validate_every=1000, log_every=1000, val_size=2, seed=3, decay_start=1000)
    return TrainConfig(**{**base, **changes})


def _trainer(run, data, **changes) -> Trainer:
    resume = changes.pop("resume", False)
    return Trainer(WaveGlowTask(MODEL, SEGMENTS), _train_config(**changes), run, data, resume=resume,
                   progress_bar=False)


def test_segments_are_hop_aligned_slices_of_the_clip_and_its_mel(small_corpus, tmp_path):
    utterances = load_utterances(small_corpus)[:3]
    audio_config = MODEL.audio
    segments = AudioSegments(utterances, audio_config, 2048, cache_dir=tmp_path, seed=5)
    hop = audio_config.hop_length
    for index, utterance in enumerate(utterances):
        audio, mel = segments[index]
        clip = load_audio(utterance.audio_path)
        first = segments.start_frame(index, len(clip))
        assert audio.shape == (2048,) and mel.shape == (16, 1 + 2048 // hop)
        assert torch.equal(audio, torch.from_numpy(clip[first * hop:first * hop + 2048]))
        torch.testing.assert_close(mel, mel_spectrogram(clip, audio_config)[:, first:first + mel.shape[1]])
        assert torch.equal(segments[index][1], mel)  # (seed, epoch, index) fixes the segment
    starts = []
    for epoch in range(4):
        segments.set_epoch(epoch)
        starts.append([segments.start_frame(index, 50_000) for index in range(3)])
    assert len({tuple(row) for row in starts}) == 4  # a new segment every epoch


def test_clips_shorter_than_a_segment_are_zero_padded_as_nvidia_does(small_corpus):
    utterance = load_utterances(small_corpus)[0]
    clip = load_audio(utterance.audio_path)
    segments = AudioSegments([utterance], MODEL.audio, len(clip) + 1000 - (len(clip) + 1000) % 8)
    audio, mel = segments[0]
    assert torch.equal(audio[:len(clip)], torch.from_numpy(clip)) and not audio[len(clip):].any()
    torch.testing.assert_close(mel, mel_spectrogram(audio.numpy(), MODEL.audio))


def test_training_lowers_the_loss_and_the_weights_load_as_a_vocoder(small_corpus, tmp_path):
    trainer = _trainer(tmp_path / "run", small_corpus, max_steps=30, checkpoint_every=30)
    task = trainer.task
    batch = collate_audio_mel([trainer.data_sets.validation[i] for i in range(2)])

    def validation_loss() -> float:
        with torch.no_grad():
            return float(task.compute_loss(trainer.model.eval(), batch)[0])

    before = validation_loss()
    trainer.fit()
    after = validation_loss()
    assert after < before - 0.5, (before, after)  # per-sample NLL, in nats

    vocoder = vocoders.load_vocoder(tmp_path / "run" / "model.safetensors", audio=MODEL.audio)
    mel = batch.mel[0]
    audio = vocoder(mel, sigma=0.6, generator=torch.Generator().manual_seed(1))
    expected = trainer.model.infer(mel[None], 0.6, torch.Generator().manual_seed(1))[0]
    assert audio.shape == (mel.shape[1] * MODEL.audio.hop_length,) and torch.isfinite(audio).all()
    torch.testing.assert_close(audio, expected.detach(), rtol=1e-4, atol=1e-5)

    examples = task.examples(trainer.model, batch)
    vocoded, rate = examples.audio["vocoded"]
    assert rate == 22050 and vocoded.ndim == 1 and len(vocoded) % MODEL.audio.hop_length == 0
    assert set(examples.figures) == {"mel_target", "mel_vocoded"}


def test_a_resumed_run_follows_the_uninterrupted_one_exactly(small_corpus, tmp_path):
    # 14 training clips in batches of 4: 4 batches an epoch, so the resume at step 6 is mid-epoch.
    straight = _trainer(tmp_path / "straight", small_corpus)
    straight.fit()
    _trainer(tmp_path / "resumed", small_corpus, max_steps=6).fit()
    resumed = _trainer(tmp_path / "resumed", small_corpus, resume=True)
    assert (resumed.progress.step, resumed.progress.epoch, resumed.progress.batch_in_epoch) == (6, 1, 2)
    resumed.fit()
    for (name, expected), found in zip(straight.model.named_parameters(), resumed.model.parameters()):
        assert torch.equal(found, expected), name


def test_presets_and_settings():
    assert task_for("waveglow") is WaveGlowTask
    model, train = WaveGlowTask.preset("nvidia")
    assert (model.wn_channels, model.n_flows, train.batch_size, train.learning_rate, train.weight_decay) == (
        256, 12, 12, 1e-4, 0.0)
    assert WaveGlowTaskConfig() == WaveGlowTaskConfig(segment_length=16000, sigma=1.0, example_sigma=0.6)
    for name in ("small", "tiny"):
        assert WaveGlowTask.preset(name)[0].wn_channels < 256
    with pytest.raises(ConfigError, match="multiple of n_group 8"):
        WaveGlowTask(MODEL, WaveGlowTaskConfig(segment_length=2050))
    assert np.isfinite(train.grad_clip)  # "no clipping" stays valid JSON in the run's config.json
