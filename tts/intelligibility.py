"""Is the speech intelligible? Transcribe it with an offline recogniser and score word errors.

pocketsphinx's PyPI wheel ships a US-English acoustic model, language model and dictionary, so
this runs with no download. It hears phones, not phase: Griffin-Lim and WaveGlow audio of the
same mel score alike, so it ranks mel generators (use spectral distances for vocoders). A fresh
decoder per utterance, because the decoder carries cepstral-mean state between utterances.

    transcribe(audio, sample_rate) -> "hello world"
    word_error_rate(["Hello, world!"], ["hello word"]) -> 0.5
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

__all__ = ["transcribe", "word_error_rate", "normalize_for_scoring"]

_RECOGNISER_RATE = 16000


def transcribe(audio: np.ndarray, sample_rate: int) -> str:
    """The recogniser's best guess at the words in `audio` (mono float in [-1, 1]), lower case."""
    import librosa
    from pocketsphinx import Decoder

    if sample_rate != _RECOGNISER_RATE:
        audio = librosa.resample(np.asarray(audio, dtype=np.float32), orig_sr=sample_rate,
                                 target_sr=_RECOGNISER_RATE, res_type="soxr_hq")
    pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    decoder = Decoder(samprate=_RECOGNISER_RATE, logfn="/dev/null")
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    hypothesis = decoder.hyp()
    return hypothesis.hypstr.lower() if hypothesis is not None else ""


def normalize_for_scoring(sentence: str) -> str:
    """Words as the recogniser writes them: numbers spelled out, lower case, no punctuation."""
    from text import clean_text

    spoken = clean_text(sentence, ["english_cleaners"])
    return " ".join(re.sub(r"[^a-z' ]", " ", spoken.replace("-", " ")).split())


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus-level WER: word edits over reference words, after `normalize_for_scoring`."""
    import jiwer

    if len(references) != len(hypotheses) or not references:
        raise ValueError(f"expected equally many (> 0) references and hypotheses, "
                         f"found {len(references)} and {len(hypotheses)}")
    return float(jiwer.wer([normalize_for_scoring(reference) for reference in references],
                           [normalize_for_scoring(hypothesis) if hypothesis else "" for hypothesis in hypotheses]))
