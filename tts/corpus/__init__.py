"""The synthetic training corpus: real English sentences spoken by Debian's speech engines.

voxflow cannot download LJSpeech, so it builds its own multi-speaker corpus in LJSpeech layout
(`metadata.csv` with `id|text|normalized_text|speaker`, audio in `wavs/ID.wav`):

- `read_sentences(source, seed, min_words, max_words)`: clean sentences from WordNet's usage
  examples or the fortunes files, shuffled by seed (`tts.corpus.sentences`).
- `ENGINES` / `get_engine(name)`: flite, festival (HTS) and espeak-ng (`tts.corpus.engines`).
- `build_corpus(out, engine, voices, n_sentences, seed, source, prosody, progress)`: the
  resumable builder (`tts.corpus.build`); `voxflow corpus build` is its command line.

`build_corpus` is exported lazily (PEP 562): the builder imports torch and librosa, which the
CLI should not pay for just to list its options.
"""

from __future__ import annotations

from typing import Any

from tts.corpus.engines import ENGINES, Engine, get_engine
from tts.corpus.sentences import SOURCES, clean_sentence, read_sentences

__all__ = ["build_corpus", "read_sentences", "clean_sentence", "SOURCES", "ENGINES", "Engine", "get_engine"]


def __getattr__(name: str) -> Any:
    if name == "build_corpus":
        from tts.corpus.build import build_corpus

        return build_corpus
    raise AttributeError(f"module 'tts.corpus' has no attribute {name!r}")
