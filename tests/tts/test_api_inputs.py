"""Hostile and mistaken input through the real Synthesizer (tiny random-weight voices) and `voxflow say`:
every refusal is a voxflow `UserError` whose message says what was wrong, where and what is allowed,
and the inputs that are converted (int16, uint8, stereo, 44.1 kHz, tensors) still work."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from tts import Synthesizer
from tts.cli import main
from tts.errors import AudioError, ConfigError, UserError
from tts.inputs import InputLimits, check_f0, reference_audio
from tts.loading import save_model

pytestmark = pytest.mark.filterwarnings("ignore:.*(max_decoder_steps|n_frames)")
SCORE = Path(__file__).parents[1] / "fixtures" / "scores" / "duet.musicxml"
RATE = 22050
QUICK = dict(seed=1, prenet_dropout=0.0, max_decoder_steps=4)  # random weights never stop by themselves


@pytest.fixture(scope="module")
def voice_path(tmp_path_factory):
    """A tiny Tacotron 2 with four GST tokens and two named speakers, as in test_api.py."""
    from tts.models.presets import tacotron2_preset
    from tts.models.tacotron2 import GSTConfig, Tacotron2

    config = tacotron2_preset("tiny").replace(
        gst=GSTConfig(reference_filters=(8, 8), reference_gru_dim=16, n_tokens=4, token_dim=32, n_heads=2),
        n_speakers=2, speaker_embedding_dim=8)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("voice") / "voice.safetensors"
    return save_model(path, Tacotron2(config), speakers=("rms", "slt"))


@pytest.fixture(scope="module")
def synth(voice_path) -> Synthesizer:
    return Synthesizer.from_pretrained(voice_path)


@pytest.fixture(scope="module")
def mellotron(tmp_path_factory) -> Synthesizer:
    from tts.models.mellotron import Mellotron, mellotron_preset

    torch.manual_seed(0)
    model = Mellotron(mellotron_preset("tiny").replace(n_speakers=2))
    return Synthesizer.from_pretrained(save_model(tmp_path_factory.mktemp("m") / "m.safetensors", model,
                                                  speakers=("rms", "slt")))


@pytest.fixture(scope="module")
def flowtron(tmp_path_factory) -> Synthesizer:
    from tts.models.flowtron import Flowtron, flowtron_preset

    torch.manual_seed(0)
    model = Flowtron(flowtron_preset("tiny").replace(n_speakers=2))
    return Synthesizer.from_pretrained(save_model(tmp_path_factory.mktemp("f") / "f.safetensors", model,
                                                  speakers=("rms", "slt")))


@pytest.fixture(scope="module")
def tone() -> np.ndarray:
    """1 s of a 220 Hz tone at 22050 Hz with a silent gap (unvoiced frames), float32 in [-0.5, 0.5]."""
    audio = 0.5 * np.sin(2 * np.pi * 220 * np.arange(RATE) / RATE)
    audio[8000:12000] = 0.0
    return audio.astype(np.float32)


# -- text ---------------------------------------------------------------------------------------


def test_text_must_be_a_str_without_control_characters(synth):
    with pytest.raises(UserError, match=r"text: expected a str, found bytes; decode it first"):
        synth.synthesize(b"Hello.")
    with pytest.raises(UserError, match="text: expected a str, found int"):
        synth.synthesize(42)
    with pytest.raises(UserError, match="control character U\\+0000 at position 3; text may hold newlines and tabs"):
        synth.synthesize("Hel\x00lo.")
    with pytest.raises(UserError, match="control character U\\+001B at position 0"):
        synth.synthesize("\x1b[31mred")
    with pytest.raises(UserError, match="lone surrogate U\\+DC80 at position 2 is not valid Unicode"):
        synth.synthesize(b"Hi\x80.".decode("utf-8", errors="surrogateescape"))
    with pytest.raises(UserError, match="texts\\[1\\]: a control character U\\+0007"):
        synth.synthesize_batch(["Fine.", "Bell\x07."])
    with pytest.raises(UserError, match="reference_text: expected a str, found bytes"):
        synth.synthesize("Hi.", reference_text=b"Hi.")
    # newlines, tabs, Windows line ends and non-ASCII letters are ordinary text
    out = synth.synthesize("Hello there.\r\n\tA caf\u00e9 \U0001F600 line.", **QUICK)
    assert len(out.audio) > 0 and np.isfinite(out.audio).all()


def test_text_length_limit_names_the_limit_and_is_configurable(synth):
    with pytest.raises(UserError, match="text is 50001 characters long; the Synthesizer takes at most 50000"):
        synth.synthesize("a" * 50_001)
    strict = synth.with_limits(InputLimits(max_text_chars=20, holder="my service"))
    with pytest.raises(UserError, match="text is 21 characters long; my service takes at most 20"):
        strict.synthesize("a" * 21)
    with pytest.raises(UserError, match="the texts are 30 characters long in all; my service takes at most 20"):
        strict.synthesize_batch(["a" * 15, "b" * 15])
    assert strict.voice is synth.voice and synth.limits == InputLimits()  # shared weights, the original untouched
    assert len(strict.synthesize("Short.", **QUICK).audio) > 0
    with pytest.raises(ConfigError, match="InputLimits.max_text_chars: expected a positive number, found 0"):
        InputLimits(max_text_chars=0)
    with pytest.raises(ConfigError, match="max_reference_seconds: expected a positive number, found nan"):
        InputLimits(max_reference_seconds=float("nan"))


# -- reference audio as a file --------------------------------------------------------------------


def test_reference_files_that_are_not_audio_are_named(synth, tmp_path, rng):
    text_file = tmp_path / "notes.wav"
    text_file.write_text("this is not audio\n")
    noise_file = tmp_path / "noise.wav"
    noise_file.write_bytes(rng.bytes(20_000))
    for path in (text_file, noise_file):
        with pytest.raises(AudioError, match=rf"style: {path}: not a readable audio file \(.*Format not recognised"):
            synth.synthesize("Hi.", style=path)
    with pytest.raises(AudioError, match=f"style: {tmp_path}: a directory, not an audio file"):
        synth.synthesize("Hi.", style=tmp_path)
    with pytest.raises(AudioError, match="no such audio file"):
        synth.synthesize("Hi.", style=tmp_path / "missing.wav")


def test_reference_files_with_bad_samples_or_lengths(synth, tmp_path):
    silent, loud, long = tmp_path / "silent.wav", tmp_path / "loud.wav", tmp_path / "long.flac"
    soundfile.write(silent, np.zeros(RATE, dtype=np.int16), RATE)
    soundfile.write(loud, np.full(RATE, 1e30, dtype=np.float32), RATE, subtype="FLOAT")
    soundfile.write(long, np.zeros(31 * 8000, dtype=np.int16), 8000)
    with pytest.raises(AudioError, match=f"style \\({silent}\\): every sample is zero"):
        synth.synthesize("Hi.", style=silent)
    with pytest.raises(AudioError, match="float samples must lie in \\[-1, 1\\], found a peak of 1e\\+30"):
        synth.synthesize("Hi.", pitch=None, style=loud)
    # refused from the header, before 31 s of samples are read
    with pytest.raises(AudioError, match=r"long.flac\) is 31.0 s long; the Synthesizer takes clips up to 30 s"):
        synth.synthesize("Hi.", style=long)


def test_reference_files_at_other_rates_and_channel_counts_work(synth, tone, tmp_path):
    stereo_44k = tmp_path / "stereo44k.wav"
    soundfile.write(stereo_44k, np.stack([np.repeat(tone, 2)] * 2, axis=1), 44100, subtype="PCM_16")
    out = synth.synthesize("Style test.", style=stereo_44k, **QUICK)
    plain = synth.synthesize("Style test.", **QUICK)
    assert np.isfinite(out.mel).all() and not np.allclose(out.mel, plain.mel)


# -- reference audio as an array -------------------------------------------------------------------


def test_integer_arrays_are_scaled_by_their_full_range(tone):
    int16 = (tone * 32767).astype(np.int16)
    np.testing.assert_allclose(reference_audio(int16, RATE, "style"), int16 / 32768.0, atol=1e-7)
    int32 = int16.astype(np.int32) << 16
    np.testing.assert_allclose(reference_audio(int32, RATE, "style"), int16 / 32768.0, atol=1e-7)
    uint8 = np.array([0, 128, 255, 64] * 2000, dtype=np.uint8)  # 8-bit WAV: 128 is silence
    np.testing.assert_allclose(reference_audio(uint8, RATE, "style")[:4], [-1.0, 0.0, 127 / 128, -0.5])
    stereo = np.stack([tone, np.zeros_like(tone)], axis=1)  # (n_samples, channels): averaged
    np.testing.assert_allclose(reference_audio(stereo, RATE, "style"), tone / 2, atol=1e-7)
    as_float64 = reference_audio(tone.astype(np.float64), RATE, "style")
    assert as_float64.dtype == np.float32 and np.array_equal(as_float64, tone)
    resampled = reference_audio((np.repeat(tone, 2), 44100), RATE, "style")  # (audio, rate)
    assert abs(len(resampled) - len(tone)) <= 1
    np.testing.assert_array_equal(reference_audio((44100, np.repeat(tone, 2)), RATE, "style"), resampled)


def test_converted_arrays_give_the_same_style_as_float_audio(synth, tone):
    reference = synth.synthesize("Style test.", style=tone, **QUICK)
    for converted in ((tone * 32768).clip(-32768, 32767).astype(np.int16), np.stack([tone, tone], axis=1),
                      torch.from_numpy(tone), tone.astype(np.float64).tolist()):
        out = synth.synthesize("Style test.", style=converted, **QUICK)
        np.testing.assert_allclose(out.mel, reference.mel, atol=1e-4)
    at_44k = synth.synthesize("Style test.", style=(np.repeat(tone, 2).astype(np.float32), 44100), **QUICK)
    assert at_44k.mel.shape == reference.mel.shape and np.isfinite(at_44k.mel).all()


@pytest.mark.parametrize("style, message", [
    (np.where(np.arange(RATE) == 500, np.nan, 0.1), r"style: sample 500 is nan; audio must be finite \(1 NaN"),
    (np.stack([np.full(RATE, 0.1), np.where(np.arange(RATE) == 7, np.inf, 0.1)], axis=1), r"sample \(7, 1\) is inf"),
    (np.zeros((2, RATE), dtype=np.float32), r"found shape \(2, 22050\); if it is \(channels, n_samples\), as librosa "
                                             r"returns, pass audio.T"),
    (np.zeros((2, 2, RATE)), r"expected samples of shape \(n_samples,\) or \(n_samples, channels\)"),
    (np.zeros(RATE, dtype=np.float32), "every sample is zero"),
    (np.full(RATE, 0.1, dtype=np.complex64), "expected integer or float samples, found dtype complex64"),
    (["a"] * 100, "expected integer or float samples, found dtype <U1"),
    (np.full(RATE, 3000.0), "found a peak of 3000 \\(integer samples stored as floats"),
    ((np.full(RATE, 0.1), None), "the sample rate is missing; pass \\(audio, sample_rate\\)"),
    ((np.full(RATE, 0.1), 0), r"style: sample rate: expected an integer in 4000..384000, found 0"),
    ((np.full(RATE, 0.1), 10 ** 9), r"sample rate: expected an integer in 4000..384000, found 1000000000"),
    ((np.zeros(0), RATE), r"style is 0.000 s long; the Synthesizer needs clips of at least 0.25 s \(it is empty\)"),
    (np.full(1000, 0.1), "style is 0.045 s long; the Synthesizer needs clips of at least 0.25 s"),
    (np.full(31 * RATE, 0.1, dtype=np.float32), "style is 31.0 s long; the Synthesizer takes clips up to 30 s"),
    (b"RIFF....WAVE", "found bytes; write the encoded audio to a file and pass its path"),
    (True, "found a bool"),
    (9, r"style token: expected an integer in 0..3, found 9"),
    ([0.5, np.nan, 0.0, 0.0], "style weights: weight 1 is nan; expected finite numbers in -10..10"),
    ([0.5, 0.5, 0.0], r"expected 4 numbers \(one per style token\), found float64 of shape \(3,\)"),
])
def test_bad_reference_arrays_and_style_values_are_refused(synth, style, message):
    with pytest.raises(UserError, match=message):
        synth.synthesize("Hi.", style=style)


def test_reference_duration_limit_is_configurable(synth, tone):
    three_seconds = np.tile(tone, 3)
    assert len(synth.synthesize("Hi.", style=three_seconds, **QUICK).audio) > 0
    with pytest.raises(AudioError, match="style is 3.0 s long; the Synthesizer takes clips up to 2 s"):
        synth.with_limits(InputLimits(max_reference_seconds=2)).synthesize("Hi.", style=three_seconds)


# -- numbers ------------------------------------------------------------------------------------


@pytest.mark.parametrize("options, message", [
    (dict(gate_threshold=float("nan")), "gate_threshold: expected a number in 0..2, found nan"),
    (dict(gate_threshold=float("inf")), "gate_threshold: expected a number in 0..2, found inf"),
    (dict(prenet_dropout=1.5), "prenet_dropout: expected a number in 0..1, found 1.5"),
    (dict(prenet_dropout="0.5"), "prenet_dropout: expected a number in 0..1, found str '0.5'"),
    (dict(max_decoder_steps=10 ** 9), r"max_decoder_steps: expected an integer in 1..1722 \(60 s of speech per "
                                      r"sentence for this voice\), found 1000000000"),
    (dict(max_decoder_steps=0), "max_decoder_steps: expected an integer in 1..1722"),
    (dict(max_decoder_steps=4.5), r"found 4.5 \(not a whole number\)"),
    (dict(seed=-1), "seed: expected an integer in 0..9223372036854775807, found -1"),
    (dict(seed=float("nan")), "seed: expected an integer in 0..9223372036854775807, found nan"),
    (dict(seed=2 ** 64), "found 18446744073709551616"),
    (dict(speaker=True), "speaker: expected a name or an id, found bool"),
    (dict(speaker=["rms"]), "speaker: expected a name or an id, found list"),
])
def test_numeric_options_out_of_range_are_refused_with_the_range(synth, options, message):
    with pytest.raises(UserError, match=message):
        synth.synthesize("Hi.", **options)


def test_decoder_step_cap_follows_the_limits(synth):
    # 2 s of speech = int(2 * 22050 / 256) = 172 mel frames, decoded frames_per_step at a time
    steps = synth.voice.steps_for(2.0)
    assert steps == 172 // synth.voice.frames_per_step
    with pytest.raises(UserError, match=rf"expected an integer in 1..{steps} \(2 s of speech per sentence"):
        synth.with_limits(InputLimits(max_sentence_seconds=2)).synthesize("Hi.", max_decoder_steps=steps + 1)
    assert synth.synthesize("Hi.", seed=2 ** 63 - 1, max_decoder_steps=np.int64(3)).mel.shape[1] > 0


def test_mellotron_pitch_references_and_f0(mellotron, tone):
    text = "Hello there."
    with pytest.raises(AudioError, match="pitch: sample 500 is nan"):
        mellotron.synthesize(text, pitch=np.where(np.arange(RATE) == 500, np.nan, tone))
    with pytest.raises(UserError, match="pitch_shift: expected a number in -24..24, found nan"):
        mellotron.synthesize(text, pitch=tone, pitch_shift=float("nan"))
    with pytest.raises(UserError, match="pitch_shift: expected a number in -24..24, found 100"):
        mellotron.synthesize(text, pitch=tone, pitch_shift=100)
    with pytest.raises(UserError, match="rhythm is 31.0 s long"):
        mellotron.synthesize(text, rhythm=np.tile(tone, 31))
    # int16 stereo at 44.1 kHz is converted: it steers the voice as the float original does, far
    # closer than another tune does
    decode = dict(seed=1, prenet_dropout=0.0, max_decoder_steps=20)
    converted = ((np.stack([np.repeat(tone, 2)] * 2, axis=1) * 32767).astype(np.int16), 44100)
    float_out = mellotron.synthesize(text, pitch=tone, **decode)
    int_out = mellotron.synthesize(text, pitch=converted, **decode)
    other_tune = mellotron.synthesize(text, pitch=(0.5 * np.sin(np.arange(RATE) * 2 * np.pi * 330 / RATE)), **decode)
    assert int_out.mel.shape == float_out.mel.shape and np.isfinite(int_out.mel).all()
    assert np.abs(int_out.mel - float_out.mel).mean() < 0.25 * np.abs(other_tune.mel - float_out.mel).mean()


def test_f0_contours_with_nan_or_negative_values_are_refused():
    np.testing.assert_array_equal(check_f0(np.array([0.0, 110.0, 220.5])), np.float32([0.0, 110.0, 220.5]))
    with pytest.raises(UserError, match=r"f0: frame 2 is nan; F0 must be finite and >= 0 Hz \(2 bad frames\)"):
        check_f0(np.array([0.0, 110.0, np.nan, -5.0]))
    with pytest.raises(UserError, match="pitch contour: frame 0 is inf"):
        check_f0(torch.tensor([float("inf"), 100.0]), "pitch contour")
    with pytest.raises(UserError, match=r"expected a 1-D array of frequencies in Hz, found float64 of shape \(2, 2\)"):
        check_f0(np.zeros((2, 2)))


def test_singing_options_and_length(mellotron):
    with pytest.raises(UserError, match="bpm: expected a number in 10..500, found nan"):
        mellotron.sing(SCORE, bpm=float("nan"))
    with pytest.raises(UserError, match="score: expected the path of a MusicXML file, found bytes"):
        mellotron.sing(b"<score-partwise/>")
    short = mellotron.with_limits(InputLimits(max_song_seconds=2))
    with pytest.raises(UserError, match="duet.musicxml: part 'Soprano' lasts 3 s; the Synthesizer sings up to 2 s"):
        short.sing(SCORE, part=0)


def test_flowtron_sigma_steps_and_style_values(flowtron, tone):
    with pytest.raises(UserError, match="sigma: expected a number in 0..2, found nan"):
        flowtron.synthesize("Hi.", sigma=float("nan"))
    with pytest.raises(UserError, match="sigma: expected a number in 0..2, found inf"):
        flowtron.synthesize("Hi.", sigma=float("inf"))
    with pytest.raises(UserError, match=r"max_decoder_steps: expected an integer in 1..5167 \(60 s"):
        flowtron.synthesize("Hi.", max_decoder_steps=10 ** 7)
    with pytest.raises(UserError, match="this flowtron voice copies style from reference audio, not token weights"):
        flowtron.synthesize("Hi.", style=[1.0, 0.0])
    with pytest.raises(UserError, match="steps: expected an integer in 2..32, found nan"):
        flowtron.interpolate("Hi.", steps=float("nan"))
    with pytest.raises(UserError, match="sigma: expected a number in 0..2, found 5"):
        flowtron.interpolate("Hi.", sigma=5)
    with pytest.raises(AudioError, match="style: sample 10 is nan"):
        flowtron.interpolate("Hi.", mode="style", style=np.where(np.arange(RATE) == 10, np.nan, tone),
                             reference_text="Hi.")


# -- voxflow say ------------------------------------------------------------------------------------


def test_say_reports_bad_text_sources_and_options_in_one_line(voice_path, tmp_path, capsys, monkeypatch):
    out = str(tmp_path / "x.wav")

    def error_of(*argv: str) -> str:
        assert main(["say", *argv, "-o", out, "--model", str(voice_path)]) == 1
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1
        return lines[0]

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"Hi \xff\xfe there")))
    assert "standard input: not UTF-8 text (byte 3)" in error_of("-")
    assert f"{tmp_path}: no such text file (a directory)" in error_of("--text-file", str(tmp_path))
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"Hello\x00world")
    assert "text: a control character U+0000 at position 5" in error_of("--text-file", str(binary))
    large = tmp_path / "large.txt"
    large.write_text("word " * 10)  # 50 bytes: refused before it is decoded
    assert "large.txt: over 40 bytes, more text than --max-chars 10 allows" in error_of(
        "--text-file", str(large), "--max-chars", "10")
    assert "text is 16 characters long; the Synthesizer takes at most 10" in error_of(
        "Sixteen letters.", "--max-chars", "10")
    assert "InputLimits.max_text_chars: expected a positive number, found 0" in error_of("Hi.", "--max-chars", "0")
    assert "seed: expected an integer in 0..9223372036854775807, found -1" in error_of("Hi.", "--seed", "-1")
