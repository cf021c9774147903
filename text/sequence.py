"""Text ↔ token ids for a named symbol set, with word-level ARPAbet substitution.

Three text paths, named after the model whose behaviour they reproduce:

- "tacotron2" (148 symbols): clean, then map characters; `{...}` groups are ARPAbet.
- "flowtron" (185 symbols): clean, then with probability `p_arpabet` replace each word by its
  CMUdict pronunciation (`{HH AH0 L OW1}`), punctuation kept outside the braces, `'s` → extra `Z`,
  heteronyms and unknown words left as graphemes.
- "mellotron" (185 symbols): with `p_arpabet > 0`, Mellotron's path: words are taken from the *raw*
  text (its cleaners are skipped, so "2" stays a digit) and replaced by their first CMUdict
  pronunciation. Unlike NVIDIA's code, a word that loses the coin flip stays a grapheme instead
  of vanishing. With `p_arpabet == 0` it is the Tacotron 2 path over 185 symbols.

A non-ASCII character the path would lose (outside the symbol set, or deleted by the cleaners) is
first respelled by unidecode where that spelling survives: curly quotes and apostrophes ("don’t"
reads as "don't", and so finds its CMUdict entry), "ï", "ß", "Ç", "–". NVIDIA's code drops them,
so "naïve" became "nave"; text its symbol set covers is unchanged. What is still lost ("☃", an
emoji) is dropped with one warning per call, never an exception.
"""

from __future__ import annotations

import functools
import random
import re
import unicodedata
import warnings
from typing import Iterable, Sequence

from text import cmudict
from text.cleaners import clean_text
from text.symbols import symbol_to_id, symbols_for

__all__ = ["text_to_sequence", "sequence_to_text", "unknown_characters", "words_to_arpabet"]

_ARPABET_GROUP_RE = re.compile(r"(\{[^}]*\})")
_WORDS_RE = re.compile(r"\S*\{.*?\}\S*|\S+")
_MELLOTRON_CHUNKS_RE = re.compile(r"\{[^}]*\}|[A-Za-z]+(?:'[A-Za-z]+)?|[^A-Za-z{]+|\{")
_WORD_PARTS_RE = re.compile(r"^([^A-Za-z']*)(.*?)([^A-Za-z']*)$")
_NEVER_EMITTED = frozenset("_~")  # NVIDIA's `_should_keep_symbol` drops these in every repo


def _arpabet_word(word: str) -> str:
    """Flowtron's `get_arpabet`: "world," → "{W ER1 L D},"; unknown words come back unchanged."""
    if "{" in word:
        return word
    prefix, core, suffix = _WORD_PARTS_RE.match(word).groups()
    phones = cmudict.lookup(core) if core else None
    if phones is None and core.lower().endswith("'s"):
        base = cmudict.lookup(core[:-2])
        phones = base + ("Z",) if base else None
    if phones is None:
        return word
    return prefix + "{" + " ".join(phones) + "}" + suffix


def words_to_arpabet(text: str, p_arpabet: float = 1.0, rng: random.Random | None = None) -> str:
    """Replace each word of cleaned `text` by its pronunciation with probability `p_arpabet`."""
    rng = rng or random.Random(0)
    words = _WORDS_RE.findall(text)
    return " ".join(_arpabet_word(word) if p_arpabet >= 1 or rng.random() < p_arpabet else word
                    for word in words)


def _mellotron_arpabet(text: str, p_arpabet: float, rng: random.Random) -> str:
    pieces = []
    for chunk in _MELLOTRON_CHUNKS_RE.findall(text):
        if chunk[:1].isalpha() and (p_arpabet >= 1 or rng.random() < p_arpabet):
            entries = cmudict.pronunciations(chunk)
            chunk = "{" + " ".join(entries[0]) + "}" if entries else chunk
        pieces.append(chunk)
    return "".join(pieces)


def _prepared_text(text: str, cleaners: Sequence[str], symbol_set: str, p_arpabet: float,
                   rng: random.Random | None) -> str:
    if not 0.0 <= p_arpabet <= 1.0:
        raise ValueError(f"p_arpabet: expected a probability in [0, 1], found {p_arpabet}")
    symbols_for(symbol_set)  # a clear KeyError for unknown names
    rng = rng or random.Random(0)
    if symbol_set == "mellotron" and p_arpabet > 0:
        return _mellotron_arpabet(text, p_arpabet, rng)
    cleaned = clean_text(text, cleaners)
    return words_to_arpabet(cleaned, p_arpabet, rng) if p_arpabet > 0 else cleaned


def _to_ids(text: str, symbol_set: str) -> tuple[list[int], list[str]]:
    table = symbol_to_id(symbol_set)
    ids, unknown = [], []
    for index, piece in enumerate(_ARPABET_GROUP_RE.split(text)):
        is_arpabet = index % 2 == 1
        symbols: Iterable[str] = ("@" + phone for phone in piece[1:-1].split()) if is_arpabet else piece
        for symbol in symbols:
            if symbol in table and symbol not in _NEVER_EMITTED:
                ids.append(table[symbol])
            else:
                unknown.append("{" + symbol[1:] + "}" if is_arpabet else symbol)
    return ids, unknown


def _respelled(text: str, cleaners: Sequence[str], symbol_set: str) -> str:
    """`text` with each non-ASCII character the path would lose replaced by its unidecode
    spelling, where every character of that spelling is in the symbol set."""
    if text.isascii():  # unidecode leaves ASCII as it is: nothing to respell
        return text
    from unidecode import unidecode

    table = symbol_to_id(symbol_set)
    spellings = {}
    for character in _lost_characters(text, cleaners, symbol_set):
        spelling = unidecode(character) if len(character) == 1 and not character.isascii() else ""
        if spelling.strip() and all(symbol in table or symbol == " " for symbol in spelling):
            spellings[character] = spelling
    if not spellings:
        return text
    pieces = []
    for index, character in enumerate(text):
        spelling = spellings.get(character, character)
        if character in spellings and unicodedata.category(character)[0] in "NS":
            # a number or symbol respelled as letters or digits stays a word of its own: "3×4" is
            # "3 x 4", not "3x4" (read "three xfour")
            before, after = text[index - 1:index], text[index + 1:index + 2]
            spelling = ("" if not before or before.isspace() else " ") + spelling + (
                "" if not after or after.isspace() else " ")
        pieces.append(spelling)
    return "".join(pieces)


def text_to_sequence(text: str, cleaners: Sequence[str], symbol_set: str = "tacotron2",
                     p_arpabet: float = 0.0, rng: random.Random | None = None) -> list[int]:
    """Token ids of `text` for `symbol_set`; `rng` drives the `p_arpabet` coin flips."""
    text = _respelled(text, cleaners, symbol_set)
    ids, unknown = _to_ids(_prepared_text(text, cleaners, symbol_set, p_arpabet, rng), symbol_set)
    if unknown:
        shown = ", ".join(repr(symbol) for symbol in sorted(set(unknown)))
        warnings.warn(f"dropped {len(unknown)} symbol(s) not in the {symbol_set!r} symbol set: {shown} "
                      f"(in {text[:60]!r})", stacklevel=2)
    return ids


@functools.lru_cache(maxsize=4096)
def _vanishes(character: str, cleaners: tuple[str, ...]) -> bool:
    return not character.isspace() and not clean_text(character, cleaners).strip()


def _vanishing_characters(text: str, cleaners: Sequence[str]) -> set[str]:
    """Characters the cleaners delete outright (unidecode turns "☃" or an emoji into nothing)."""
    plain = _ARPABET_GROUP_RE.sub(" ", text)
    return {character for character in set(plain) if not character.isascii() and _vanishes(character, tuple(cleaners))}


def unknown_characters(text: str, cleaners: Sequence[str], symbol_set: str = "tacotron2") -> list[str]:
    """The symbols that would be lost even after respelling: dropped by `text_to_sequence` as
    outside the symbol set (phones shown as `{XX}`), or deleted by the cleaners themselves. Sorted
    and unique."""
    if isinstance(cleaners, str):
        cleaners = [cleaners]
    return _lost_characters(_respelled(text, cleaners, symbol_set), cleaners, symbol_set)


def _lost_characters(text: str, cleaners: Sequence[str], symbol_set: str) -> list[str]:
    dropped = set(_to_ids(_prepared_text(text, cleaners, symbol_set, 0.0, None), symbol_set)[1])
    return sorted(dropped | _vanishing_characters(text, cleaners))


def sequence_to_text(ids: Iterable[int], symbol_set: str = "tacotron2") -> str:
    """Ids back to text; runs of ARPAbet symbols come back as `{PH ON ES}` groups."""
    table = symbols_for(symbol_set)
    pieces = []
    for token in ids:
        token = int(token)
        if not 0 <= token < len(table):
            raise ValueError(f"token id {token} is outside the {symbol_set!r} symbol set (0..{len(table) - 1})")
        symbol = table[token]
        pieces.append("{" + symbol[1:] + "}" if len(symbol) > 1 and symbol.startswith("@") else symbol)
    return "".join(pieces).replace("}{", " ")
