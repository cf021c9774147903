"""Shared fixtures: real speech made by flite, seeded generators, the committed small corpus."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory) -> Path:
    """About 3 s of real speech (flite's rms voice), written as 22050 Hz 16-bit mono."""
    if shutil.which("flite") is None:
        pytest.fail("flite is not installed; run `bash scripts/test.sh`, which installs the test dependencies")
    folder = tmp_path_factory.mktemp("speech")
    raw = folder / "raw.wav"
    subprocess.run(["flite", "-voice", "rms", "-t", "The quick brown fox jumps over the lazy dog.", "-o", str(raw)],
                   check=True, timeout=60)
    import librosa

    audio, rate = soundfile.read(raw, dtype="float32")
    audio = librosa.resample(audio, orig_sr=rate, target_sr=22050, res_type="soxr_hq")
    path = folder / "speech.wav"
    soundfile.write(path, audio, 22050, subtype="PCM_16")
    return path


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tests run tiny models, which are several times faster on one thread than on two shared
    cores (thread hand-offs cost more than they gain); benchmarks pick their own thread counts."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def generator() -> torch.Generator:
    return torch.Generator().manual_seed(1234)


@pytest.fixture(scope="session")
def small_corpus() -> Path:
    """The committed 16-clip, 2-speaker corpus (see tests/fixtures/README.md for how it was made)."""
    path = FIXTURES / "corpus_small"
    assert (path / "metadata.csv").is_file(), "tests/fixtures/corpus_small is missing from the checkout"
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
