"""The intelligibility oracle: pocketsphinx hears real speech, and WER is scored on normalized words."""

from __future__ import annotations

import subprocess

import pytest

from tts.audio import load_audio
from tts.intelligibility import normalize_for_scoring, transcribe, word_error_rate


def test_scoring_normalizes_numbers_case_and_punctuation():
    assert normalize_for_scoring("At 10:05, Dr. Smith's well-known cat!") == "at ten oh five doctor smith's well known cat"
    assert word_error_rate(["Hello, world!"], ["hello word"]) == pytest.approx(0.5)
    assert word_error_rate(["one two three four"], [""]) == pytest.approx(1.0)


@pytest.mark.slow
def test_recogniser_understands_real_speech_and_not_noise(tmp_path, rng):
    sentence = "The quick brown fox jumps over the lazy dog."
    wav = tmp_path / "fox.wav"
    subprocess.run(["flite", "-voice", "rms", "-t", sentence, "-o", str(wav)], check=True, timeout=60)
    heard = transcribe(load_audio(wav, 16000), 16000)
    assert word_error_rate([sentence], [heard]) <= 0.25, heard
    noise = (0.1 * rng.standard_normal(16000 * 2)).astype("float32")
    assert word_error_rate([sentence], [transcribe(noise, 16000)]) >= 0.75
