"""The audio contract: loading any file, the mel transform, and its parity with NVIDIA's STFT."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import scipy.signal
import soundfile
import torch

from tts.audio import AudioConfig, MelTransform, load_audio, mel_spectrogram, save_audio
from tts.errors import AudioError, ConfigError


def _nvidia_style_log_mel(audio: np.ndarray, config: AudioConfig) -> np.ndarray:
    """An independent float64 log-mel the way NVIDIA's TacotronSTFT computes it.

    Reflect-pad n_fft/2 each side, frame with the hop, window with scipy's periodic Hann,
    DFT, linear magnitude sqrt(re² + im²), librosa Slaney filterbank, log(clamp(·, 1e-5)).
    """
    pad = config.n_fft // 2
    padded = np.pad(audio.astype(np.float64), pad, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, config.n_fft)[:: config.hop_length]
    window = scipy.signal.get_window("hann", config.win_length, fftbins=True)
    spectrum = np.fft.rfft(frames * window, axis=1)
    magnitude = np.sqrt(spectrum.real**2 + spectrum.imag**2).T
    basis = librosa.filters.mel(sr=config.sample_rate, n_fft=config.n_fft, n_mels=config.n_mels,
                                fmin=config.fmin, fmax=config.fmax)
    return np.log(np.maximum(basis @ magnitude, config.log_floor))


def test_mel_matches_nvidia_stft_on_real_speech(speech_wav):
    config = AudioConfig()
    audio = load_audio(speech_wav, config.sample_rate)
    expected = _nvidia_style_log_mel(audio, config)
    mel = mel_spectrogram(audio).numpy()
    assert mel.shape == expected.shape == (80, 1 + len(audio) // 256)
    assert np.abs(mel - expected).max() < 1e-4


def test_mel_is_batched_and_equals_per_item(speech_wav):
    audio = torch.from_numpy(load_audio(speech_wav))
    other = audio.flip(0) * 0.5
    batch = mel_spectrogram(torch.stack([audio, other]))
    assert batch.shape == (2, 80, 1 + len(audio) // 256)
    torch.testing.assert_close(batch[0], mel_spectrogram(audio))
    torch.testing.assert_close(batch[1], mel_spectrogram(other))


def test_mel_of_silence_is_the_log_floor():
    mel = mel_spectrogram(np.zeros(22050, dtype=np.float32))
    torch.testing.assert_close(mel, torch.full_like(mel, float(np.log(1e-5))))


def test_mel_transform_state_dict_is_empty():
    # The window and filterbank derive from the config, so they must never enter a checkpoint.
    assert MelTransform().state_dict() == {}


def test_inverse_stft_reconstructs_audio(speech_wav):
    transform = MelTransform()
    audio = torch.from_numpy(load_audio(speech_wav))
    spectrum = torch.stft(audio, 1024, 256, 1024, transform.window.float(), center=True, return_complex=True)
    rebuilt = transform.inverse(spectrum.abs(), spectrum.angle(), length=len(audio))
    torch.testing.assert_close(rebuilt, audio, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    "subtype, rate, channels, extension",
    [("PCM_16", 22050, 1, "wav"), ("PCM_32", 44100, 2, "wav"), ("FLOAT", 16000, 1, "wav"),
     ("PCM_24", 48000, 1, "flac"), ("VORBIS", 22050, 2, "ogg")],
)
def test_load_audio_reads_any_format_as_mono_float32(tmp_path, subtype, rate, channels, extension):
    seconds = 0.5
    time = np.arange(int(rate * seconds)) / rate
    tone = 0.5 * np.sin(2 * np.pi * 440 * time)
    data = np.stack([tone] * channels, axis=1) if channels > 1 else tone
    path = tmp_path / f"tone.{extension}"
    soundfile.write(path, data, rate, subtype=subtype)
    audio = load_audio(path, 22050)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) - 22050 * seconds) <= 2
    # The tone survives resampling and down-mixing at its level and pitch.
    assert 0.45 < np.abs(audio).max() < 0.55
    spectrum = np.abs(np.fft.rfft(audio))
    assert abs(np.argmax(spectrum) * 22050 / len(audio) - 440) < 3


def test_load_audio_errors_name_the_file(tmp_path):
    with pytest.raises(AudioError, match="missing.wav: no such audio file"):
        load_audio(tmp_path / "missing.wav")
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"this is not a wav file at all" * 10)
    with pytest.raises(AudioError, match="garbage.wav: not a readable audio file"):
        load_audio(garbage)
    empty = tmp_path / "empty.wav"
    soundfile.write(empty, np.zeros(0, dtype=np.float32), 22050)
    with pytest.raises(AudioError, match="empty.wav: the audio file contains no samples"):
        load_audio(empty)
    nan = tmp_path / "nan.wav"
    soundfile.write(nan, np.array([0.0, np.nan, 0.1], dtype=np.float32), 22050, subtype="FLOAT")
    with pytest.raises(AudioError, match="nan.wav: the audio contains NaN"):
        load_audio(nan)


def test_save_audio_round_trips_and_refuses_nan(tmp_path, speech_wav):
    audio = load_audio(speech_wav)
    for name in ("out.wav", "out.flac"):
        save_audio(tmp_path / name, audio, 22050)
        assert np.abs(load_audio(tmp_path / name) - audio).max() < 2 / 32768
    with pytest.raises(AudioError, match="NaN"):
        save_audio(tmp_path / "bad.wav", np.array([np.nan], dtype=np.float32), 22050)


def test_audio_config_round_trips_and_validates():
    config = AudioConfig(sample_rate=16000, fmax=7600.0)
    assert AudioConfig.from_json(config.to_json()) == config
    with pytest.raises(ConfigError, match="fmax"):
        AudioConfig(sample_rate=16000, fmax=8000.5)
    with pytest.raises(ConfigError, match="unknown config key sampling_rate"):
        AudioConfig.from_dict({"sampling_rate": 22050})


def test_the_shipped_mel_filterbanks_are_librosas_and_spare_its_import():
    import subprocess
    import sys

    from safetensors.numpy import load_file

    from tts.audio import MEL_BASES_FILE, compute_mel_basis, mel_basis_key, mel_filterbank

    config = AudioConfig()
    settings = (config.sample_rate, config.n_fft, config.n_mels, config.fmin, config.fmax)
    shipped = load_file(MEL_BASES_FILE)
    assert mel_basis_key(*settings) in shipped
    # when this fails after a librosa upgrade, regenerate with scripts/make_mel_bases.py
    np.testing.assert_array_equal(shipped[mel_basis_key(*settings)], compute_mel_basis(*settings))
    np.testing.assert_array_equal(mel_filterbank(config).numpy(), compute_mel_basis(*settings))
    other = AudioConfig(n_mels=40)  # not shipped: computed by librosa
    np.testing.assert_array_equal(mel_filterbank(other).numpy(),
                                  compute_mel_basis(22050, 1024, 40, other.fmin, other.fmax))
    script = ("import sys; from tts.audio import AudioConfig, mel_spectrogram; import numpy as np; "
              "mel_spectrogram(np.zeros(22050, dtype=np.float32), AudioConfig()); "
              "assert 'librosa.filters' not in sys.modules and 'scipy.signal' not in sys.modules")
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
