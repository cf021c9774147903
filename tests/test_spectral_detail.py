"""benchmarks/spectral_detail.py: detail ratios that see blur where there is blur, and a run on the bundled voice."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import uniform_filter1d

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "spectral_detail.py"


@pytest.fixture(scope="module")
def spectral_detail():
    spec = importlib.util.spec_from_file_location("spectral_detail", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _mels(seed: int, count: int = 3) -> list[np.ndarray]:
    """Log-mel-like arrays with structure across frequency and time: a smooth envelope that moves, plus ripple."""
    rng = np.random.default_rng(seed)
    mels = []
    for _ in range(count):
        n_frames = int(rng.integers(80, 120))
        envelope = uniform_filter1d(rng.normal(0, 2, (80, n_frames)), 15, axis=0)
        envelope = uniform_filter1d(envelope, 5, axis=1)
        mels.append(envelope + rng.normal(0, 0.7, (80, n_frames)) - 5.0)
    return mels


def test_a_voice_identical_to_its_teacher_has_all_its_detail(spectral_detail):
    mels = _mels(0)
    ratios = spectral_detail.detail_ratios(mels, mels)
    for kind in spectral_detail.KINDS:
        assert ratios[kind] == pytest.approx({"all": 1.0, "low": 1.0, "middle": 1.0, "high": 1.0})


def test_blur_across_frequency_and_over_time_each_shows_in_its_own_ratio(spectral_detail):
    teacher = _mels(1)
    across = spectral_detail.detail_ratios([uniform_filter1d(m, 5, axis=0) for m in teacher], teacher)
    over_time = spectral_detail.detail_ratios([uniform_filter1d(m, 5, axis=1) for m in teacher], teacher)
    # a blur across bands flattens the peaks between neighbours; a blur over frames, the steps between frames
    assert across["across_frequency"]["all"] < min(across["frame_to_frame"]["all"],
                                                   over_time["across_frequency"]["all"])
    assert over_time["frame_to_frame"]["all"] < min(over_time["across_frequency"]["all"],
                                                    across["frame_to_frame"]["all"])
    # every contrast doubled (log magnitudes times two) is twice the detail of every kind
    louder = spectral_detail.detail_ratios([2 * m for m in teacher], teacher)
    assert all(louder[kind]["all"] == pytest.approx(2.0) for kind in spectral_detail.KINDS)


def test_a_run_on_the_bundled_voice_writes_a_ratio_per_speaker_kind_and_band(spectral_detail, tmp_path, capsys):
    if shutil.which("flite") is None:  # the teachers are flite voices
        pytest.fail("flite is not installed; run `bash scripts/test.sh`, which installs the test dependencies")
    out = tmp_path / "detail.json"
    assert spectral_detail.main(["--sentences", "2", "--speakers", "rms,slt", "--threads", "1",
                                 "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [row["speaker"] for row in result["rows"]] == ["rms", "slt"] and len(result["sentences"]) == 2
    for row in result["rows"]:
        for kind in spectral_detail.KINDS:
            assert set(row[kind]) == {"all", "low", "middle", "high"}
            assert all(0.05 < value < 5 for value in row[kind].values())
    assert "| rms |" in capsys.readouterr().out
