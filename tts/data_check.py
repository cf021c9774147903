"""Check a training data set before training on it: every problem, with file and line, then a summary.

`check_dataset(path)` takes what `tts.data.read_utterances` takes (an LJSpeech folder or an NVIDIA
filelist) and returns a `DataReport`: a list of `Finding`s (`PATH:LINE: severity kind: message`)
and the counts for the summary (utterances, hours, speakers, sample rates). It never stops at the
first problem. Kinds and their severity (`SEVERITY`):

- from the reader: format, encoding, missing-metadata, missing-dataset (errors);
- text: empty-text, unknown-characters (characters `text.text_to_sequence` would drop for the
  symbol set and cleaners), duplicate-text (a warning: the same sentence twice is legal);
- audio: missing-audio, unreadable-audio (corrupt, zero frames, NaN/inf), too-short, too-long,
  silent (peak below 1e-3), clipping (a warning: a run of samples at |x| >= 0.999),
  sample-rate (a warning: `load_audio` resamples, but it costs time and may hide a mix-up);
- set-level: duplicate-audio (one file on two lines), missing-speaker (a line with no speaker in a
  set where other lines name one).

Audio is read once per distinct file, in a thread pool: the header first (`soundfile.info`, for
rate and duration), then a block-wise float32 decode at the file's own rate (no resampling) for
the peak and clipping checks, so memory stays bounded even for hour-long files.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import json
import os
import sys
from pathlib import Path

import numpy as np
import soundfile
from tqdm import tqdm

from tts.data import Problem, Utterance, read_utterances
from tts.errors import UserError

__all__ = ["Finding", "DataReport", "check_dataset", "SEVERITY", "DEFAULT_CLEANERS"]

# NVIDIA's cleaners per text path: Tacotron 2 uses english_cleaners, Flowtron and Mellotron their own.
DEFAULT_CLEANERS: dict[str, tuple[str, ...]] = {
    "tacotron2": ("english_cleaners",),
    "flowtron": ("flowtron_cleaners",),
    "mellotron": ("flowtron_cleaners",),
}

SEVERITY: dict[str, str] = {
    "format": "error", "encoding": "error", "missing-metadata": "error", "missing-dataset": "error",
    "empty-dataset": "error", "empty-text": "error", "unknown-characters": "error", "duplicate-text": "warning",
    "missing-audio": "error", "unreadable-audio": "error", "too-short": "error", "too-long": "error",
    "silent": "error", "clipping": "warning", "sample-rate": "warning",
    "duplicate-audio": "error", "missing-speaker": "error",
}

SILENCE_PEAK = 1e-3  # below this peak a clip holds no usable speech (-60 dBFS)
CLIP_LEVEL = 0.999  # |x| at or above this is full scale (int16 full scale reads 0.99997)
CLIP_RUN = 3  # consecutive full-scale samples: one such sample is a loud peak, a run is a clipped one
_BLOCK_FRAMES = 1 << 18  # ~12 s at 22050 Hz per decoded block


@dataclasses.dataclass(frozen=True)
class Finding:
    """One problem of a data set at `source:line` (line 0 = the whole file), with its severity."""

    severity: str
    kind: str
    source: Path
    line: int
    message: str

    @classmethod
    def make(cls, kind: str, source: Path, line: int, message: str) -> "Finding":
        return cls(SEVERITY.get(kind, "error"), kind, Path(source), line, message)

    @classmethod
    def from_problem(cls, problem: Problem) -> "Finding":
        return cls.make(problem.kind, problem.source, problem.line, problem.message)

    def __str__(self) -> str:
        location = f"{self.source}:{self.line}" if self.line else str(self.source)
        return f"{location}: {self.severity} {self.kind}: {self.message}"

    def to_dict(self) -> dict:
        return {"severity": self.severity, "kind": self.kind, "source": str(self.source), "line": self.line,
                "message": self.message}


@dataclasses.dataclass
class DataReport:
    """The findings of `check_dataset` and what the summary counts."""

    path: Path
    findings: list[Finding]
    n_utterances: int
    seconds: float  # audio of the lines whose file could be read (a file on two lines counts twice)
    speakers: collections.Counter  # speaker name -> lines; None counts lines with no speaker
    sample_rates: collections.Counter  # Hz -> distinct readable files

    @property
    def errors(self) -> list[Finding]:
        return [finding for finding in self.findings if finding.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [finding for finding in self.findings if finding.severity == "warning"]

    def failed(self, strict: bool = False) -> bool:
        """True when there are errors, or (with `strict`) any finding at all."""
        return bool(self.errors or (strict and self.findings))

    def counts(self, severity: str) -> dict[str, int]:
        """Findings of one severity per kind, most frequent first."""
        return dict(collections.Counter(f.kind for f in self.findings if f.severity == severity).most_common())

    def summary(self) -> str:
        """A few human-readable lines: utterances, hours, speakers, sample rates, errors, warnings."""
        hours, rest = divmod(round(self.seconds), 3600)
        lines = [f"{self.path}: {self.n_utterances} utterances, {self.seconds / 3600:.2f} hours of audio "
                 f"({hours}:{rest // 60:02d}:{rest % 60:02d})"]
        named = [(name, count) for name, count in self.speakers.most_common() if name is not None]
        if named:
            shown = ", ".join(f"{name}: {count}" for name, count in named[:10]) + (" ..." if len(named) > 10 else "")
            unnamed = f"; {_plural(self.speakers[None], 'line')} with no speaker" if self.speakers[None] else ""
            lines.append(f"speakers: {len(named)} ({shown}{unnamed})")
        else:
            lines.append("speakers: 1 (no speaker column)")
        if self.sample_rates:
            rates = ", ".join(f"{rate} Hz ({_plural(count, 'file')})"
                              for rate, count in sorted(self.sample_rates.items()))
            lines.append(f"sample rates: {rates}")
        for severity in ("error", "warning"):
            counts = self.counts(severity)
            detail = " (" + ", ".join(f"{kind} {n}" for kind, n in counts.items()) + ")" if counts else ""
            lines.append(f"{severity}s: {sum(counts.values())}{detail}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """JSON-ready: the summary numbers and every finding."""
        return {
            "path": str(self.path),
            "utterances": self.n_utterances,
            "hours": self.seconds / 3600,
            "speakers": {name: count for name, count in self.speakers.items() if name is not None},
            "lines_without_speaker": self.speakers[None],
            "sample_rates": {str(rate): count for rate, count in sorted(self.sample_rates.items())},
            "errors": self.counts("error"),
            "warnings": self.counts("warning"),
            "findings": [finding.to_dict() for finding in self.findings],
        }

    def write_json(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        try:
            path.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        except OSError as error:
            raise UserError(f"{path}: cannot write the JSON report ({error.strerror})") from None
        return path


@dataclasses.dataclass(frozen=True)
class _AudioScan:
    """What reading one audio file found; `problem` = (kind, message) when it could not be read."""

    problem: tuple[str, str] | None = None
    sample_rate: int = 0
    n_frames: int = 0
    peak: float = 0.0
    clipped: int = 0  # samples at full scale
    longest_clip_run: int = 0

    @property
    def seconds(self) -> float:
        return self.n_frames / self.sample_rate if self.sample_rate else 0.0


def check_dataset(path: str | os.PathLike, symbol_set: str = "tacotron2", cleaners: list[str] | None = None,
                  sample_rate: int = 22050, min_seconds: float = 0.5, max_seconds: float = 20.0,
                  progress: bool = False) -> DataReport:
    """Check every line of a data set (LJSpeech folder or NVIDIA filelist) and all of its audio.

    `cleaners` defaults to the symbol set's (`DEFAULT_CLEANERS`). Raises `UserError` only for bad
    arguments; everything wrong with the data becomes a `Finding`, sorted by file and line.
    """
    if symbol_set not in DEFAULT_CLEANERS:
        raise UserError(f"unknown symbol set {symbol_set!r}; expected one of {', '.join(DEFAULT_CLEANERS)}")
    if not 0 <= min_seconds < max_seconds:
        raise UserError(f"expected 0 <= min_seconds < max_seconds, found {min_seconds} and {max_seconds}")
    if sample_rate <= 0:
        raise UserError(f"expected a positive sample rate, found {sample_rate}")
    cleaners = list(cleaners) if cleaners else list(DEFAULT_CLEANERS[symbol_set])
    _check_cleaner_names(cleaners)
    utterances, problems = read_utterances(path)
    findings = [Finding.from_problem(problem) for problem in problems]
    if not utterances and not problems:
        findings.append(Finding.make("empty-dataset", Path(path), 0, "the data set has no utterances"))
    findings += _check_texts(utterances, cleaners, symbol_set, progress)
    findings += _check_speakers(utterances)
    scans = _scan_all(utterances, progress)
    findings += _check_audio(utterances, scans, sample_rate, min_seconds, max_seconds)
    findings.sort(key=lambda finding: (str(finding.source), finding.line))  # stable: check order within a line
    seconds = sum(scans[_key(u.audio_path)].seconds for u in utterances if not scans[_key(u.audio_path)].problem)
    rates = collections.Counter(scan.sample_rate for scan in scans.values() if scan.problem is None)
    return DataReport(Path(path), findings, len(utterances), seconds,
                      collections.Counter(u.speaker for u in utterances), rates)


def _key(audio_path: Path) -> str:
    # One key per file however a line spells it (./wavs/a.wav, wavs/../wavs/a.wav, a symlink).
    return os.path.realpath(audio_path)


def _shown(utterance: Utterance) -> str:
    """The audio path as the line's reader sees it: relative to the metadata's folder when inside it."""
    try:
        return utterance.audio_path.relative_to(utterance.source.parent).as_posix()
    except ValueError:
        return str(utterance.audio_path)


def _check_cleaner_names(cleaners: list[str]) -> None:
    from text import CLEANERS

    unknown = [name for name in cleaners if name not in CLEANERS]
    if unknown:
        raise UserError(f"unknown cleaner {unknown[0]!r}; expected one of {', '.join(sorted(CLEANERS))}")


def _check_texts(utterances: list[Utterance], cleaners: list[str], symbol_set: str,
                 progress: bool) -> list[Finding]:
    """empty-text, unknown-characters, and duplicate-text (the later line names the earlier one)."""
    from text import unknown_characters

    findings, first_line = [], {}
    for utterance in _progress(utterances, progress, "checking text", "line"):
        if not utterance.text.strip():
            findings.append(Finding.make("empty-text", utterance.source, utterance.line, "the text is empty"))
            continue
        dropped = unknown_characters(utterance.text, cleaners, symbol_set)
        if dropped:
            # Bad inline ARPAbet comes back as "{XX}", a character as itself: name the code point.
            shown = " ".join(f"{symbol!r} (U+{ord(symbol):04X})" if len(symbol) == 1 else repr(symbol)
                             for symbol in dropped)
            findings.append(Finding.make(
                "unknown-characters", utterance.source, utterance.line,
                f"{shown} not in the {symbol_set} symbol set after {'+'.join(cleaners)}; "
                f"the text frontend would drop {'it' if len(dropped) == 1 else 'them'}"))
        normalised = " ".join(utterance.text.split()).casefold()
        if normalised in first_line:
            findings.append(Finding.make("duplicate-text", utterance.source, utterance.line,
                                         f"same text as line {first_line[normalised]}"))
        else:
            first_line[normalised] = utterance.line
    return findings


def _check_speakers(utterances: list[Utterance]) -> list[Finding]:
    """missing-speaker: in a set where some lines name a speaker, every line must."""
    named = [u for u in utterances if u.speaker is not None]
    if not named or len(named) == len(utterances):
        return []
    n_speakers = len({u.speaker for u in named})
    message = (f"no speaker, but {len(named)} other lines name one ({n_speakers} speakers); "
               "the line would silently train speaker 0")
    return [Finding.make("missing-speaker", u.source, u.line, message) for u in utterances if u.speaker is None]


def _scan_all(utterances: list[Utterance], progress: bool) -> dict[str, _AudioScan]:
    """Read every distinct audio file once, a few at a time (libsndfile releases the GIL)."""
    paths = {}
    for utterance in utterances:
        paths.setdefault(_key(utterance.audio_path), utterance.audio_path)
    workers = min(8, (os.cpu_count() or 1) + 1, max(len(paths), 1))
    scans = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(_scan_file, path): key for key, path in paths.items()}
        done = concurrent.futures.as_completed(futures)
        for future in _progress(done, progress, "reading audio", "file", total=len(futures)):
            scans[futures[future]] = future.result()
    return scans


def _progress(items, progress: bool, description: str, unit: str, total: int | None = None):
    # disable=None turns the bar off when stderr is not a terminal (CI logs, pipes).
    return tqdm(items, total=total, desc=description, unit=unit, file=sys.stderr, leave=False,
                disable=None if progress else True)


def _scan_file(path: Path) -> _AudioScan:
    """Header, then a block-wise float32 decode at the file's rate: peak and full-scale runs."""
    if not path.is_file():
        return _AudioScan(("missing-audio", "does not exist" if not path.exists() else "is not a file"))
    try:
        info = soundfile.info(str(path))
    except Exception as error:  # soundfile raises LibsndfileError, RuntimeError or TypeError
        return _AudioScan(("unreadable-audio", f"is not a readable audio file ({_reason(error)})"))
    if info.frames <= 0:
        return _AudioScan(("unreadable-audio", "contains no samples"), info.samplerate)
    peak, clipped, longest, open_run = 0.0, 0, 0, 0
    try:
        for block in soundfile.blocks(str(path), blocksize=_BLOCK_FRAMES, dtype="float32", always_2d=True):
            magnitude = np.abs(block).max(axis=1)  # (n_frames,): loudest channel per frame
            block_peak = float(magnitude.max(initial=0.0))  # NaN propagates through max
            if not np.isfinite(block_peak):
                return _AudioScan(("unreadable-audio", "contains NaN or infinite samples"), info.samplerate)
            peak = max(peak, block_peak)
            if block_peak >= CLIP_LEVEL:
                full_scale = magnitude >= CLIP_LEVEL
                clipped += int(full_scale.sum())
                block_longest, open_run = _runs(full_scale, open_run)
                longest = max(longest, block_longest)
            else:
                open_run = 0
    except Exception as error:
        return _AudioScan(("unreadable-audio", f"cannot be decoded ({_reason(error)})"), info.samplerate)
    return _AudioScan(None, info.samplerate, info.frames, peak, clipped, longest)


def _runs(mask: np.ndarray, carried: int) -> tuple[int, int]:
    """(longest run of True, run still open at the end), counting `carried` Trues just before `mask`."""
    padded = np.concatenate(([False], mask, [False]))
    edges = np.flatnonzero(padded[1:] != padded[:-1])  # alternating run starts and ends
    if not len(edges):
        return 0, 0
    starts, ends = edges[::2], edges[1::2]
    lengths = ends - starts
    if starts[0] == 0:
        lengths[0] += carried  # the run the previous block ended in goes on
    return int(lengths.max()), (int(lengths[-1]) if ends[-1] == len(mask) else 0)


def _check_audio(utterances: list[Utterance], scans: dict[str, _AudioScan], sample_rate: int,
                 min_seconds: float, max_seconds: float) -> list[Finding]:
    """Per line: duplicate-audio, or the file's own problems (reported on the first line using it)."""
    findings, first_line = [], {}
    for utterance in utterances:
        key, shown = _key(utterance.audio_path), _shown(utterance)
        if key in first_line:
            findings.append(Finding.make("duplicate-audio", utterance.source, utterance.line,
                                         f"{shown} is also used on line {first_line[key]}"))
            continue
        first_line[key] = utterance.line
        for kind, message in _file_problems(scans[key], sample_rate, min_seconds, max_seconds):
            findings.append(Finding.make(kind, utterance.source, utterance.line, f"{shown} {message}"))
    return findings


def _file_problems(scan: _AudioScan, sample_rate: int, min_seconds: float,
                   max_seconds: float) -> list[tuple[str, str]]:
    if scan.problem is not None:
        return [scan.problem]
    problems = []
    if scan.seconds < min_seconds:
        problems.append(("too-short", f"lasts {scan.seconds:.3f} s, less than the minimum {min_seconds:g} s"))
    elif scan.seconds > max_seconds:
        problems.append(("too-long", f"lasts {scan.seconds:.3f} s, more than the maximum {max_seconds:g} s"))
    if scan.sample_rate != sample_rate:
        problems.append(("sample-rate", f"is {scan.sample_rate} Hz, expected {sample_rate} Hz "
                                        "(it will be resampled on loading)"))
    if scan.peak < SILENCE_PEAK:
        problems.append(("silent", f"is silent (peak {scan.peak:.1e}, below {SILENCE_PEAK:g})"))
    elif scan.longest_clip_run >= CLIP_RUN:
        problems.append(("clipping", f"is clipped: {scan.clipped} samples at full scale, "
                                     f"the longest run {scan.longest_clip_run} samples"))
    return problems


def _reason(error: BaseException) -> str:
    """libsndfile's own words ("Format not recognised."), without the path the finding already names."""
    reason = getattr(error, "error_string", None) or str(error).strip()
    return reason.splitlines()[0] if reason else type(error).__name__


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
