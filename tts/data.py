"""Training data: read LJSpeech folders and NVIDIA filelists, compute cached mels, batch by length.

- `read_utterances(path)`: a folder in LJSpeech layout (`metadata.csv` with `id|text|normalized_text`
  and an optional 4th `speaker` column, audio in `wavs/ID.wav`) or an NVIDIA filelist
  (`path|text` or `path|text|speaker`, further fields kept in `extra`). Returns the utterances and
  every line-level problem (`Problem`), so a checker can report all of them at once.
- `SpeakerMap`: speaker names ↔ embedding ids (string-sorted names, as Mellotron numbers LibriTTS).
- `TextMelDataset`: utterance → `TextMelItem(tokens, mel, speaker_id)`, mels cached on disk.
- `collate_text_mel`: items → `TextMelBatch` with tokens (batch, n_tokens), mel (batch, n_mels,
  n_frames) zero-padded, and the lengths.
- `LengthBucketSampler`: batches of similar length, reshuffled each epoch from a seed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import random
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import soundfile
import torch

from tts.audio import AudioConfig, load_audio, mel_spectrogram
from tts.config import TextConfig
from tts.errors import DataError

__all__ = [
    "Utterance", "Problem", "SpeakerMap", "read_utterances", "load_utterances", "split_validation", "cached_array",
    "TextMelItem", "TextMelBatch", "TextMelDataset", "collate_text_mel", "LengthBucketSampler",
]


@dataclasses.dataclass(frozen=True)
class Utterance:
    """One line of a data set: which audio, what is said, by whom, and where the line is."""

    audio_path: Path
    text: str
    speaker: str | None
    source: Path
    line: int
    extra: tuple[str, ...] = ()

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}"


@dataclasses.dataclass(frozen=True)
class Problem:
    """Something wrong with a data set, located at `source:line` (line 0 = the whole file)."""

    kind: str
    source: Path
    line: int
    message: str

    def __str__(self) -> str:
        location = f"{self.source}:{self.line}" if self.line else str(self.source)
        return f"{location}: {self.kind}: {self.message}"


def read_utterances(path: str | os.PathLike) -> tuple[list[Utterance], list[Problem]]:
    """Parse a data set without touching the audio; malformed lines become `Problem`s."""
    path = Path(path)
    if path.is_dir():
        metadata = path / "metadata.csv"
        if not metadata.is_file():
            return [], [Problem("missing-metadata", path, 0,
                                "expected an LJSpeech folder with metadata.csv, or an NVIDIA filelist file")]
        return _read_lines(metadata, _parse_ljspeech_line)
    if path.is_file():
        return _read_lines(path, _parse_filelist_line)
    return [], [Problem("missing-dataset", path, 0, "no such folder or filelist")]


def load_utterances(path: str | os.PathLike) -> list[Utterance]:
    """`read_utterances` for training: any problem is a `DataError` listing the first few."""
    utterances, problems = read_utterances(path)
    if problems:
        shown = "; ".join(str(problem) for problem in problems[:3])
        more = f" (and {len(problems) - 3} more; run `voxflow data check {path}`)" if len(problems) > 3 else ""
        raise DataError(f"{shown}{more}")
    if not utterances:
        raise DataError(f"{path}: the data set has no utterances")
    return utterances


def cached_array(cache_file: Path | None, compute: Callable[[], np.ndarray]) -> np.ndarray:
    """`compute()`'s array, read from `cache_file` when it is there, else computed and written
    atomically (a temporary file renamed into place, so concurrent workers never read half a file);
    `cache_file` None: no cache."""
    if cache_file is not None and cache_file.is_file():
        return np.load(cache_file, allow_pickle=False)
    array = compute()
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        temporary = cache_file.with_suffix(f".tmp{os.getpid()}.npy")
        np.save(temporary, array)
        os.replace(temporary, cache_file)
    return array


def split_validation(utterances: Sequence[Utterance], validation_size: int,
                     seed: int) -> tuple[list[Utterance], list[Utterance]]:
    """(train, validation): `validation_size` utterances drawn with `seed` (at least one stays for
    training), both lists in their original order."""
    order = list(range(len(utterances)))
    random.Random(seed).shuffle(order)
    chosen = set(order[:min(validation_size, max(0, len(utterances) - 1))])
    return ([u for i, u in enumerate(utterances) if i not in chosen],
            [u for i, u in enumerate(utterances) if i in chosen])


def _read_lines(file: Path, parse) -> tuple[list[Utterance], list[Problem]]:
    utterances, problems = [], []
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        return [], [Problem("encoding", file, 0, f"not UTF-8 text ({error.reason} at byte {error.start})")]
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        result = parse(file, number, line)
        (utterances if isinstance(result, Utterance) else problems).append(result)
    return utterances, problems


def _parse_ljspeech_line(file: Path, number: int, line: str) -> Utterance | Problem:
    fields = line.split("|")
    if len(fields) not in (2, 3, 4):
        return Problem("format", file, number,
                       f"expected id|text|normalized_text[|speaker], found {len(fields)} fields")
    clip_id, text = fields[0].strip(), fields[1]
    if len(fields) >= 3 and fields[2].strip():
        text = fields[2]  # LJSpeech's normalized column spells out numbers; prefer it.
    if not clip_id:
        return Problem("format", file, number, "empty clip id")
    speaker = fields[3].strip() or None if len(fields) == 4 else None
    return Utterance(file.parent / "wavs" / f"{clip_id}.wav", text.strip(), speaker, file, number)


def _parse_filelist_line(file: Path, number: int, line: str) -> Utterance | Problem:
    fields = line.split("|")
    if len(fields) < 2:
        return Problem("format", file, number, "expected path|text or path|text|speaker, found 1 field")
    audio = Path(fields[0].strip())
    if not audio.is_absolute():
        # NVIDIA's filelists hold paths relative to where training runs; try the filelist's folder first.
        beside = file.parent / audio
        audio = beside if beside.exists() or not audio.exists() else audio
    speaker = fields[2].strip() or None if len(fields) >= 3 else None
    return Utterance(audio, fields[1].strip(), speaker, file, number, tuple(fields[3:]))


@dataclasses.dataclass(frozen=True)
class SpeakerMap:
    """Speaker names ↔ ids. Ids are positions in the string-sorted names (Mellotron's rule)."""

    names: tuple[str, ...]

    @classmethod
    def from_utterances(cls, utterances: Sequence[Utterance]) -> "SpeakerMap":
        return cls(tuple(sorted({u.speaker for u in utterances if u.speaker is not None})))

    def __len__(self) -> int:
        return len(self.names)

    def id_of(self, speaker: str | int | None) -> int:
        """An id for a name, or a checked integer id; `None` is speaker 0 (single-speaker data)."""
        if speaker is None:
            return 0
        if isinstance(speaker, int) and not isinstance(speaker, bool):
            if not 0 <= speaker < max(len(self.names), 1):
                raise DataError(f"speaker id {speaker} out of range: the model has {len(self.names)} speakers")
            return speaker
        try:
            return self.names.index(str(speaker))
        except ValueError:
            known = ", ".join(self.names[:12]) + (" ..." if len(self.names) > 12 else "")
            raise DataError(f"unknown speaker {speaker!r}; known speakers: {known or '(none)'}") from None


@dataclasses.dataclass
class TextMelItem:
    tokens: torch.Tensor  # (n_tokens,) int64
    mel: torch.Tensor  # (n_mels, n_frames) float32
    speaker_id: int


@dataclasses.dataclass
class TextMelBatch:
    tokens: torch.Tensor  # (batch, n_tokens) int64, zero-padded
    token_lengths: torch.Tensor  # (batch,)
    mel: torch.Tensor  # (batch, n_mels, n_frames), zero-padded
    mel_lengths: torch.Tensor  # (batch,)
    speaker_ids: torch.Tensor  # (batch,)

    def to(self, device: torch.device | str) -> "TextMelBatch":
        return TextMelBatch(**{f.name: getattr(self, f.name).to(device) for f in dataclasses.fields(self)})


class TextMelDataset(torch.utils.data.Dataset):
    """Utterances → (tokens, mel, speaker id); mels are computed once and cached as .npy files.

    The cache key covers the audio file (path, size, mtime) and the AudioConfig, so changing
    either recomputes the mel instead of silently reusing a stale one.
    """

    def __init__(self, utterances: Sequence[Utterance], text_config: TextConfig, audio_config: AudioConfig,
                 speakers: SpeakerMap | None = None, cache_dir: str | os.PathLike | None = None,
                 seed: int = 0) -> None:
        self.utterances = list(utterances)
        self.text_config = text_config
        self.audio_config = audio_config
        self.speakers = speakers or SpeakerMap.from_utterances(self.utterances)
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.seed = seed

    def __len__(self) -> int:
        return len(self.utterances)

    def __getitem__(self, index: int) -> TextMelItem:
        from text import text_to_sequence

        utterance = self.utterances[index]
        # A per-item RNG keeps p_arpabet choices reproducible under any worker/shuffle order.
        rng = random.Random(f"{self.seed}:{index}")
        tokens = text_to_sequence(utterance.text, list(self.text_config.cleaners),
                                  symbol_set=self.text_config.symbol_set,
                                  p_arpabet=self.text_config.p_arpabet, rng=rng)
        mel = torch.from_numpy(self.mel(utterance))
        return TextMelItem(torch.tensor(tokens, dtype=torch.long), mel, self.speakers.id_of(utterance.speaker))

    def mel(self, utterance: Utterance) -> np.ndarray:
        """The (n_mels, n_frames) log-mel of an utterance, from the cache when it is there."""
        def compute() -> np.ndarray:
            audio = load_audio(utterance.audio_path, self.audio_config.sample_rate)
            return mel_spectrogram(audio, self.audio_config).numpy()

        return cached_array(self._cache_file(utterance.audio_path), compute)

    def frame_lengths(self) -> list[int]:
        """Mel frames per utterance from the file headers (no decoding), for length bucketing."""
        lengths = []
        for utterance in self.utterances:
            info = soundfile.info(str(utterance.audio_path))
            n_samples = int(info.frames * self.audio_config.sample_rate / info.samplerate)
            lengths.append(self.audio_config.n_frames(n_samples))
        return lengths

    def _cache_file(self, audio_path: Path) -> Path | None:
        if self.cache_dir is None:
            return None
        stat = audio_path.stat()
        key = f"{audio_path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{self.audio_config.to_json()}"
        digest = hashlib.sha1(key.encode()).hexdigest()
        return self.cache_dir / digest[:2] / f"{audio_path.stem}-{digest[:16]}.npy"


def collate_text_mel(items: Sequence[TextMelItem]) -> TextMelBatch:
    """Pad a list of items into a batch (tokens with 0, mels with 0; lengths say what is real)."""
    token_lengths = torch.tensor([len(item.tokens) for item in items])
    mel_lengths = torch.tensor([item.mel.shape[1] for item in items])
    n_mels = items[0].mel.shape[0]
    tokens = torch.zeros(len(items), int(token_lengths.max()), dtype=torch.long)
    mel = torch.zeros(len(items), n_mels, int(mel_lengths.max()))
    for i, item in enumerate(items):
        tokens[i, : len(item.tokens)] = item.tokens
        mel[i, :, : item.mel.shape[1]] = item.mel
    speaker_ids = torch.tensor([item.speaker_id for item in items], dtype=torch.long)
    return TextMelBatch(tokens, token_lengths, mel, mel_lengths, speaker_ids)


class LengthBucketSampler(torch.utils.data.Sampler[list[int]]):
    """Batches of similar length (less padding), in a fresh random order every epoch.

    Indices are shuffled, cut into buckets of `batch_size * bucket_batches`, sorted by length
    inside each bucket and cut into batches; the batch order is shuffled again. `set_epoch`
    reseeds, as DistributedSampler does; `rank`/`world_size` give each process its own share.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int = 0, bucket_batches: int = 8,
                 drop_last: bool = False, rank: int = 0, world_size: int = 1) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, found {batch_size}")
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.bucket_size = batch_size * bucket_batches
        self.drop_last = drop_last
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _all_batches(self) -> list[list[int]]:
        rng = random.Random(self.seed * 100_003 + self.epoch)
        indices = list(range(len(self.lengths)))
        rng.shuffle(indices)
        batches = []
        for start in range(0, len(indices), self.bucket_size):
            bucket = sorted(indices[start:start + self.bucket_size], key=self.lengths.__getitem__)
            batches += [bucket[i:i + self.batch_size] for i in range(0, len(bucket), self.batch_size)]
        if self.drop_last:
            batches = [batch for batch in batches if len(batch) == self.batch_size]
        rng.shuffle(batches)
        # Every process must run the same number of steps, or DDP's all-reduce hangs.
        usable = len(batches) - len(batches) % self.world_size if self.world_size > 1 else len(batches)
        return batches[:usable]

    def __iter__(self) -> Iterator[list[int]]:
        yield from self._all_batches()[self.rank::self.world_size]

    def __len__(self) -> int:
        return len(self._all_batches()) // self.world_size
