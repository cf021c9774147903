"""Pitch-error metrics on hand-computed contours; forced alignment (rhythm) from a teacher-forced pass."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from tts.conditioning import (align, alignment_from_durations, durations_from_alignment, extract_rhythm,
                              f0_frame_error, gross_pitch_error, is_monotonic, pitch_errors, voicing_decision_error)


def test_pitch_error_rates_on_known_contours():
    reference = [0, 100, 100, 100, 200, 200, 0, 0, 150, 150]
    estimate = [0, 100, 125, 0, 200, 100, 90, 0, 149, 0]
    # voiced in both: frames 1, 2, 4, 5, 8 → gross errors at 2 (25 %) and 5 (50 %): GPE 2/5
    # voicing mismatches: frames 3, 6, 9 → VDE 3/10; FFE (3 + 2) / 10
    errors = pitch_errors(reference, estimate)
    assert errors.gpe == pytest.approx(0.4) and errors.vde == pytest.approx(0.3) and errors.ffe == pytest.approx(0.5)
    assert gross_pitch_error(reference, reference) == 0.0 and voicing_decision_error(reference, reference) == 0.0
    assert f0_frame_error([0, 0], [100, 100]) == 1.0 and gross_pitch_error([0, 0], [100, 100]) == 0.0
    assert gross_pitch_error([100], [119]) == 0.0 and gross_pitch_error([100], [121]) == 1.0
    with pytest.raises(ValueError, match="equal length"):
        pitch_errors([1, 2], [1])


def test_durations_and_alignments_round_trip():
    durations = torch.tensor([2, 0, 3, 1])
    attention = alignment_from_durations(durations)
    assert attention.shape == (6, 4) and torch.equal(attention.sum(1), torch.ones(6))
    assert torch.equal(durations_from_alignment(attention), durations)
    assert is_monotonic(attention) and not is_monotonic(attention.flip(0), tolerance=0)
    assert alignment_from_durations(durations, 8)[-2:, 3].tolist() == [1.0, 1.0]


@pytest.fixture
def tiny_model():
    from tts.audio import AudioConfig
    from tts.config import TextConfig
    from tts.models.mellotron import Mellotron, MellotronConfig
    from tts.models.tacotron2 import AttentionConfig, DecoderConfig, EncoderConfig, GSTConfig, PostnetConfig

    torch.manual_seed(0)
    config = MellotronConfig(
        audio=AudioConfig(n_mels=20), text=TextConfig(symbol_set="mellotron", p_arpabet=0.0),  # no CMUdict load
        encoder=EncoderConfig(embedding_dim=16, n_convolutions=1),
        attention=AttentionConfig(rnn_dim=16, attention_dim=8, location_n_filters=4, location_kernel_size=5),
        decoder=DecoderConfig(rnn_dim=16, prenet_dim=8), postnet=PostnetConfig(channels=8, n_convolutions=2),
        gst=GSTConfig(reference_filters=(4, 4), reference_gru_dim=8, n_tokens=4, token_dim=8, n_heads=2),
        n_speakers=2, speaker_embedding_dim=4)
    return Mellotron(config).eval()


def test_align_works_for_mellotron_and_tacotron2(tiny_model, generator):
    from tts.models.tacotron2 import Tacotron2, Tacotron2Config

    tokens = torch.randint(1, 185, (7,), generator=generator)
    mel = torch.randn(20, 15, generator=generator) - 4
    result = align(tiny_model, tokens, mel, speaker_id=1, f0=torch.full((15,), 150.0), prenet_dropout=0.0)
    assert result.attention.shape == (15, 7) and int(result.durations.sum()) == 15
    torch.testing.assert_close(result.attention.sum(1), torch.ones(15))
    config = dataclasses.replace(Tacotron2Config(), **{f: getattr(tiny_model.config, f) for f in
                                                       ("audio", "encoder", "attention", "decoder", "postnet")})
    config = dataclasses.replace(config, decoder=dataclasses.replace(config.decoder, frames_per_step=2))
    tacotron = Tacotron2(config).eval()
    result = align(tacotron, torch.randint(1, 148, (5,), generator=generator), mel, prenet_dropout=0.0)
    assert result.attention.shape == (15, 5)  # steps of r=2 frames repeated back to frames
    with pytest.raises(ValueError, match="F0"):
        align(tacotron, tokens, mel, f0=torch.zeros(15))


def test_extract_rhythm_contract_takes_text_and_audio(tiny_model, tmp_path):
    from tts.audio import save_audio

    t = np.arange(11025) / 22050
    path = tmp_path / "ref.wav"
    save_audio(path, (0.3 * np.sin(2 * np.pi * 180 * t)).astype(np.float32), 22050)
    rhythm = extract_rhythm(tiny_model, "Hello there.", path, speaker=1)
    assert rhythm.dtype == np.float32 and rhythm.shape[0] == 1 + 11025 // 256
    np.testing.assert_allclose(rhythm.sum(1), 1.0, rtol=1e-5)


@pytest.mark.slow
def test_rhythm_of_a_briefly_trained_tacotron2_is_monotonic(small_corpus, tmp_path):
    """A tiny Tacotron 2 with guided attention, 150 steps on the 16-clip corpus, aligns its clips."""
    from tts.data import load_utterances
    from tts.models.tacotron2 import GuidedAttentionConfig
    from tts.train.engine import Trainer
    from tts.train.tacotron2_task import Tacotron2Task
    from tts.train.config import TrainConfig

    model_config, _ = Tacotron2Task.preset("tiny")
    model_config = model_config.replace(guided_attention=GuidedAttentionConfig(weight=10.0, sigma=0.2))
    train = TrainConfig(batch_size=8, learning_rate=2e-3, max_steps=150, checkpoint_every=1000, validate_every=1000,
                        val_size=1, seed=0)
    trainer = Trainer(Tacotron2Task(model_config), train, tmp_path / "run", small_corpus, progress_bar=False)
    trainer.fit()
    model = trainer.model.eval()
    utterance = load_utterances(small_corpus)[0]
    rhythm = extract_rhythm(model, utterance.text, utterance.audio_path)
    attention = torch.from_numpy(rhythm)
    assert is_monotonic(attention, tolerance=2)
    first, last = attention[:5].argmax(1).float().mean(), attention[-5:].argmax(1).float().mean()
    assert last - first > attention.size(1) / 2  # it walks across the text


def test_style_and_speaker_wrappers(tiny_model, tmp_path):
    from tts.audio import save_audio
    from tts.conditioning import speaker_embedding, speaker_index, style_embedding

    path = tmp_path / "ref.wav"
    save_audio(path, (0.2 * np.sin(np.arange(8000) * 0.05)).astype(np.float32), 22050)
    assert style_embedding(tiny_model, audio=path).shape == (1, 8)
    torch.testing.assert_close(style_embedding(tiny_model, token=1),
                               style_embedding(tiny_model, weights=[0.0, 1.0, 0.0, 0.0]))
    with pytest.raises(ValueError, match="exactly one"):
        style_embedding(tiny_model, token=1, weights=[1, 0, 0, 0])
    assert speaker_index(tiny_model, "b", names=("a", "b")) == 1 and speaker_index(tiny_model, "1") == 1
    torch.testing.assert_close(speaker_embedding(tiny_model, 1), tiny_model.speaker_embedding.weight[1:2])
    with pytest.raises(ValueError, match="out of range"):
        speaker_index(tiny_model, 5)
    with pytest.raises(ValueError, match="unknown speaker"):
        speaker_index(tiny_model, "zed", names=("a", "b"))
