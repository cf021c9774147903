"""F0 extraction (NVIDIA Mellotron's YIN, vectorised), voicing, statistics, shifting, resampling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from tts.audio import load_audio
from tts.conditioning import (extract_f0, f0_statistics, match_speaker, normalize_f0, resample_f0, shift_pitch,
                              voiced, yin)

SR = 22050
GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "mellotron_tiny_nvidia.safetensors"


def _slow_yin(audio, sr=SR, window=1024, hop=256, f0_min=80.0, f0_max=880.0, threshold=0.25):
    """The textbook per-frame YIN (de Cheveigné & Kawahara 2002, steps 2-4) with Mellotron's framing."""
    tau_min, tau_max = int(sr / f0_max), int(sr / f0_min)
    f0 = []
    for start in range(0, len(audio) - window, hop):
        frame = np.asarray(audio[start:start + window], dtype=np.float64)
        diff = np.array([np.sum((frame[:window - tau] - frame[tau:]) ** 2) for tau in range(tau_max)])
        with np.errstate(divide="ignore", invalid="ignore"):
            cmnd = np.concatenate(([1.0], diff[1:] * np.arange(1, tau_max) / np.cumsum(diff[1:])))
        pitch = 0.0
        for tau in range(tau_min, tau_max):
            if cmnd[tau] < threshold:
                while tau + 1 < tau_max and cmnd[tau + 1] < cmnd[tau]:
                    tau += 1
                pitch = sr / tau
                break
        f0.append(pitch)
    return np.pad(np.array(f0, dtype=np.float32), (2, 2))


def _tone(hz, seconds=0.6, amplitude=0.5):
    t = np.arange(int(SR * seconds)) / SR
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


# NVIDIA's YIN has whole-sample lags (no parabolic interpolation): 700 Hz reads as 22050 / 31 =
# 711 Hz. Tones at sample_rate / lag, and low ones, are within 1 %.
@pytest.mark.parametrize("hz", [110.0, 220.5, 441.0, 630.0])
def test_pure_tone_is_voiced_at_its_frequency(hz):
    audio = _tone(hz)
    f0 = extract_f0(audio)
    assert f0.shape == (1 + len(audio) // 256,) and f0.dtype == np.float32
    inner = f0[2:-3]  # NVIDIA's two zero frames each side, and the collate's trailing zero
    assert voiced(inner).all()
    np.testing.assert_allclose(inner, hz, rtol=0.01)
    assert (f0[:2] == 0).all()


def test_two_tone_signal_gives_the_common_fundamental():
    audio = _tone(200.0) + _tone(300.0)  # harmonics 2 and 3 of 100 Hz
    f0 = extract_f0(audio)[2:-3]
    np.testing.assert_allclose(f0, 100.0, rtol=0.01)


def test_noise_and_silence_are_unvoiced(rng):
    assert not voiced(extract_f0(rng.normal(0, 0.1, SR).astype(np.float32))).any()
    assert not voiced(extract_f0(np.zeros(SR, dtype=np.float32))).any()
    assert extract_f0(np.zeros(100, dtype=np.float32)).tolist() == [0.0]  # shorter than one window


def test_vectorised_yin_equals_the_per_frame_loop(rng):
    t = np.arange(SR) / SR
    chirp = 0.3 * np.sin(2 * np.pi * (90 * t + 150 * t ** 2)) + 0.05 * rng.normal(size=SR)
    mixed = np.concatenate([chirp, rng.normal(0, 0.1, 4000), np.zeros(3000), _tone(333.0, 0.3)])
    np.testing.assert_array_equal(yin(mixed), _slow_yin(mixed))


def test_yin_matches_nvidias_code_on_a_corpus_clip(small_corpus):
    with safe_open(str(GOLDEN), framework="np") as file:
        expected = file.get_tensor("yin.rms_00001.f0")
    audio = load_audio(small_corpus / "wavs" / "rms_00001.wav")
    ours = extract_f0(audio)
    n = min(len(ours), len(expected))
    assert abs(len(ours) - len(expected)) <= 1 and voiced(expected).sum() > 50
    np.testing.assert_allclose(ours[:n], expected[:n], rtol=1e-6)  # measured: identical


@pytest.mark.slow  # librosa's pYIN compiles with numba on first use (~5 s)
def test_pyin_option_finds_a_tone():
    f0 = extract_f0(_tone(220.0, 0.5), method="pyin")
    assert f0.shape == (1 + int(SR * 0.5) // 256,)
    np.testing.assert_allclose(np.median(f0[voiced(f0)]), 220.0, rtol=0.02)
    with pytest.raises(ValueError, match="method"):
        extract_f0(_tone(220.0), method="crepe")


def test_shift_by_12_semitones_doubles_and_keeps_unvoiced():
    f0 = np.array([0.0, 100.0, 220.0, 0.0], dtype=np.float32)
    np.testing.assert_allclose(shift_pitch(f0, 12), [0.0, 200.0, 440.0, 0.0], rtol=1e-6)
    np.testing.assert_allclose(shift_pitch(f0, -12, scale=2.0), f0, rtol=1e-6)
    assert torch.allclose(shift_pitch(torch.tensor(f0), 7), torch.tensor(f0) * 2 ** (7 / 12))


def test_speaker_statistics_normalise_and_move_between_ranges():
    low = [np.array([0, 100, 100 * np.e, 0], dtype=np.float32), np.array([100 / np.e], dtype=np.float32)]
    stats = f0_statistics(low)
    assert stats.n_voiced == 3 and stats.mean == pytest.approx(np.log(100), abs=1e-6)
    assert stats.std == pytest.approx(np.sqrt(2 / 3), abs=1e-6)
    z = normalize_f0(low[0], stats)
    np.testing.assert_allclose(z, [0, 0, 1 / np.sqrt(2 / 3), 0], atol=1e-5)
    high = f0_statistics([np.array([200.0, 200 * np.e ** 2, 200 / np.e ** 2])])
    moved = match_speaker(low[0], stats, high)
    np.testing.assert_allclose(moved, [0, 200, 200 * np.e ** 2, 0], rtol=1e-4)
    assert high.median_hz == pytest.approx(200.0)
    with pytest.raises(ValueError, match="voiced"):
        f0_statistics([np.zeros(5)])


def test_resample_to_a_frame_count_never_blends_with_unvoiced():
    f0 = np.array([0, 0, 200, 200, 300, 0], dtype=np.float32)
    stretched = resample_f0(f0, 12)
    assert set(stretched.tolist()) <= {0.0, 200.0, 300.0} and len(stretched) == 12
    np.testing.assert_array_equal(stretched[::2], f0)
    torch.testing.assert_close(resample_f0(torch.tensor(f0)[None], 3), torch.tensor([[0.0, 200.0, 0.0]]))
