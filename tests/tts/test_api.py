"""The Python API and `voxflow say` on tiny random-weight voices: shapes, joining, seeds, errors."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile
import torch

from tts import Synthesizer
from tts.cli import main
from tts.errors import UserError
from tts.loading import save_model
from tts.models.presets import tacotron2_preset
from tts.models.tacotron2 import GSTConfig, Tacotron2

pytestmark = pytest.mark.filterwarnings("ignore:Tacotron 2 reached max_decoder_steps")


@pytest.fixture(scope="module")
def voice_path(tmp_path_factory):
    """A tiny Tacotron 2 with GST and two named speakers (random weights: it never stops by itself,
    so tests bound the decoder steps)."""
    config = tacotron2_preset("tiny").replace(
        gst=GSTConfig(reference_filters=(8, 8), reference_gru_dim=16, n_tokens=4, token_dim=32, n_heads=2),
        n_speakers=2, speaker_embedding_dim=8)
    torch.manual_seed(0)
    model = Tacotron2(config)
    return save_model(tmp_path_factory.mktemp("voice") / "voice.safetensors", model, speakers=("rms", "slt"))


def test_synthesize_returns_audio_mel_and_alignment(voice_path):
    synth = Synthesizer.from_pretrained(voice_path)
    assert synth.speakers == ("rms", "slt") and synth.sample_rate == 22050
    out = synth.synthesize("Hello world.", speaker="slt", seed=3, prenet_dropout=0.0, max_decoder_steps=8)
    n_mels, n_frames = out.mel.shape
    assert n_mels == 80 and n_frames > 0 and out.audio.dtype == np.float32
    assert abs(len(out.audio) - (n_frames - 1) * 256) <= 256
    assert out.alignment.shape[1] == len("hello world.")
    assert np.all(np.abs(out.audio) <= 1.0)


def test_seed_makes_output_repeatable(voice_path):
    synth = Synthesizer.from_pretrained(voice_path)
    first = synth.synthesize("A short test.", seed=5, max_decoder_steps=8)
    again = synth.synthesize("A short test.", seed=5, max_decoder_steps=8)
    other = synth.synthesize("A short test.", seed=6, max_decoder_steps=8)
    np.testing.assert_array_equal(first.mel, again.mel)
    assert first.mel.shape != other.mel.shape or not np.array_equal(first.mel, other.mel)


def test_long_text_is_split_and_joined_with_pauses(voice_path):
    synth = Synthesizer.from_pretrained(voice_path)
    one = synth.synthesize("First one.", seed=1, prenet_dropout=0.0, max_decoder_steps=8)
    two = synth.synthesize("First one. Second one!", seed=1, prenet_dropout=0.0, max_decoder_steps=8)
    pause = int(0.3 * 22050 / 256) * 256
    assert two.alignment is None  # several sentences: no single alignment
    assert len(two.audio) > len(one.audio) + pause
    # The same first sentence (decoded in a padded batch of two: equal up to float rounding).
    np.testing.assert_allclose(two.mel[:, :one.mel.shape[1]], one.mel, atol=1e-5)
    batch = synth.synthesize_batch(["First one.", "First one. Second one!"], seed=1, prenet_dropout=0.0,
                                     max_decoder_steps=8)
    np.testing.assert_allclose(batch[0].mel, one.mel, atol=1e-5)


def test_style_from_reference_audio_tokens_and_weights(voice_path, speech_wav):
    synth = Synthesizer.from_pretrained(voice_path)
    plain = synth.synthesize("Style test.", seed=1, prenet_dropout=0.0, max_decoder_steps=6)
    from_audio = synth.synthesize("Style test.", style=speech_wav, seed=1, prenet_dropout=0.0, max_decoder_steps=6)
    from_token = synth.synthesize("Style test.", style=2, seed=1, prenet_dropout=0.0, max_decoder_steps=6)
    from_weights = synth.synthesize("Style test.", style=[0.0, 0.0, 1.0, 0.0], seed=1, prenet_dropout=0.0,
                                    max_decoder_steps=6)
    assert not np.allclose(plain.mel, from_audio.mel)
    np.testing.assert_allclose(from_token.mel, from_weights.mel, atol=1e-5)


def test_unsupported_options_name_the_models_that_support_them(voice_path):
    synth = Synthesizer.from_pretrained(voice_path)
    with pytest.raises(UserError, match="pitch needs Mellotron voices; this voice is tacotron2"):
        synth.synthesize("Hi.", pitch="ref.wav")
    with pytest.raises(UserError, match="sigma applies to flow models"):
        synth.synthesize("Hi.", sigma=0.5)
    with pytest.raises(UserError, match="unknown speaker 'awb'; this voice has rms, slt"):
        synth.synthesize("Hi.", speaker="awb")
    with pytest.raises(UserError, match="denoise applies to the WaveGlow vocoder"):
        synth.synthesize("Hi.", denoise=0.1)


def test_say_command_writes_audio_and_reports_mistakes(voice_path, tmp_path, capsys):
    output = tmp_path / "hello.flac"
    assert main(["say", "Hello there.", "-o", str(output), "--model", str(voice_path), "--speaker", "rms",
                 "--seed", "1"]) == 0
    audio, rate = soundfile.read(output)
    assert rate == 22050 and len(audio) > 0
    capsys.readouterr()
    assert main(["say", "Hello.", "-o", str(tmp_path / "x.wav"), "--model", str(voice_path), "--speaker", "kal"]) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "unknown speaker 'kal'" in error[0]
    assert main(["say", "Hello.", "-o", str(tmp_path / "x.mp3"), "--model", str(voice_path)]) == 1
    assert "unsupported output format" in capsys.readouterr().err
