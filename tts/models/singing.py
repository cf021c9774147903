"""Singing from a score: MusicXML (via music21) → per-part phonemes, durations and an F0 contour.

Mellotron sings by being given, per part, a rhythm (a binary alignment) and a pitch contour in Hz
(NVIDIA's `mellotron_utils.get_data_from_musicxml`, nvidia-models.md §4.3). This module builds
them at the mel frame rate (sample_rate / hop frames per second):

    parts = read_score("duet.musicxml")               # one `SungPart` per part (and per voice)
    part = parts[0]
    out = mellotron.infer(part.token_ids[None], speaker_id=0, f0=part.f0[None],
                          alignment=part.alignment()[None])

Rules (simpler than NVIDIA's, which reposition consonants with a phoneme-to-grapheme table):
- Tempo: the first metronome mark's quarter-note BPM (or `bpm`, default 120); constant.
- A note with a lyric starts a syllable; `syllabic` begin/middle/end group syllables into words,
  pronounced with CMUdict's first pronunciation (unknown words: their letters). Phones are split
  into syllables at vowels; consonants between vowels start the next syllable.
- A note without a lyric (melisma) or tied to the previous one extends the syllable's vowel at
  its own pitch; a chord sings its top note.
- Onset consonants take `consonant_seconds` each from the syllable's start, coda consonants from
  its end (together at most half of it); the vowel(s) take the rest.
- Rests become a space token with F0 0; words not separated by a rest get a 0-frame space; a
  trailing rest is dropped.

Shapes: token_ids (n_tokens,) int64 (Mellotron's 185 symbols), durations (n_tokens,) frames,
f0 (n_frames,) Hz, `alignment()` (n_frames, n_tokens) binary.
"""

from __future__ import annotations

import dataclasses
import os

import torch

__all__ = ["Note", "SungPart", "read_score"]

_VOWEL_LETTERS = set("aeiouy")


@dataclasses.dataclass(frozen=True)
class Note:
    lyric: str | None  # None: a rest, a melisma or a tied continuation
    hz: float  # 0 for rests
    start_frame: int
    end_frame: int


@dataclasses.dataclass
class SungPart:
    name: str
    tempo: float  # quarter notes per minute
    phones: tuple[str, ...]  # per token, a Mellotron symbol: "@AH0" (ARPAbet), a letter, or " "
    token_ids: torch.Tensor  # (n_tokens,) int64
    durations: torch.Tensor  # (n_tokens,) int64 frames; sums to n_frames
    f0: torch.Tensor  # (n_frames,) float32 Hz, 0 on rests
    notes: tuple[Note, ...]

    @property
    def text(self) -> str:
        """The tokens as text: "{HH AH0 L OW1} {W ER1 L D}"."""
        words = "".join("{" + phone[1:] + "}" if phone.startswith("@") else phone for phone in self.phones)
        return words.replace("}{", " ").strip()

    def alignment(self) -> torch.Tensor:
        """(n_frames, n_tokens) binary: frame t attends to the token sung at t."""
        owner = torch.repeat_interleave(torch.arange(len(self.durations)), self.durations)
        return torch.nn.functional.one_hot(owner, len(self.durations)).float()


def _is_vowel(phone: str) -> bool:
    return (phone.startswith("@") and phone[-1].isdigit()) or (len(phone) == 1 and phone.lower() in _VOWEL_LETTERS)


def _word_phones(word: str, convert_stress: bool) -> list[str]:
    from text import cmudict

    entries = cmudict.pronunciations(word)
    if not entries:
        return [letter for letter in word if letter.isalpha()]
    return ["@" + (phone[:-1] + "1" if convert_stress and phone[-1].isdigit() else phone) for phone in entries[0]]


def _syllables(phones: list[str], count: int) -> list[list[str]]:
    """Split a word's phones into at most `count` syllables at vowels (onset-first)."""
    groups: list[list[str]] = [[]]
    for index, phone in enumerate(phones):
        groups[-1].append(phone)
        later_vowel = any(_is_vowel(p) for p in phones[index + 1:])
        if _is_vowel(phone) and later_vowel and len(groups) < count:
            groups.append([])
    # consonants after a vowel belong to the next syllable's onset, except at the word's end
    for index in range(len(groups) - 1):
        while groups[index] and not _is_vowel(groups[index][-1]):
            groups[index + 1].insert(0, groups[index].pop())
    return groups


def _phone_frames(phones: list[str], n_frames: int, consonant_frames: int) -> list[int]:
    """Frames per phone of one syllable: consonants a fixed share (≤ half), vowels the rest."""
    n_consonants = sum(not _is_vowel(p) for p in phones)
    n_vowels = len(phones) - n_consonants
    each = min(consonant_frames, n_frames // 2 // max(n_consonants, 1)) if n_vowels else n_frames // max(len(phones), 1)
    frames = [each if not _is_vowel(p) or not n_vowels else 0 for p in phones]
    remaining = n_frames - sum(frames)
    vowel_indices = [i for i, p in enumerate(phones) if _is_vowel(p)] or [len(phones) - 1]
    for rank, index in enumerate(vowel_indices):
        frames[index] += remaining // len(vowel_indices) + (rank < remaining % len(vowel_indices))
    return frames


def _events(part, bpm: float, frame_rate: float) -> list[tuple[str | None, str | None, float, int, int, bool]]:
    """(lyric, syllabic, hz, start_frame, end_frame, continues_previous) per note or rest."""
    events = []
    for element in part.flatten().notesAndRests:
        start = round(float(element.offset) * 60.0 / bpm * frame_rate)
        end = round(float(element.offset + element.quarterLength) * 60.0 / bpm * frame_rate)
        if element.isRest:
            events.append((None, None, 0.0, start, end, False))
            continue
        pitch = max(element.pitches, key=lambda p: p.frequency) if element.isChord else element.pitch
        tied = element.tie is not None and element.tie.type in ("stop", "continue")
        lyric = "".join(ch for ch in (element.lyric or "") if ch.isalpha() or ch == "'") or None
        syllabic = element.lyrics[0].syllabic if element.lyrics and lyric else None
        events.append((None if tied else lyric, syllabic, float(pitch.frequency), start, end, tied or lyric is None))
    return events


def _words(events) -> list[tuple[str, list[list[tuple[int, int]]]] | tuple[None, int, int]]:
    """Group events into words (text, per-syllable frame spans) and rests (None, start, end)."""
    items, current = [], None
    for lyric, syllabic, hz, start, end, extends in events:
        if hz == 0.0:
            items.append((None, start, end))
            current = None
        elif extends and items and items[-1][0] is not None:
            items[-1][1][-1].append((start, end))  # melisma / tie: the last syllable goes on
        elif lyric is not None:
            if current is not None and syllabic in ("middle", "end"):
                current[0].append(lyric)
                current[1].append([(start, end)])
            else:
                current = ([lyric], [[(start, end)]])
                items.append(current)
            if syllabic in (None, "single", "end"):
                current = None
    return [("".join(item[0]), item[1]) if item[0] is not None else item for item in items]


def _sung_part(name: str, part, bpm: float, frame_rate: float, consonant_seconds: float,
               convert_stress: bool) -> SungPart:
    from text.symbols import symbol_to_id

    events = _events(part, bpm, frame_rate)
    while events and events[-1][2] == 0.0:
        events.pop()  # NVIDIA drops trailing empty frames
    consonant_frames = max(1, round(consonant_seconds * frame_rate))
    phones, durations = [], []
    for item in _words(events):
        if item[0] is None:
            phones.append(" ")
            durations.append(item[2] - item[1])
            continue
        if phones and phones[-1] != " ":
            phones.append(" ")
            durations.append(0)
        word, spans = item
        for group, span in zip(_syllables(_word_phones(word, convert_stress), len(spans)), spans):
            phones += group
            durations += _phone_frames(group, span[-1][1] - span[0][0], consonant_frames)
    n_frames = events[-1][4] if events else 0
    f0 = torch.zeros(n_frames)
    for _, _, hz, start, end, _ in events:
        f0[start:end] = hz
    table = symbol_to_id("mellotron")
    ids = [table[phone] for phone in phones]
    notes = tuple(Note(e[0], e[2], e[3], e[4]) for e in events)
    return SungPart(name, bpm, tuple(phones), torch.tensor(ids, dtype=torch.long),
                    torch.tensor(durations, dtype=torch.long), f0, notes)


def read_score(path: str | os.PathLike, bpm: float | None = None, sample_rate: int = 22050, hop_length: int = 256,
               consonant_seconds: float = 0.06, convert_stress: bool = False) -> list[SungPart]:
    """Every part of a MusicXML score (parts with several voices give one `SungPart` per voice).

    `bpm` overrides the score's tempo; `convert_stress` sets every stress digit to 1 (NVIDIA's
    notebook option)."""
    import music21

    score = music21.converter.parse(str(path))
    if bpm is None:
        marks = list(score.flatten().getElementsByClass(music21.tempo.MetronomeMark))
        bpm = float(marks[0].getQuarterBPM()) if marks else 120.0
    frame_rate = sample_rate / hop_length
    parts = []
    for index, part in enumerate(score.parts):
        name = part.partName or f"part{index + 1}"
        voices = list(part.voicesToParts().parts) if part.hasVoices() else [part]
        for number, voice in enumerate(voices):
            label = name if len(voices) == 1 else f"{name}/voice{number + 1}"
            parts.append(_sung_part(label, voice, bpm, frame_rate, consonant_seconds, convert_stress))
    return parts
