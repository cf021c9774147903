"""The API with Mellotron and Flowtron voices (tiny random weights): pitch, rhythm, singing, sigma,
posterior style, latent and conditioning interpolation, and the errors for options a voice does not take."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tts import Synthesizer
from tts.errors import UserError
from tts.loading import save_model
from tts.models.flowtron import Flowtron, flowtron_preset
from tts.models.mellotron import Mellotron, mellotron_preset

pytestmark = pytest.mark.filterwarnings("ignore:.*(max_decoder_steps|n_frames)")
SCORE = Path(__file__).parents[1] / "fixtures" / "scores" / "duet.musicxml"


@pytest.fixture(scope="module")
def mellotron_voice(tmp_path_factory):
    torch.manual_seed(0)
    config = mellotron_preset("tiny").replace(n_speakers=2)
    return Synthesizer.from_pretrained(save_model(tmp_path_factory.mktemp("m") / "m.safetensors", Mellotron(config),
                                                  speakers=("rms", "slt")))


@pytest.fixture(scope="module")
def flowtron_voice(tmp_path_factory):
    torch.manual_seed(0)
    config = flowtron_preset("tiny").replace(n_speakers=2)
    return Synthesizer.from_pretrained(save_model(tmp_path_factory.mktemp("f") / "f.safetensors", Flowtron(config),
                                                  speakers=("rms", "slt")))


def test_capabilities_say_what_each_voice_takes(mellotron_voice, flowtron_voice):
    assert {"pitch", "rhythm", "sing", "style", "speaker", "interpolate"} <= mellotron_voice.capabilities
    assert mellotron_voice.interpolation_modes == ("speakers", "style")
    assert {"sigma", "interpolate", "style", "speaker"} <= flowtron_voice.capabilities
    assert "pitch" not in flowtron_voice.capabilities


def test_mellotron_rhythm_sets_the_length_and_pitch_shift_needs_a_contour(mellotron_voice, speech_wav):
    text = "The quick brown fox jumps over the lazy dog."
    out = mellotron_voice.synthesize(text, speaker="slt", rhythm=speech_wav, pitch=speech_wav, seed=1,
                                     prenet_dropout=0.0)
    from tts.audio import load_audio

    reference_frames = 1 + len(load_audio(speech_wav, 22050)) // 256
    assert abs(out.mel.shape[1] - reference_frames) <= 3  # the reference's timing
    # No stop gate (random weights): 30 steps reach the reference's voiced frames.
    shifted = mellotron_voice.synthesize(text, speaker="slt", pitch=speech_wav, pitch_shift=12, seed=1,
                                         prenet_dropout=0.0, max_decoder_steps=30, gate_threshold=1.1)
    plain = mellotron_voice.synthesize(text, speaker="slt", pitch=speech_wav, seed=1, prenet_dropout=0.0,
                                       max_decoder_steps=30, gate_threshold=1.1)
    assert not np.allclose(shifted.mel, plain.mel)
    with pytest.raises(UserError, match="pitch_shift shifts a reference contour"):
        mellotron_voice.synthesize(text, pitch_shift=3)
    with pytest.raises(UserError, match="the text must be the reference's transcript"):
        mellotron_voice.synthesize("Something else.", rhythm=speech_wav, reference_text=text)


def test_mellotron_sings_a_score_part(mellotron_voice):
    sung = mellotron_voice.sing(SCORE, part=0, speaker="rms", seed=2, prenet_dropout=0.0)
    from tts.models.singing import read_score

    expected_frames = int(read_score(SCORE)[0].durations.sum())
    assert sung.mel.shape[1] == expected_frames and len(sung.audio) > 0 and sung.text
    with pytest.raises(UserError, match="no part 'bass'"):
        mellotron_voice.sing(SCORE, part="bass")


def test_flowtron_sigma_seed_and_style(flowtron_voice, speech_wav):
    first = flowtron_voice.synthesize("Hello there.", sigma=0.5, seed=3, max_decoder_steps=40)
    again = flowtron_voice.synthesize("Hello there.", sigma=0.5, seed=3, max_decoder_steps=40)
    np.testing.assert_array_equal(first.mel, again.mel)
    styled = flowtron_voice.synthesize("Hello there.", sigma=0.5, seed=3, max_decoder_steps=40, style=speech_wav,
                                       reference_text="The quick brown fox jumps over the lazy dog.")
    assert not np.allclose(styled.mel, first.mel)
    with pytest.raises(UserError, match="needs the reference's transcript"):
        flowtron_voice.synthesize("Hello there.", style=speech_wav)
    with pytest.raises(UserError, match="pitch needs Mellotron voices; this voice is flowtron"):
        flowtron_voice.synthesize("Hello there.", pitch=speech_wav)


def test_flowtron_interpolation_modes(flowtron_voice, speech_wav):
    steps = flowtron_voice.interpolate("Hello there.", mode="speakers", start="rms", end="slt", steps=3, seed=1)
    assert len(steps) == 3 and len({step.mel.shape for step in steps}) == 1
    samples = flowtron_voice.interpolate("Hello there.", mode="samples", steps=2, seed=1)
    assert not np.allclose(samples[0].mel, samples[1].mel)
    style = flowtron_voice.interpolate("Hello there.", mode="style", steps=2, seed=1, style=speech_wav,
                                       reference_text="The quick brown fox jumps over the lazy dog.")
    plain = flowtron_voice.interpolate("Hello there.", mode="samples", steps=2, seed=1)
    np.testing.assert_allclose(style[0].mel, plain[0].mel, atol=1e-5)  # weight 0 is the prior sample itself
    with pytest.raises(UserError, match="interpolation mode"):
        flowtron_voice.interpolate("Hello.", mode="sideways")


def test_speaker_vectors_and_style_vectors_stand_in_for_ids_and_styles(mellotron_voice):
    from tts.models.gst import StyleVectors

    model = mellotron_voice.voice.model
    tokens = torch.tensor([[5, 6, 7, 8, 9, 10]])
    options = dict(prenet_dropout=0.0, max_decoder_steps=12, gate_threshold=1.1)
    by_id = model.infer(tokens, speaker_id=1, **options).mel_postnet
    by_vector = model.infer(tokens, speaker_id=model.speaker_embedding.weight[1:2].detach(), **options).mel_postnet
    torch.testing.assert_close(by_vector, by_id)
    default_style = model.infer(tokens, speaker_id=1, style=None, **options).mel_postnet
    as_vector = model.infer(tokens, speaker_id=1, style=StyleVectors(model.gst.style(None, 1)), **options).mel_postnet
    torch.testing.assert_close(as_vector, default_style)
    with pytest.raises(ValueError, match=r"StyleVectors: expected shape \(batch, "):
        model.infer(tokens, speaker_id=1, style=StyleVectors(torch.zeros(1, 3)), **options)


def test_mellotron_interpolates_between_speakers_and_towards_a_style(mellotron_voice, speech_wav):
    steps = mellotron_voice.interpolate("Hello there.", mode="speakers", start="rms", end="slt", steps=3, seed=1)
    assert len(steps) == 3 and all(step.mel.shape[0] == 80 and len(step.audio) > 0 for step in steps)
    # The same seed draws the same prenet masks: a path that stays on rms matches at its start only.
    staying = mellotron_voice.interpolate("Hello there.", mode="speakers", start="rms", end="rms", steps=3, seed=1)
    np.testing.assert_allclose(steps[0].mel, staying[0].mel, atol=1e-5)
    last, other = steps[-1].mel, staying[-1].mel
    assert last.shape != other.shape or not np.allclose(last, other, atol=1e-3)
    styled = mellotron_voice.interpolate("Hello there.", mode="style", start="slt", steps=2, seed=1,
                                         style=speech_wav)
    assert len(styled) == 2
    with pytest.raises(UserError, match="style interpolation needs style= reference audio"):
        mellotron_voice.interpolate("Hello there.", mode="style", steps=2)
    with pytest.raises(UserError, match="takes speakers, style, found 'samples'; the others need a Flowtron voice"):
        mellotron_voice.interpolate("Hello there.", mode="samples", steps=2)


def test_tacotron2_voices_refuse_singing_and_interpolation(tmp_path):
    from tts.models.presets import tacotron2_preset
    from tts.models.tacotron2 import Tacotron2

    synth = Synthesizer.from_pretrained(save_model(tmp_path / "t.safetensors", Tacotron2(tacotron2_preset("tiny"))))
    with pytest.raises(UserError, match="sing needs Mellotron voices; this voice is tacotron2"):
        synth.sing(SCORE)
    assert synth.interpolation_modes == ()  # one speaker, no style tokens: nothing to walk between
    with pytest.raises(UserError, match=r"interpolate needs Flowtron voices \(every path\) or multi-speaker"):
        synth.interpolate("Hello.")
