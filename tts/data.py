"""Training data: read LJSpeech folders and NVIDIA filelists, compute cached mels, batch by length.

- `read_utterances(path)`: a folder in LJSpeech layout (`metadata.csv` with `id|text|normalized_text`
  and an optional 4th `speaker` column, audio in `wavs/ID.wav`) or an NVIDIA filelist
  (`path|text` or `path|text|speaker`, further fields kept in `extra`). Returns the utterances and
  every line-level problem (`Problem`), so a checker can report all of them at once.
- `SpeakerMap`: speaker names ↔ embedding ids (string-sorted names, as Mellotron numbers LibriTTS).
- `TextMelDataset`: utterance → `TextMelItem(tokens, mel, speaker_id)`, mels cached on disk.
- `collate_text_mel`: items → `TextMelBatch` with tokens (batch, n_tokens), mel (batch, n_mels,
  n_frames) zero-padded, and the lengths.
- `LengthBucketSampler`: batches of similar length, reshuffled each epoch from a seed, each global
  batch split between processes and gradient-accumulation micro-batches.
- `SkipFailedItems` + `CollateLoaded`: a training loader that sets aside items that fail to load
  (a file overwritten or deleted mid-run) instead of raising, so the engine can report and skip them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import random
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import soundfile
import torch

from tts.audio import AudioConfig, load_audio, mel_spectrogram
from tts.config import TextConfig
from tts.errors import AudioError, DataError, UserError

__all__ = [
    "Utterance", "Problem", "SpeakerMap", "read_utterances", "load_utterances", "split_validation", "cached_array",
    "TextMelItem", "TextMelBatch", "TextMelDataset", "collate_text_mel", "LengthBucketSampler",
    "ItemFailure", "SkipFailedItems", "LoadedBatch", "CollateLoaded",
]

log = logging.getLogger(__name__)


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
    `cache_file` None: no cache. An unreadable cache file (truncated, overwritten) is recomputed:
    it is derived data, and the source it came from may well be intact."""
    if cache_file is not None and cache_file.is_file():
        try:
            return np.load(cache_file, allow_pickle=False)
        except (OSError, ValueError, EOFError) as error:
            log.warning("%s: unreadable cache file (%s); computing it again", cache_file, error)
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
        try:
            stat = audio_path.stat()
        except FileNotFoundError:  # e.g. deleted after the run started; say which file, as load_audio does
            raise AudioError(f"{audio_path}: no such audio file") from None
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

    A global batch, what one optimizer step trains on, holds `batch_size * world_size *
    accumulation` indices. Indices are shuffled, cut into buckets of `bucket_batches` global
    batches, sorted by length inside each bucket and cut into global batches, whose order is
    shuffled again; `set_epoch` reseeds, as DistributedSampler does. Each global batch is then cut
    into world_size × accumulation near-equal pieces of neighbouring lengths: process `rank` gets
    pieces rank, rank + world_size, ... as its `accumulation` micro-batches. So step k trains on
    the same items however it is split (1 process × 8, 2 processes × 4, 1 × 4 × accumulation 2),
    which is what makes a distributed or accumulated run follow the single-process one.

    Every process yields exactly `accumulation` index lists per global batch, the same count
    everywhere as DDP needs; a short last batch leaves some of them empty. A global batch with
    fewer items than processes is dropped (never, for one process).
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int = 0, bucket_batches: int = 8,
                 drop_last: bool = False, rank: int = 0, world_size: int = 1, accumulation: int = 1) -> None:
        if batch_size < 1 or accumulation < 1:
            raise ValueError(f"batch_size and accumulation must be >= 1, found {batch_size} and {accumulation}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, world_size={world_size}), found {rank}")
        self.lengths, self.batch_size, self.seed, self.drop_last = list(lengths), batch_size, seed, drop_last
        self.rank, self.world_size, self.accumulation = rank, world_size, accumulation
        self.global_batch_size = batch_size * world_size * accumulation
        self.bucket_size = self.global_batch_size * bucket_batches
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def global_batches(self) -> list[list[int]]:
        """This epoch's global batches, the same on every process."""
        rng = random.Random(self.seed * 100_003 + self.epoch)
        indices = list(range(len(self.lengths)))
        rng.shuffle(indices)
        size, batches = self.global_batch_size, []
        for start in range(0, len(indices), self.bucket_size):
            bucket = sorted(indices[start:start + self.bucket_size], key=self.lengths.__getitem__)
            batches += [bucket[i:i + size] for i in range(0, len(bucket), size)]
        if self.drop_last:
            batches = [batch for batch in batches if len(batch) == size]
        rng.shuffle(batches)
        return [batch for batch in batches if len(batch) >= self.world_size]

    def micro_batches(self, batch: Sequence[int]) -> list[list[int]]:
        """This process's `accumulation` micro-batches of one global batch (some empty if it is short)."""
        # As many micro-batches as give every process an item in each; the rest stay empty.
        used = min(self.accumulation, len(batch) // self.world_size)
        n_pieces = used * self.world_size
        bounds = [len(batch) * piece // n_pieces for piece in range(n_pieces + 1)]
        pieces = [list(batch[bounds[p]:bounds[p + 1]]) for p in range(n_pieces)]
        return pieces[self.rank::self.world_size] + [[] for _ in range(self.accumulation - used)]

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.global_batches():
            yield from self.micro_batches(batch)

    def __len__(self) -> int:
        return len(self.global_batches()) * self.accumulation


@dataclasses.dataclass(frozen=True)
class ItemFailure:
    index: int
    message: str  # what went wrong, naming the file


class SkipFailedItems(torch.utils.data.Dataset):
    """`dataset[i]`, or an `ItemFailure` in its place when loading item i raises: files break after
    a run has started (overwritten, deleted, a failing disk), and a long run should report and skip
    such an item, not die hours in. How many are too many is the training engine's call."""

    def __init__(self, dataset: torch.utils.data.Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        try:
            return self.dataset[index]
        except Exception as error:  # unreadable audio, a vanished file, a corrupt array: all one item's problem
            # A UserError names its file already; anything else gets its type for the report.
            message = str(error) if isinstance(error, UserError) else f"{type(error).__name__}: {error}"
            return ItemFailure(index, message)


@dataclasses.dataclass
class LoadedBatch:
    batch: Any  # the task's batch of the items that loaded; None when none did
    size: int  # how many items loaded
    failures: list[ItemFailure]


class CollateLoaded:
    """A task's collate function over `SkipFailedItems` items: failures are set aside, the rest
    collated. A class rather than a closure, so DataLoader workers can pickle it."""

    def __init__(self, collate: Callable[[Sequence[Any]], Any]) -> None:
        self.collate = collate

    def __call__(self, items: Sequence[Any]) -> LoadedBatch:
        failures = [item for item in items if isinstance(item, ItemFailure)]
        loaded = [item for item in items if not isinstance(item, ItemFailure)]
        return LoadedBatch(self.collate(loaded) if loaded else None, len(loaded), failures)
