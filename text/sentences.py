"""Sentence splitting for long input: each sentence is synthesized on its own, then joined.

`split_sentences(text, max_chars=300)` splits after `.`, `!`, `?` (and closing quotes/brackets)
when the next word starts a sentence, but not after titles ("Dr."), initials ("J. R. R."),
"e.g."/"i.e." or inside numbers ("3.5"). A sentence longer than `max_chars` is cut further at
`;`, `:` or `,`, and as a last resort between words, so no piece exceeds what a Tacotron-style
decoder can attend over.
"""

from __future__ import annotations

import re

__all__ = ["split_sentences"]

_NO_BREAK_AFTER = frozenset(
    "mr mrs ms dr drs st jr sr prof rev gen col lt sgt capt maj hon esq mt ft co ltd vs etc no approx "
    "dept ave blvd inc e.g i.e a.m p.m".split()
)
_BOUNDARY_RE = re.compile(r"([.!?]+[\"')\]]*)(\s+)(?=[\"'(\[]?[A-Z0-9{])")
_CLAUSE_RE = re.compile(r"(?<=[;:,])\s+")


def _is_false_boundary(before: str) -> bool:
    word = before.rsplit(None, 1)[-1].rstrip(".!?\"')]").lstrip("\"'([").lower() if before.strip() else ""
    return word in _NO_BREAK_AFTER or (len(word) == 1 and word.isalpha())


def _split_long(sentence: str, max_chars: int) -> list[str]:
    if len(sentence) <= max_chars:
        return [sentence]
    pieces, current = [], ""
    for clause in _CLAUSE_RE.split(sentence):
        if current and len(current) + 1 + len(clause) > max_chars:
            pieces.append(current)
            current = clause
        else:
            current = f"{current} {clause}" if current else clause
    pieces.append(current)
    result = []
    for piece in pieces:  # a clause longer than max_chars: cut between words
        while len(piece) > max_chars:
            cut = piece.rfind(" ", 0, max_chars)
            cut = cut if cut > 0 else max_chars
            result.append(piece[:cut].strip())
            piece = piece[cut:].strip()
        result.append(piece)
    return [piece for piece in result if piece]


def split_sentences(text: str, max_chars: int = 300) -> list[str]:
    """The sentences of `text`, in order, stripped; none longer than `max_chars`."""
    if max_chars < 20:
        raise ValueError(f"max_chars: expected at least 20, found {max_chars}")
    text = " ".join(text.split())
    sentences, start = [], 0
    for match in _BOUNDARY_RE.finditer(text):
        if _is_false_boundary(text[start:match.end(1)]):
            continue
        sentences.append(text[start:match.end(1)].strip())
        start = match.end()
    sentences.append(text[start:].strip())
    return [piece for sentence in sentences if sentence for piece in _split_long(sentence, max_chars)]
