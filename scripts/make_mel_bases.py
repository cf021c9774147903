"""Write tts/mel_bases.safetensors: librosa's mel filterbanks for the audio settings voices use,
precomputed so that loading a voice does not import librosa.filters (scipy.signal, numba).

    python scripts/make_mel_bases.py      # after changing SETTINGS or upgrading librosa
"""

from __future__ import annotations

from safetensors.numpy import save_file

from tts.audio import MEL_BASES_FILE, AudioConfig, compute_mel_basis, mel_basis_key

# NVIDIA's settings, shared by Tacotron 2, Mellotron, Flowtron, WaveGlow and the default voice.
SETTINGS = [AudioConfig()]


def main() -> None:
    bases = {}
    for config in SETTINGS:
        settings = (config.sample_rate, config.n_fft, config.n_mels, config.fmin, config.fmax)
        bases[mel_basis_key(*settings)] = compute_mel_basis(*settings)
    save_file(bases, MEL_BASES_FILE)
    print(f"wrote {MEL_BASES_FILE}: {', '.join(bases)}")


if __name__ == "__main__":
    main()
