"""Sentence sources for the synthetic corpus: real English text from offline Debian packages.

- `wordnet` (package `wordnet-base`): the quoted usage examples in the glosses of
  `/usr/share/wordnet/data.{noun,verb,adj,adv}`, e.g. `| cause to be calm; "The patient must be
  sedated before the operation"` gives "The patient must be sedated before the operation."
- `fortunes` (package `fortunes`): the entries of `/usr/share/games/fortunes/*`, which are
  separated by lines holding a single `%`; attribution lines (`-- Mark Twain`) are dropped.

Every candidate passes the same filter (`clean_sentence`): ASCII letters, digits inside plain
numbers, and basic punctuation (`,.?!'-` placed as in prose); no quotes, brackets, semicolons,
colons or symbols; a word count in [min_words, max_words]. The survivors get a capital first
letter and final punctuation, are de-duplicated (ignoring case), sorted, then shuffled with
`random.Random(seed)`: one seed always gives the same list, on any machine.
`held_out_sentences` picks test sentences that a given corpus does not contain (benchmarks).
"""

from __future__ import annotations

import functools
import json
import os
import random
import re
from pathlib import Path
from typing import Sequence

from tts.errors import UserError

__all__ = ["SOURCES", "read_sentences", "clean_sentence", "held_out_sentences"]

WORDNET_DIR = Path("/usr/share/wordnet")
FORTUNES_DIR = Path("/usr/share/games/fortunes")

# Source name → Debian package that provides it (for the "how to install" hint).
SOURCES = {"wordnet": "wordnet-base", "fortunes": "fortunes"}

_QUOTED = re.compile(r'"([^"]*)"')
# A word: letters with inner apostrophes or hyphens ("don't", "well-known", "boys'"), or a plain
# number; then at most one punctuation mark (a comma inside, `.?!` at the end of a clause).
_WORD = re.compile(r"(?:[A-Za-z]+(?:['-][A-Za-z]+)*'?|[0-9]+)[,.?!]?")
_NUMBER = re.compile(r"[0-9]+[,.?!]?")


def read_sentences(source: str = "wordnet", seed: int = 0, min_words: int = 3, max_words: int = 20) -> list[str]:
    """Clean, de-duplicated sentences from `source`, in an order that depends only on `seed`.

    Raises `UserError` for an unknown source, bad word limits, or a source that is not installed
    (with the `apt-get install` command that installs it).
    """
    if source not in SOURCES:
        raise UserError(f"unknown sentence source {source!r}; choose one of: {', '.join(SOURCES)}")
    if not 1 <= min_words <= max_words:
        raise UserError(f"expected 1 <= min_words <= max_words, found min_words={min_words} max_words={max_words}")
    sentences = list(_sorted_sentences(source, min_words, max_words))
    random.Random(seed).shuffle(sentences)
    return sentences


def corpus_sentences(settings: dict) -> list[str]:
    """The sentences a corpus built with these settings (its `corpus.json`) speaks, in order:
    rebuilt from the sentence source, so a voice's training text is known without its audio."""
    return read_sentences(settings["source"], settings["seed"], settings["min_words"],
                          settings["max_words"])[:settings["n_sentences"]]


def held_out_sentences(count: int, seed: int, exclude: Sequence[str | os.PathLike] = (), min_words: int = 4,
                       max_words: int = 12) -> list[str]:
    """`count` WordNet sentences that are not the text of any line of the `exclude` files: corpus
    metadata (`id|text[|...]`) or a corpus's settings (`corpus.json`, e.g. the one the bundled
    voices ship, `corpus_sentences`): test sentences a voice trained on those corpora has never seen."""
    seen = set()
    for path in exclude:
        text = Path(path).read_text(encoding="utf-8")
        if Path(path).suffix == ".json":
            seen.update(sentence.strip().lower() for sentence in corpus_sentences(json.loads(text)))
            continue
        for line in text.splitlines():
            fields = line.split("|")
            if len(fields) > 1:
                seen.add(fields[1].strip().lower())
    candidates = read_sentences("wordnet", seed=seed, min_words=min_words, max_words=max_words)
    chosen = [sentence for sentence in candidates if sentence.lower() not in seen][:count]
    if len(chosen) < count:
        raise ValueError(f"only {len(chosen)} of the {count} held-out sentences asked for are available")
    return chosen


def clean_sentence(candidate: str, min_words: int = 3, max_words: int = 20) -> str | None:
    """`candidate` as a speakable sentence (capitalised, with final punctuation), or None to drop it."""
    words = candidate.split()
    if not min_words <= len(words) <= max_words:
        return None
    if not all(_WORD.fullmatch(word) for word in words):
        return None  # quotes, brackets, semicolons, symbols, "--", "..." or stray punctuation
    if sum(bool(_NUMBER.fullmatch(word)) for word in words) > 1 or _NUMBER.fullmatch(words[0]):
        return None  # tables, dates and scores read badly; one number inside prose is fine
    if any(word[-1] in ".?!" for word in words[:-1]) and not _is_prose(words):
        return None
    sentence = " ".join(words)
    sentence = sentence[0].upper() + sentence[1:]
    if sentence[-1] == ",":
        sentence = sentence[:-1]
    return sentence if sentence[-1] in ".?!" else sentence + "."


def _is_prose(words: list[str]) -> bool:
    # Several sentences in one entry are fine when each new one starts with a capital letter.
    return all(following[0].isupper() for word, following in zip(words, words[1:]) if word[-1] in ".?!")


@functools.lru_cache(maxsize=4)
def _sorted_sentences(source: str, min_words: int, max_words: int) -> tuple[str, ...]:
    # Reading WordNet takes about a second; the cache makes repeated builds in one process cheap.
    candidates = _wordnet_examples() if source == "wordnet" else _fortune_entries()
    unique: dict[str, str] = {}
    for candidate in candidates:
        sentence = clean_sentence(candidate, min_words, max_words)
        if sentence is not None:
            unique.setdefault(sentence.lower(), sentence)
    if not unique:
        raise UserError(f"the {source} source has no sentences of {min_words}-{max_words} words")
    return tuple(sorted(unique.values()))


def _wordnet_examples() -> list[str]:
    files = [WORDNET_DIR / f"data.{part}" for part in ("noun", "verb", "adj", "adv")]
    _require(files, "wordnet")
    examples = []
    for file in files:
        for line in file.read_text(encoding="latin-1").splitlines():
            # Lines starting with two spaces are the licence header; the gloss follows " | ".
            if line.startswith("  ") or " | " not in line:
                continue
            examples += _QUOTED.findall(line.split(" | ", 1)[1])
    return examples


def _fortune_entries() -> list[str]:
    files = sorted(path for path in FORTUNES_DIR.glob("*") if path.is_file() and not path.suffix) \
        if FORTUNES_DIR.is_dir() else []
    _require(files, "fortunes")
    entries = []
    for file in files:
        text = file.read_text(encoding="utf-8", errors="replace")
        for entry in re.split(r"^%\s*$", text, flags=re.MULTILINE):
            lines = [line for line in entry.splitlines() if not line.strip().startswith("--")]
            entries.append(" ".join(lines))
    return entries


def _require(files: list[Path], source: str) -> None:
    missing = [str(file) for file in files if not file.is_file()] or ([] if files else [str(FORTUNES_DIR)])
    if missing:
        package = SOURCES[source]
        raise UserError(f"the {source} sentence source is not installed ({missing[0]} is missing); "
                        f"install it with: apt-get install -y {package}")
