"""Written English → the words a reader would say, keeping case and punctuation.

`normalize(text)` is what an LJSpeech-style "normalized text" column holds and what the cleaners
build on:

- abbreviations: titles ("Dr." → "Doctor"), "St." as "Saint" before a name and "Street" after one,
  "No. 5" → "number 5", "e.g.", "i.e.", "vs.", "etc.";
- symbols: "&" → "and", "@" → "at", "+" → "plus", "#5" → "number five", "=" → "equals";
- numbers (see `text.numbers`);
- acronyms read letter by letter when CMUdict spells them out or does not know them ("FBI" →
  "F B I"; "NASA" stays a word);
- unicode → ASCII with unidecode (optional), whitespace collapsed.
"""

from __future__ import annotations

import re

from text import cmudict
from text.numbers import expand_numbers

__all__ = ["normalize", "expand_abbreviations", "expand_symbols", "expand_acronyms", "collapse_whitespace"]

# NVIDIA's 18 abbreviations, plus common ones they lack. "st" is context-dependent (below).
_ABBREVIATIONS = {
    "mrs": "misess", "mr": "mister", "dr": "doctor", "co": "company", "jr": "junior", "maj": "major",
    "gen": "general", "drs": "doctors", "rev": "reverend", "lt": "lieutenant", "hon": "honorable",
    "sgt": "sergeant", "capt": "captain", "esq": "esquire", "ltd": "limited", "col": "colonel",
    "ft": "fort", "prof": "professor", "mt": "mount", "vs": "versus", "etc": "et cetera",
    "approx": "approximately", "dept": "department", "ave": "avenue", "blvd": "boulevard",
}
_ABBREVIATION_RE = re.compile(r"\b(%s)\.(?=\W|$)" % "|".join(_ABBREVIATIONS), re.IGNORECASE)
_LATIN_RE = re.compile(r"\b(e\.g|i\.e)\.", re.IGNORECASE)
_NUMBER_SIGN_RE = re.compile(r"\b(No)\.(?=\s?\d)", re.IGNORECASE)
_SAINT_STREET_RE = re.compile(r"\bSt\.(?=\s|$)")
_PREVIOUS_WORD_RE = re.compile(r"(\S+)\s+$")
_NEXT_WORD_RE = re.compile(r"\s+(\S+)")
_SYMBOLS = [
    (re.compile(r"\s*&\s*"), " and "),
    (re.compile(r"(?<=\w)\s*@\s*(?=\w)|\s+@\s+"), " at "),
    (re.compile(r"(?<=[\w\s])\+(?=[\s\d])"), " plus "),
    (re.compile(r"#\s?(?=\d)"), "number "),
    (re.compile(r"\s=\s"), " equals "),
]
_ACRONYM_RE = re.compile(r"\b[A-Z]{2,6}\b")
_WHITESPACE_RE = re.compile(r"\s+")


def _keep_case(source: str, word: str) -> str:
    return word[:1].upper() + word[1:] if source[:1].isupper() else word


def _saint_or_street(text: str, match: re.Match) -> str:
    previous = _PREVIOUS_WORD_RE.search(text[:match.start()])
    following = _NEXT_WORD_RE.match(text, match.end())
    previous_word = previous.group(1) if previous else ""
    after_name = (previous_word[:1].isupper() or previous_word[:1].isdigit()) and previous_word[-1] not in ".!?"
    before_name = bool(following) and following.group(1)[:1].isupper()
    if after_name:  # "Main St." / "5th St." — keep the period when it also ends the sentence
        return "Street." if not following or before_name else "Street"
    return "Saint" if before_name else "Street."


def expand_abbreviations(text: str) -> str:
    text = _SAINT_STREET_RE.sub(lambda match: _saint_or_street(text, match), text)
    text = _LATIN_RE.sub(lambda m: "for example," if m.group(1).lower() == "e.g" else "that is,", text)
    text = _NUMBER_SIGN_RE.sub(lambda m: _keep_case(m.group(1), "number"), text)
    return _ABBREVIATION_RE.sub(lambda m: _keep_case(m.group(1), _ABBREVIATIONS[m.group(1).lower()]), text)


def expand_symbols(text: str) -> str:
    for pattern, replacement in _SYMBOLS:
        text = pattern.sub(replacement, text)
    return text


def expand_acronyms(text: str) -> str:
    """Spell out all-caps words that are read letter by letter; leave shouted text alone."""
    letters = [character for character in text if character.isalpha()]
    if letters and sum(character.isupper() for character in letters) > 0.6 * len(letters):
        return text

    def spell(match: re.Match) -> str:
        word = match.group(0)
        known = cmudict.pronunciations(word)
        if cmudict.is_spelled_out(word) or (not known and (len(word) <= 4 or not re.search("[AEIOU]", word))):
            return " ".join(word)
        return word

    return _ACRONYM_RE.sub(spell, text)


def collapse_whitespace(text: str) -> str:
    return _WHITESPACE_RE.sub(" ", text).strip()


def normalize(text: str, transliterate: bool = True) -> str:
    """Expand abbreviations, symbols, numbers and acronyms; unidecode when `transliterate`."""
    ends_sentence = text.rstrip().endswith(".")
    text = expand_abbreviations(text)
    text = expand_symbols(text)
    text = expand_numbers(text)  # before unidecode, which would turn "£" into "PS"
    if transliterate:
        from unidecode import unidecode

        text = expand_numbers(unidecode(text))  # unidecode can produce digits ("½" -> "1/2")
    text = collapse_whitespace(expand_acronyms(text))
    if ends_sentence and not text.endswith((".", "!", "?")):
        text += "."  # the final period went with an abbreviation ("etc.", "7 a.m.")
    return text
