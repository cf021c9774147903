"""Build a multi-speaker training corpus in LJSpeech layout from real speech engines.

`build_corpus(out, ...)` takes sentences from an offline source (`tts.corpus.sentences`), gives
them to the voices in turn (sentence i → voice i mod n_voices, so every voice gets a balanced
share), speaks each one with an engine (`tts.corpus.engines`) under prosody drawn from
`random.Random(f"{seed}:{i}")`, and post-processes the audio: 22050 Hz mono, leading and
trailing silence trimmed to a 50 ms margin, peak-normalised to 0.9. It writes

    out/corpus.json    the settings, so a rerun can tell "resume" from "a different corpus"
    out/metadata.csv   id|text|normalized_text|speaker, e.g. `slt_00012|...|...|slt`
    out/wavs/ID.wav    16-bit PCM, 22050 Hz mono

Builds are resumable: a clip whose wav exists and is readable is kept, so rerunning a killed
build only makes the rest. For the same reason a corpus grows in place: the same settings with a
larger `n_sentences` keep every clip and make only the new ones (fewer would drop clips: refused).
Each wav is renamed into place once complete, and metadata.csv is rewritten atomically after
every batch of clips, so neither is ever seen half-written.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import logging
import os
import random
from pathlib import Path
from typing import Sequence

import librosa
import numpy as np
import soundfile
from tqdm import tqdm

from tts.audio import AudioConfig, load_audio, save_audio
from tts.checkpoint import atomic_write
from tts.corpus.engines import Engine, get_engine
from tts.corpus.sentences import corpus_sentences
from tts.errors import UserError

__all__ = ["build_corpus", "postprocess", "CORPUS_FORMAT_VERSION", "SAMPLE_RATE"]

logger = logging.getLogger(__name__)

CORPUS_FORMAT_VERSION = 1
SAMPLE_RATE = AudioConfig().sample_rate
_TRIM_TOP_DB = 40.0  # below the clip's peak, what counts as silence
_MARGIN_S = 0.05  # silence kept at each end, so no onset or release is cut
_PEAK = 0.9
_BATCH = 32  # clips between two metadata.csv rewrites


@dataclasses.dataclass(frozen=True)
class _Clip:
    clip_id: str
    text: str
    voice: str
    prosody: dict[str, float]


def build_corpus(out: str | os.PathLike, engine: str = "flite", voices: Sequence[str] | None = None,
                 n_sentences: int = 1000, seed: int = 0, source: str = "wordnet", prosody: bool = True,
                 progress: bool = True, min_words: int = 3, max_words: int = 20, workers: int = 2) -> Path:
    """Make (or finish) the corpus in `out` and return `out`. See the module docstring for the layout.

    Raises `UserError` for bad arguments, `EngineMissingError` when the engine is not installed,
    and refuses an `out` that holds a corpus built with other settings.
    """
    out = Path(out)
    speech_engine = get_engine(engine)
    voices = speech_engine.check_voices(voices if voices is not None else speech_engine.default_voices)
    speech_engine.check_installed()
    if n_sentences < 1 or workers < 1:
        raise UserError(f"expected n_sentences >= 1 and workers >= 1, found {n_sentences} and {workers}")
    settings = {"format_version": CORPUS_FORMAT_VERSION, "engine": engine, "voices": list(voices),
                "n_sentences": n_sentences, "seed": seed, "source": source, "prosody": prosody,
                "min_words": min_words, "max_words": max_words, "sample_rate": SAMPLE_RATE}
    sentences = corpus_sentences(settings)
    if len(sentences) < n_sentences:
        raise UserError(f"the {source} source has only {len(sentences)} sentences of {min_words}-{max_words} "
                        f"words; ask for fewer than {n_sentences}")
    _claim_folder(out, settings)
    clips = _plan(speech_engine, sentences, voices, seed, prosody)
    done = {clip.clip_id for clip in clips if _is_readable(out / "wavs" / f"{clip.clip_id}.wav")}
    if done:
        logger.info("%s: %d of %d clips already made; making the rest", out, len(done), len(clips))
    try:
        _synthesize_all(speech_engine, [clip for clip in clips if clip.clip_id not in done], out, done,
                        clips, workers, progress)
    finally:
        _write_metadata(out, [clip for clip in clips if clip.clip_id in done])
    return out


def _claim_folder(out: Path, settings: dict) -> None:
    """Create `out` for these settings, or check it holds a corpus built with the same ones."""
    settings_file = out / "corpus.json"
    if settings_file.is_file():
        try:
            found = json.loads(settings_file.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise UserError(f"{settings_file}: not a voxflow corpus settings file; use another --out") from None
        changed = sorted(key for key in settings.keys() | found.keys() if settings.get(key) != found.get(key))
        if changed == ["n_sentences"] and settings["n_sentences"] > found["n_sentences"]:
            # Growing keeps every clip: sentence i, its voice and its prosody depend only on i and
            # the other settings, so the larger corpus starts with exactly the smaller one.
            logger.info("%s: growing the corpus from %d to %d clips", out, found["n_sentences"],
                        settings["n_sentences"])
        elif changed:
            differences = "; ".join(f"{key}: built with {found.get(key)!r}, asked for {settings.get(key)!r}"
                                    for key in changed)
            raise UserError(f"{out} holds a corpus built with other settings ({differences}); "
                            f"rerun with the same settings to resume, or choose another --out")
    elif out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"{out} exists and is not a voxflow corpus (no corpus.json); choose an empty or new --out")
    (out / "wavs").mkdir(parents=True, exist_ok=True)
    for leftover in (out / "wavs").glob(".*.partial.wav"):
        leftover.unlink()  # a wav being written when an earlier run was killed
    text = json.dumps(settings, indent=2, sort_keys=True) + "\n"
    atomic_write(settings_file, lambda path: Path(path).write_text(text, encoding="utf-8"))


def _plan(engine: Engine, sentences: list[str], voices: tuple[str, ...], seed: int, prosody: bool) -> list[_Clip]:
    clips = []
    for index, text in enumerate(sentences):
        voice = voices[index % len(voices)]
        # One RNG per clip: its prosody does not depend on which clips a resumed run still has to make.
        rng = random.Random(f"{seed}:{index}")
        settings = engine.draw_prosody(voice, rng) if prosody else {}
        clips.append(_Clip(f"{voice}_{index:05d}", text, voice, settings))
    return clips


def _synthesize_all(engine: Engine, todo: list[_Clip], out: Path, done: set[str], clips: list[_Clip],
                    workers: int, progress: bool) -> None:
    """Make the clips in `todo` on a small thread pool; add each finished id to `done`."""
    bar = tqdm(total=len(clips), initial=len(clips) - len(todo), unit="clip", desc=f"corpus {out.name}",
               disable=None if progress else True)
    # The threads only wait on engine subprocesses and soxr, so two are enough on a small machine.
    with bar, concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        for start in range(0, len(todo), _BATCH):
            futures = {pool.submit(_make_clip, engine, clip, out): clip for clip in todo[start:start + _BATCH]}
            try:
                for future in concurrent.futures.as_completed(futures):
                    future.result()
                    done.add(futures[future].clip_id)
                    bar.update(1)
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
            _write_metadata(out, [clip for clip in clips if clip.clip_id in done])


def _make_clip(engine: Engine, clip: _Clip, out: Path) -> None:
    wav = out / "wavs" / f"{clip.clip_id}.wav"
    partial = wav.with_name(f".{clip.clip_id}.partial.wav")
    raw = wav.with_name(f".{clip.clip_id}.raw.partial.wav")
    try:
        engine.synthesize(clip.voice, clip.text, raw, clip.prosody)
        audio = postprocess(load_audio(raw, SAMPLE_RATE), SAMPLE_RATE)
        save_audio(partial, audio, SAMPLE_RATE)
        os.replace(partial, wav)
    finally:
        raw.unlink(missing_ok=True)
        partial.unlink(missing_ok=True)


def postprocess(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Trim leading/trailing silence to a 50 ms margin and scale the peak to 0.9 (float32 in, out)."""
    if not np.abs(audio).max() > 0:
        raise UserError("the engine produced silence")
    _, (start, end) = librosa.effects.trim(audio, top_db=_TRIM_TOP_DB)
    margin = int(_MARGIN_S * sample_rate)
    audio = audio[max(start - margin, 0):min(end + margin, len(audio))]
    # The same peak for every clip evens out the engines' levels and leaves headroom for int16.
    return (audio * (_PEAK / np.abs(audio).max())).astype(np.float32)


def _is_readable(wav: Path) -> bool:
    try:
        return soundfile.info(str(wav)).frames > 0
    except Exception:  # missing, truncated or not audio: soundfile raises several kinds
        return False


def _write_metadata(out: Path, clips: list[_Clip]) -> None:
    from text import normalize

    lines = [f"{clip.clip_id}|{clip.text}|{normalize(clip.text)}|{clip.voice}\n" for clip in clips]
    atomic_write(out / "metadata.csv", lambda path: Path(path).write_text("".join(lines), encoding="utf-8"))
