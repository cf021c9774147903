"""Numbers read as a listener expects: currency, times, years, decades, ordinals, decimals, ...

`expand_numbers(text)` rewrites every digit group in `text` into words and keeps everything else.
It goes beyond NVIDIA's `numbers.py` (which handles only $/£, ordinals, decimals and years):

    "$3.50"  -> "three dollars, fifty cents"     "£2.05" -> "two pounds, five pence"
    "10:05"  -> "ten oh five"                    "3:30 pm" -> "three thirty p m"
    "1999"   -> "nineteen ninety-nine"           "2005" -> "two thousand five", "2010" -> "twenty ten"
    "1990s"  -> "nineteen nineties"              "'80s" -> "eighties"
    "3.14"   -> "three point one four"           "50%" -> "fifty percent"
    "3/4"    -> "three quarters"                 "-5" -> "minus five", "10-20" -> "ten to twenty"
    "1,500"  -> "one thousand five hundred"      "22nd" -> "twenty-second"

Case and surrounding punctuation are preserved; the words come out lower case.
"""

from __future__ import annotations

import functools
import re

__all__ = ["expand_numbers", "number_to_words"]

_CURRENCIES = {  # symbol: (unit, units, subunit, subunits)
    "$": ("dollar", "dollars", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
    "€": ("euro", "euros", "cent", "cents"),
}
_SCALES = "thousand|million|billion|trillion"

_AMOUNT = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"  # "1,500.25"; a trailing comma is punctuation
_CURRENCY_RE = re.compile(rf"([$£€])\s?({_AMOUNT})(?:\s({_SCALES})\b)?", re.IGNORECASE)
# "a.m." keeps its final period when it ends the text, where it also ends the sentence.
_TIME_RE = re.compile(r"\b([01]?\d|2[0-3]):([0-5]\d)(?:\s?([ap])\.?\s?m\b(?:\.(?!\s*$))?)?", re.IGNORECASE)
_CLOCK_RE = re.compile(r"\b(1[0-2]|[1-9])\s?([ap])\.?\s?m\b(?:\.(?!\s*$))?", re.IGNORECASE)
_ALPHANUMERIC_RE = re.compile(r"(?<=\d)(?!(?:st|nd|rd|th|s)\b)(?=[A-Za-z])", re.IGNORECASE)
_DECADE_RE = re.compile(r"(?:\b(1\d|20)|'|\b)(\d)0s\b")
_PERCENT_RE = re.compile(rf"({_AMOUNT})\s?%")
_FRACTION_RE = re.compile(r"(?<![\d/])(\d{1,3})/(\d{1,2})(?![\d/])")
_RANGE_RE = re.compile(r"(?<=\d)\s?[-–]\s?(?=\d)")
_NEGATIVE_RE = re.compile(r"(?<![\w.])[-−](?=\d)")
_GROUPED_RE = re.compile(r"\b\d{1,3}(?:,\d{3})+\b")
_DECIMAL_RE = re.compile(r"\b(\d+)\.(\d+)\b")
_ORDINAL_RE = re.compile(r"\b(\d+)(st|nd|rd|th)\b", re.IGNORECASE)
_NUMBER_RE = re.compile(r"\d+")


@functools.lru_cache(maxsize=1)
def _engine():
    # inflect takes ~2 s to import, so it is loaded the first time a digit is seen.
    import inflect

    return inflect.engine()


@functools.lru_cache(maxsize=4096)
def number_to_words(number: int | str) -> str:
    """A cardinal or ordinal ("21", "21st") in words, without "and" or commas."""
    words = _engine().number_to_words(str(number), andword="", comma="")
    return words.replace(",", "")


def _year_to_words(year: int) -> str:
    if year % 1000 == 0 or 2000 < year < 2010:
        return number_to_words(year)  # "two thousand", "two thousand five"
    if year % 100 == 0:
        return number_to_words(year // 100) + " hundred"  # "nineteen hundred"
    return _engine().number_to_words(year, andword="", zero="oh", group=2, comma="").replace(",", "")


def _integer_to_words(digits: str) -> str:
    value = int(digits)
    if len(digits) > 1 and digits.startswith("0"):
        return " ".join(number_to_words(digit) for digit in digits)  # "007" -> "zero zero seven"
    if 1000 < value < 3000:
        return _year_to_words(value)  # NVIDIA's rule: 4-digit numbers in this range read as years
    return number_to_words(value)


def _decimal_to_words(integer: str, fraction: str) -> str:
    return f"{number_to_words(int(integer))} point " + " ".join(number_to_words(digit) for digit in fraction)


def _amount_to_words(amount: str) -> str:
    amount = amount.replace(",", "")
    if "." in amount:
        integer, fraction = amount.split(".", 1)
        return _decimal_to_words(integer or "0", fraction)
    return number_to_words(int(amount))


def _currency(match: re.Match) -> str:
    unit, units, subunit, subunits = _CURRENCIES[match.group(1)]
    amount, scale = match.group(2).replace(",", ""), match.group(3)
    if scale:  # "$2.5 million" -> "two point five million dollars"
        return f"{_amount_to_words(amount)} {scale.lower()} {units}"
    whole, _, cents = amount.partition(".")
    whole_value = int(whole or 0)
    cents_value = int((cents + "00")[:2]) if cents else 0
    if cents and len(cents) > 2:  # "$1.005" is not money; read it as a decimal
        return f"{_decimal_to_words(whole or '0', cents)} {units}"
    parts = []
    if whole_value or not cents_value:
        parts.append(f"{number_to_words(whole_value)} {unit if whole_value == 1 else units}")
    if cents_value:
        parts.append(f"{number_to_words(cents_value)} {subunit if cents_value == 1 else subunits}")
    return ", ".join(parts)


def _meridiem(letter: str | None) -> str:
    return f" {letter.lower()} m" if letter else ""


def _time(match: re.Match) -> str:
    hours, minutes = int(match.group(1)), int(match.group(2))
    spoken_hours = number_to_words(hours)
    if minutes == 0:
        spoken = spoken_hours if match.group(3) else f"{spoken_hours} o'clock"
    elif minutes < 10:
        spoken = f"{spoken_hours} oh {number_to_words(minutes)}"
    else:
        spoken = f"{spoken_hours} {number_to_words(minutes)}"
    return spoken + _meridiem(match.group(3))


def _clock(match: re.Match) -> str:
    return number_to_words(int(match.group(1))) + _meridiem(match.group(2))


def _decade(match: re.Match) -> str:
    century, tens = match.group(1), int(match.group(2))
    if century:
        words = _year_to_words(int(century) * 100 + tens * 10).split(" ")
    else:
        words = number_to_words(tens * 10).split(" ")
    return " ".join(words[:-1] + [_engine().plural(words[-1])])


def _fraction(match: re.Match) -> str:
    numerator, denominator = int(match.group(1)), int(match.group(2))
    if denominator < 2:
        return f"{number_to_words(numerator)} over {number_to_words(denominator)}"
    if denominator == 2:
        name = "half" if numerator == 1 else "halves"
    elif denominator == 4:
        name = "quarter" if numerator == 1 else "quarters"
    else:
        name = number_to_words(f"{denominator}th" if denominator > 3 else {3: "3rd"}[denominator])
        name = name if numerator == 1 else _engine().plural(name)
    return f"{number_to_words(numerator)} {name}"


def expand_numbers(text: str) -> str:
    """Rewrite every number in `text` as words (see the module docstring for the cases)."""
    if not any(character.isdigit() for character in text):
        return text
    text = _CURRENCY_RE.sub(_currency, text)
    text = _TIME_RE.sub(_time, text)
    text = _CLOCK_RE.sub(_clock, text)
    text = _DECADE_RE.sub(_decade, text)
    text = _ALPHANUMERIC_RE.sub(" ", text)  # "221B" -> "221 B"
    text = _PERCENT_RE.sub(lambda m: f"{_amount_to_words(m.group(1))} percent", text)
    text = _FRACTION_RE.sub(_fraction, text)
    text = _RANGE_RE.sub(" to ", text)
    text = _NEGATIVE_RE.sub("minus ", text)
    text = _GROUPED_RE.sub(lambda m: number_to_words(int(m.group(0).replace(",", ""))), text)
    text = _DECIMAL_RE.sub(lambda m: _decimal_to_words(m.group(1), m.group(2)), text)
    text = _ORDINAL_RE.sub(lambda m: number_to_words(m.group(1) + m.group(2).lower()), text)
    return _NUMBER_RE.sub(lambda m: _integer_to_words(m.group(0)), text)
