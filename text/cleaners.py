"""Cleaners: named text pipelines, as in NVIDIA's repos, so their configs carry over.

- `english_cleaners`: normalize (abbreviations, symbols, numbers, acronyms, unidecode), lowercase.
- `basic_cleaners`: lowercase and collapse whitespace (for non-English data).
- `transliteration_cleaners`: unidecode, lowercase, collapse whitespace.
- `flowtron_cleaners`: Flowtron's choices: normalize without unidecode, keep case, and read
  hyphenated words as separate words.

`clean_text(text, cleaners)` applies cleaners in order and leaves inline ARPAbet (`{HH AH0 L OW1}`)
untouched.
"""

from __future__ import annotations

import re
from typing import Callable, Sequence

from text.normalize import collapse_whitespace, normalize

__all__ = ["CLEANERS", "clean_text", "english_cleaners", "basic_cleaners", "transliteration_cleaners",
           "flowtron_cleaners"]

_ARPABET_RE = re.compile(r"(\{[^}]*\})")
_HYPHENATED_RE = re.compile(r"(?<=[A-Za-z])-(?=[A-Za-z])")


def english_cleaners(text: str) -> str:
    return collapse_whitespace(normalize(text).lower())


def basic_cleaners(text: str) -> str:
    return collapse_whitespace(text.lower())


def transliteration_cleaners(text: str) -> str:
    from unidecode import unidecode

    return collapse_whitespace(unidecode(text).lower())


def flowtron_cleaners(text: str) -> str:
    return normalize(_HYPHENATED_RE.sub(" ", collapse_whitespace(text)), transliterate=False)


CLEANERS: dict[str, Callable[[str], str]] = {
    "english_cleaners": english_cleaners,
    "basic_cleaners": basic_cleaners,
    "transliteration_cleaners": transliteration_cleaners,
    "flowtron_cleaners": flowtron_cleaners,
}


def _clean_plain(text: str, cleaners: Sequence[str]) -> str:
    for name in cleaners:
        try:
            text = CLEANERS[name](text)
        except KeyError:
            raise ValueError(f"unknown cleaner {name!r}; known: {sorted(CLEANERS)}") from None
    return text


def clean_text(text: str, cleaners: Sequence[str]) -> str:
    """Apply the named cleaners in order to the text outside `{...}` ARPAbet groups."""
    if isinstance(cleaners, str):
        cleaners = [cleaners]
    pieces = _ARPABET_RE.split(text)
    if len(pieces) == 1:
        return _clean_plain(text, cleaners)
    cleaned = []
    for index, piece in enumerate(pieces):
        if index % 2:  # an ARPAbet group: keep it, with single spaces between phones
            cleaned.append("{" + " ".join(piece[1:-1].split()) + "}")
        elif piece.strip():
            # Keep the spaces that separate a group from its neighbours.
            lead = " " if piece[:1].isspace() and index else ""
            trail = " " if piece[-1:].isspace() and index < len(pieces) - 1 else ""
            cleaned.append(lead + _clean_plain(piece, cleaners) + trail)
        else:
            cleaned.append(" " if piece and 0 < index < len(pieces) - 1 else "")
    return "".join(cleaned)
