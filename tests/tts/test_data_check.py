"""`voxflow data check`: every problem reported with file, line, kind and severity; exit codes; JSON."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import soundfile

from tts.cli import main
from tts.data_check import check_dataset

# One line per problem class: (clip id, text, speaker, audio). Audio is a (seconds, rate, amplitude)
# tone, or "missing", "corrupt", "empty"; line 10 reuses line 1's file, line 11 repeats its text.
_LINES = (
    ("ok1", "The first sentence.", "ann", (1.0, 22050, 0.3)),
    ("missing", "A missing file.", "ann", "missing"),
    ("corrupt", "Random bytes with a wav suffix.", "ann", "corrupt"),
    ("empty", "No samples at all.", "bob", "empty"),
    ("notext", "", "bob", (1.0, 22050, 0.3)),
    ("snow", "A snowman \u2603 and a # sign.", "bob", (1.0, 22050, 0.3)),
    ("short", "Short.", "ann", (0.2, 22050, 0.3)),
    ("long", "A very long clip.", "ann", (20.5, 22050, 0.3)),
    ("rate", "Recorded at a higher rate.", "bob", (1.0, 44100, 0.3)),
    ("ok1", "The same file again.", "bob", None),
    ("dup", "The  first sentence.", "bob", (1.0, 22050, 0.3)),
    ("nospeaker", "Nobody said this.", "", (1.0, 22050, 0.3)),
    ("zero", "All zeros.", "ann", (1.0, 22050, 0.0)),
    ("clip", "Far too loud.", "ann", (1.0, 22050, 2.0)),
)

_EXPECTED = {
    (2, "error", "missing-audio"),
    (3, "error", "unreadable-audio"),
    (4, "error", "unreadable-audio"),
    (5, "error", "empty-text"),
    (6, "error", "unknown-characters"),
    (7, "error", "too-short"),
    (8, "error", "too-long"),
    (9, "warning", "sample-rate"),
    (10, "error", "duplicate-audio"),
    (11, "warning", "duplicate-text"),
    (12, "error", "missing-speaker"),
    (13, "error", "silent"),
    (14, "warning", "clipping"),
}


def _tone(path, seconds, rate=22050, amplitude=0.3):
    time = np.arange(int(rate * seconds)) / rate
    audio = np.clip(amplitude * np.sin(2 * np.pi * 220 * time), -1.0, 1.0)  # amplitude > 1 clips
    soundfile.write(path, audio, rate, subtype="PCM_16")


def _write_audio(path, audio, rng):
    if audio == "corrupt":
        path.write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    elif audio == "empty":
        soundfile.write(path, np.zeros(0, dtype=np.float32), 22050, subtype="PCM_16")
    elif isinstance(audio, tuple):
        _tone(path, *audio)


@pytest.fixture(scope="module")
def broken_set(tmp_path_factory):
    """An LJSpeech folder with exactly one instance of each problem, plus the same lines as a filelist."""
    folder = tmp_path_factory.mktemp("broken")
    (folder / "wavs").mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for clip_id, text, speaker, audio in _LINES:
        _write_audio(folder / "wavs" / f"{clip_id}.wav", audio, rng)
        rows.append((clip_id, text, speaker))
    (folder / "metadata.csv").write_text("".join(f"{i}|{t}|{t}|{s}\n" for i, t, s in rows), encoding="utf-8")
    (folder / "train.txt").write_text("".join(f"wavs/{i}.wav|{t}|{s}\n" for i, t, s in rows), encoding="utf-8")
    return folder


@pytest.fixture
def clean_set(tmp_path):
    (tmp_path / "wavs").mkdir()
    texts = ("Printing, in the only sense with which we are at present concerned.", "Differs from most arts.",
             "It was the first book printed with movable types.")
    for i, text in enumerate(texts):
        _tone(tmp_path / "wavs" / f"c{i}.wav", 0.6 + 0.2 * i)
    (tmp_path / "metadata.csv").write_text("".join(f"c{i}|{t}|{t}\n" for i, t in enumerate(texts)), encoding="utf-8")
    return tmp_path


def _found(report):
    return {(finding.line, finding.severity, finding.kind) for finding in report.findings}


def test_reports_every_problem_with_its_line_kind_and_severity(broken_set):
    report = check_dataset(broken_set)
    assert _found(report) == _EXPECTED
    metadata = broken_set / "metadata.csv"
    assert all(finding.source == metadata for finding in report.findings)
    missing = next(finding for finding in report.findings if finding.kind == "missing-audio")
    assert str(missing) == f"{metadata}:2: error missing-audio: wavs/missing.wav does not exist"
    by_kind = {finding.kind: finding.message for finding in report.findings}
    # '#' survives english_cleaners and is dropped; unidecode deletes the snowman: both are lost.
    assert by_kind["unknown-characters"].startswith("'#' (U+0023) '☃' (U+2603) not in the tacotron2 symbol set")
    assert "line 1" in by_kind["duplicate-audio"] and "line 1" in by_kind["duplicate-text"]
    assert "44100 Hz" in by_kind["sample-rate"]
    assert [finding.line for finding in report.findings] == sorted(finding.line for finding in report.findings)


def test_summary_counts_utterances_hours_speakers_and_kinds(broken_set):
    report = check_dataset(broken_set)
    assert report.n_utterances == 14
    assert len(report.errors) == 10 and len(report.warnings) == 3
    # Readable lines: nine of 1 s (line 10 counts line 1's file again), 0.2 s and 20.5 s.
    assert report.seconds == pytest.approx(9 * 1.0 + 0.2 + 20.5, abs=1e-3)
    assert report.speakers["ann"] == 7 and report.speakers["bob"] == 6 and report.speakers[None] == 1
    summary = report.summary()
    assert "14 utterances" in summary and "speakers: 2 (ann: 7, bob: 6; 1 line with no speaker)" in summary
    assert "errors: 10 (unreadable-audio 2," in summary and "warnings: 3" in summary


def test_limits_and_expected_rate_are_options(broken_set):
    report = check_dataset(broken_set, sample_rate=44100, min_seconds=0.1, max_seconds=30.0)
    kinds = {(finding.line, finding.kind) for finding in report.findings}
    assert (7, "too-short") not in kinds and (8, "too-long") not in kinds
    # Every readable 22050 Hz file now differs from the expected rate; the 44.1 kHz one no longer does.
    assert (9, "sample-rate") not in kinds and (1, "sample-rate") in kinds and (14, "sample-rate") in kinds


def test_cli_prints_findings_and_summary_and_fails(broken_set, capsys):
    assert main(["data", "check", str(broken_set), "--quiet"]) == 1
    out = capsys.readouterr().out
    metadata = broken_set / "metadata.csv"
    assert f"{metadata}:2: error missing-audio: wavs/missing.wav does not exist" in out
    assert f"{metadata}:14: warning clipping:" in out
    assert "14 utterances" in out and "errors: 10" in out and "warnings: 3" in out


def test_cli_checks_an_nvidia_filelist_relative_to_its_folder(broken_set, capsys):
    filelist = broken_set / "train.txt"
    assert main(["data", "check", str(filelist), "--quiet", "--symbol-set", "flowtron"]) == 1
    out = capsys.readouterr().out
    # flowtron_cleaners keep the snowman, which the 185-symbol set lacks; it has '#'.
    assert f"{filelist}:6: error unknown-characters: '\u2603' (U+2603) not in the flowtron symbol set" in out
    assert f"{filelist}:2: error missing-audio: wavs/missing.wav does not exist" in out
    assert f"{filelist}:10: error duplicate-audio: wavs/ok1.wav is also used on line 1" in out
    assert f"{filelist}:1:" not in out  # line 1's file was found beside the filelist
    finding_lines = [line for line in out.splitlines() if re.match(rf"{re.escape(str(filelist))}:\d+: ", line)]
    assert len(finding_lines) == len(_EXPECTED)


def test_clean_set_passes(clean_set, capsys):
    assert main(["data", "check", str(clean_set)]) == 0
    captured = capsys.readouterr()
    assert "3 utterances" in captured.out and "errors: 0" in captured.out and "warnings: 0" in captured.out
    assert "error" not in captured.out.replace("errors: 0", "")


def test_warnings_alone_pass_unless_strict(clean_set, capsys):
    _tone(clean_set / "wavs" / "c1.wav", 0.8, rate=16000)
    assert main(["data", "check", str(clean_set), "-q"]) == 0
    assert main(["data", "check", str(clean_set), "-q", "--strict"]) == 1
    assert "warning sample-rate: wavs/c1.wav is 16000 Hz, expected 22050 Hz" in capsys.readouterr().out


def test_json_report_is_parseable(broken_set, tmp_path, capsys):
    report_path = tmp_path / "report.json"
    assert main(["data", "check", str(broken_set), "-q", "--json", str(report_path)]) == 1
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert report["utterances"] == 14 and report["speakers"] == {"ann": 7, "bob": 6}
    assert report["errors"]["unreadable-audio"] == 2 and sum(report["warnings"].values()) == 3
    assert {(f["line"], f["severity"], f["kind"]) for f in report["findings"]} == _EXPECTED
    assert all(f["source"] == str(broken_set / "metadata.csv") for f in report["findings"])


def test_clipping_runs_are_found_across_decode_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr("tts.data_check._BLOCK_FRAMES", 1000)
    audio = np.full(22050, 0.2, dtype=np.float32)
    audio[5000] = 1.0  # one full-scale sample is a loud peak, not clipping
    (tmp_path / "wavs").mkdir()
    soundfile.write(tmp_path / "wavs" / "peak.wav", audio, 22050, subtype="FLOAT")
    audio[1998:2002] = -1.0  # a run of 4 split 2 + 2 across the block boundary at 2000
    soundfile.write(tmp_path / "wavs" / "clipped.wav", audio, 22050, subtype="FLOAT")
    (tmp_path / "metadata.csv").write_text("peak|One peak.|\nclipped|A clipped run.|\n", encoding="utf-8")
    findings = check_dataset(tmp_path).findings
    assert [(f.line, f.kind) for f in findings] == [(2, "clipping")]
    assert "5 samples at full scale, the longest run 4 samples" in findings[0].message


def test_missing_dataset_and_bad_options(tmp_path, capsys):
    assert main(["data", "check", str(tmp_path / "nope"), "-q"]) == 1
    assert "error missing-dataset: no such folder or filelist" in capsys.readouterr().out
    assert main(["data", "check", str(tmp_path), "-q", "--min-seconds", "5", "--max-seconds", "1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("voxflow data: error: expected 0 <= min_seconds < max_seconds") and err.count("\n") == 1
    assert main(["data", "check", str(tmp_path), "-q", "--cleaners", "english_cleaners,nope"]) == 1
    assert capsys.readouterr().err.startswith("voxflow data: error: unknown cleaner 'nope'; expected one of")


def test_committed_small_corpus_is_clean(small_corpus):
    report = check_dataset(small_corpus)
    assert report.findings == [] and report.n_utterances == 16 and len(report.speakers) == 2
