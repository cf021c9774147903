"""voxflow's text frontend: cleaners, normalization, CMUdict ARPAbet, symbol tables, sentences.

Pure Python with no dependency on the rest of voxflow (or on torch):

    import text
    text.clean_text("Dr. Smith paid $3.50.", ["english_cleaners"])
    ids = text.text_to_sequence("Hello {W ER1 L D}.", ["english_cleaners"], symbol_set="tacotron2")
    text.sequence_to_text(ids, symbol_set="tacotron2")
    text.split_sentences(long_text)
"""

from text.cleaners import CLEANERS, clean_text
from text.normalize import normalize
from text.sentences import split_sentences
from text.sequence import sequence_to_text, text_to_sequence, unknown_characters, words_to_arpabet
from text.symbols import SYMBOL_SETS, symbol_to_id, symbols_for

__all__ = [
    "CLEANERS", "clean_text", "normalize", "split_sentences", "text_to_sequence", "sequence_to_text",
    "unknown_characters", "words_to_arpabet", "SYMBOL_SETS", "symbols_for", "symbol_to_id",
]
