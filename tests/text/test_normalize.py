"""Normalization and cleaners against literal expected strings."""

from __future__ import annotations

import pytest

from text import clean_text, normalize

ENGLISH_CASES = [
    # cardinals, grouped numbers, leading zeros
    ("I have 2 dogs and 123 cats.", "i have two dogs and one hundred twenty-three cats."),
    ("1,500 people and 1,234,567 ants.", "one thousand five hundred people and one million two hundred thirty-four thousand five hundred sixty-seven ants."),
    ("Agent 007.", "agent zero zero seven."),
    # ordinals
    ("The 1st, 22nd, 3rd and 101st.", "the first, twenty-second, third and one hundred first."),
    # years, including 2000-2009 and "twenty ten"
    ("In 1999, 1905, 1900, 2000, 2005 and 2010.",
     "in nineteen ninety-nine, nineteen oh five, nineteen hundred, two thousand, two thousand five and twenty ten."),
    # decades
    ("The 1990s and the '80s and the 1900s.", "the nineteen nineties and the eighties and the nineteen hundreds."),
    # decimals, digit by digit after the point
    ("Pi is 3.14 and 0.5 and 10.25.", "pi is three point one four and zero point five and ten point two five."),
    # currency
    ("It cost $3.50.", "it cost three dollars, fifty cents."),
    ("$1, $0.05, $1.01 and $2.5 million.", "one dollar, five cents, one dollar, one cent and two point five million dollars."),
    ("£2.05, £1 and €10.", "two pounds, five pence, one pound and ten euros."),
    # times
    ("At 3:30 pm, 10:05 and 10:00.", "at three thirty p m, ten oh five and ten o'clock."),
    ("Meet at 7 a.m. tomorrow.", "meet at seven a m tomorrow."),
    ("Meet at 7 a.m.", "meet at seven a m."),
    # percentages, fractions, negatives, ranges
    ("50% and 3.5%.", "fifty percent and three point five percent."),
    ("1/2, 3/4, 2/3 and 5/8.", "one half, three quarters, two thirds and five eighths."),
    ("It is -5 degrees on pages 10-20.", "it is minus five degrees on pages ten to twenty."),
    # symbols
    ("Tom & Jerry @ home: 2 + 2 = 4, #1 fan.", "tom and jerry at home: two plus two equals four, number one fan."),
    # abbreviations: titles, and St. as saint before a name, street after one
    ("Dr. Smith met Mr. and Mrs. Jones.", "doctor smith met mister and misess jones."),
    ("St. Louis is on Main St. near St. Paul's.", "saint louis is on main street near saint paul's."),
    ("He lives at 221B Baker St.", "he lives at two hundred twenty-one b baker street."),
    ("No. 5, e.g. this, i.e. that, vs. them, etc.", "number five, for example, this, that is, that, versus them, et cetera."),
    # acronyms: spelled when CMUdict spells them or does not know them; words stay words
    ("The FBI and NASA met the CEO.", "the f b i and nasa met the c e o."),
    ("I SAID STOP.", "i said stop."),
    # unicode to ASCII, whitespace
    ("Café   naïve\tfaçade.", "cafe naive facade."),
    ("The README example: Dr. Smith paid $3.50 at 10:05 on May 1st, 1999.",
     "the readme example: doctor smith paid three dollars, fifty cents at ten oh five on may first, nineteen ninety-nine."),
]


@pytest.mark.parametrize("written, spoken", ENGLISH_CASES)
def test_english_cleaners(written, spoken):
    assert clean_text(written, ["english_cleaners"]) == spoken


def test_normalize_keeps_case_and_punctuation():
    assert normalize("Dr. Smith paid $3.50.") == "Doctor Smith paid three dollars, fifty cents."


def test_inline_arpabet_is_left_alone_by_cleaners():
    assert clean_text("Say {HH AH0  L OW1}, Dr. Who!", ["english_cleaners"]) == "say {HH AH0 L OW1}, doctor who!"


def test_basic_and_transliteration_cleaners():
    assert clean_text("  Héllo   World 5 ", ["basic_cleaners"]) == "héllo world 5"
    assert clean_text("  Héllo   World 5 ", ["transliteration_cleaners"]) == "hello world 5"


def test_flowtron_cleaners_keep_case_and_split_hyphens():
    assert clean_text("Well-known STUFF costs $5.", ["flowtron_cleaners"]) == "Well known STUFF costs five dollars."
    assert clean_text("Café at 3:30 pm", ["flowtron_cleaners"]) == "Café at three thirty p m"


def test_cleaners_compose_in_order_and_reject_unknown_names():
    assert clean_text("Dr. X", ["basic_cleaners", "english_cleaners"]) == "doctor x"
    assert clean_text("Dr. X", "basic_cleaners") == "dr. x"
    with pytest.raises(ValueError, match="unknown cleaner 'englsh_cleaners'"):
        clean_text("x", ["englsh_cleaners"])
