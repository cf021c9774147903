"""Symbol tables, reproduced exactly from NVIDIA's repos so their embedding rows line up.

- "tacotron2": NVIDIA Tacotron 2 / DeepLearningExamples, 148 symbols: pad `_`, `-`,
  punctuation `!'(),.:;? `, A-Z, a-z, then the 84 CMUdict ARPAbet symbols prefixed with `@`.
- "flowtron" / "mellotron": 185 symbols, identical in both repos: punctuation, maths, special,
  accented letters, digits, A-Z, a-z, then the same 84 `@`-ARPAbet symbols. Index 0 is `!`
  (there is no pad symbol; padding is masked).

The order of each list is the file format of the embedding matrix: never reorder.
"""

from __future__ import annotations

import string

__all__ = ["ARPABET", "SYMBOL_SETS", "symbols_for", "symbol_to_id"]

# CMUdict's phone set with stress variants, in the order of keithito's `valid_symbols`.
ARPABET: tuple[str, ...] = tuple(
    "AA AA0 AA1 AA2 AE AE0 AE1 AE2 AH AH0 AH1 AH2 AO AO0 AO1 AO2 AW AW0 AW1 AW2 "
    "AY AY0 AY1 AY2 B CH D DH EH EH0 EH1 EH2 ER ER0 ER1 ER2 EY EY0 EY1 EY2 F G "
    "HH IH IH0 IH1 IH2 IY IY0 IY1 IY2 JH K L M N NG OW OW0 OW1 OW2 OY OY0 OY1 "
    "OY2 P R S SH T TH UH UH0 UH1 UH2 UW UW0 UW1 UW2 V W Y Z ZH".split()
)

_ARPABET_SYMBOLS = tuple("@" + phone for phone in ARPABET)

_TACOTRON2 = (
    ("_", "-")
    + tuple("!'(),.:;? ")
    + tuple(string.ascii_uppercase)
    + tuple(string.ascii_lowercase)
    + _ARPABET_SYMBOLS
)

_FLOWTRON = (
    tuple("!'\",.:;? ")
    + tuple("#%&*+-/[]()")
    + tuple("_@©°½—₩€$")
    + tuple("áçéêëñöøćž")
    + tuple(string.digits)
    + tuple(string.ascii_uppercase)
    + tuple(string.ascii_lowercase)
    + _ARPABET_SYMBOLS
)

SYMBOL_SETS: dict[str, tuple[str, ...]] = {
    "tacotron2": _TACOTRON2,
    "flowtron": _FLOWTRON,
    "mellotron": _FLOWTRON,
}

_SYMBOL_TO_ID = {name: {symbol: i for i, symbol in enumerate(table)} for name, table in SYMBOL_SETS.items()}


def symbols_for(symbol_set: str) -> tuple[str, ...]:
    """The ordered symbol list of a named set; raises `KeyError` with the known names."""
    try:
        return SYMBOL_SETS[symbol_set]
    except KeyError:
        raise KeyError(f"unknown symbol set {symbol_set!r}; known: {sorted(SYMBOL_SETS)}") from None


def symbol_to_id(symbol_set: str) -> dict[str, int]:
    """Symbol → embedding row for a named set."""
    symbols_for(symbol_set)
    return _SYMBOL_TO_ID[symbol_set]
