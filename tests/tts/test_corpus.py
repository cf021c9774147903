"""The synthetic corpus builder: sentence sources, real engines, LJSpeech output, resume, CLI."""

from __future__ import annotations

import collections
import json
import re
import shutil

import numpy as np
import pytest
import soundfile

from tts.cli import main
from tts.corpus import ENGINES, build_corpus, clean_sentence, read_sentences
from tts.corpus import engines as engines_module
from tts.corpus import sentences as sentences_module
from tts.corpus.build import postprocess
from tts.data import read_utterances
from tts.errors import EngineMissingError, UserError

_CLEAN = re.compile(r"[A-Z][A-Za-z0-9 ,.'?!-]*[.?!]")
_TINY = dict(voices=("slt", "rms"), n_sentences=4, seed=0, max_words=8, progress=False)


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    """4 clips (slt, rms, slt, rms) built once for the read-only tests of this module."""
    return build_corpus(tmp_path_factory.mktemp("corpus") / "tiny", **_TINY)


def _metadata(folder):
    return [line.split("|") for line in (folder / "metadata.csv").read_text(encoding="utf-8").splitlines()]


def test_wordnet_sentences_are_clean_and_depend_only_on_the_seed():
    sentences = read_sentences("wordnet", seed=0, min_words=3, max_words=20)
    assert len(sentences) > 10_000
    assert sentences == read_sentences("wordnet", seed=0, min_words=3, max_words=20)
    assert sentences[:20] != read_sentences("wordnet", seed=1, min_words=3, max_words=20)[:20]
    assert len({sentence.lower() for sentence in sentences}) == len(sentences)
    for sentence in sentences[:2000]:
        assert _CLEAN.fullmatch(sentence), sentence
        assert 3 <= len(sentence.split()) <= 20, sentence


def test_fortunes_source_is_filtered_the_same_way():
    sentences = read_sentences("fortunes", seed=3, min_words=3, max_words=12)
    assert len(sentences) > 1000
    assert all(_CLEAN.fullmatch(sentence) and 3 <= len(sentence.split()) <= 12 for sentence in sentences)


@pytest.mark.parametrize("candidate, expected", [
    ("he is a good teacher", "He is a good teacher."),
    ("did you hear that?", "Did you hear that?"),
    ("the couple divorced after only 6 months", "The couple divorced after only 6 months."),
    ("a well-known fact, surely,", "A well-known fact, surely."),
    ("the tree is 2 by 4", None),  # two numbers
    ("he said; no more", None),
    ("the cat (a tabby) sat", None),
    ("she said 'yes", None),
    ("wait -- what", None),
    ("two words", None),
    ("one " * 21, None),
    ("it works. really it does", None),  # a new sentence without its capital letter
])
def test_clean_sentence(candidate, expected):
    assert clean_sentence(candidate, min_words=3, max_words=20) == expected


def test_a_missing_source_names_the_package(monkeypatch, tmp_path):
    monkeypatch.setattr(sentences_module, "WORDNET_DIR", tmp_path)
    sentences_module._sorted_sentences.cache_clear()
    try:
        with pytest.raises(UserError, match=r"apt-get install -y wordnet-base"):
            read_sentences("wordnet", seed=0)
    finally:
        sentences_module._sorted_sentences.cache_clear()
    with pytest.raises(UserError, match="wordnet, fortunes"):
        read_sentences("bible", seed=0)


def test_engine_commands_pass_the_text_as_one_argument(tmp_path):
    text = "Don't `rm -rf` $HOME; \"quoted\" | piped"
    flite = ENGINES["flite"].command("slt", text, tmp_path / "a.wav", {"duration_stretch": 1.1}, tmp_path)
    assert flite[:4] == ["flite", "-voice", "slt", "--setf"] and flite[flite.index("-t") + 1] == text
    espeak = ENGINES["espeak-ng"].command("en_us", text, tmp_path / "a.wav", {}, tmp_path)
    assert espeak[-2:] == ["--", text]
    festival = ENGINES["festival"].command("slt_hts", text, tmp_path / "a.wav", {"speed": 0.9}, tmp_path)
    assert (tmp_path / "text.txt").read_text(encoding="utf-8").strip() == text and text not in festival


@pytest.mark.parametrize("engine, voice, rate", [("flite", "kal16", 16000), ("festival", "slt_hts", 32000),
                                                 ("espeak-ng", "en_gb_f", 22050)])
def test_each_engine_speaks_with_prosody(engine, voice, rate, tmp_path):
    import random

    speech_engine = ENGINES[engine]
    prosody = speech_engine.draw_prosody(voice, random.Random(0))
    assert prosody == speech_engine.draw_prosody(voice, random.Random(0)) and prosody
    wav = speech_engine.synthesize(voice, "This is a short test.", tmp_path / "out.wav", prosody)
    info = soundfile.info(str(wav))
    assert info.samplerate == rate and 0.6 < info.duration < 4.0


def test_postprocess_trims_silence_to_a_margin_and_sets_the_peak():
    rate = 22050
    tone = 0.3 * np.sin(2 * np.pi * 200 * np.arange(rate // 2) / rate)
    audio = np.concatenate([np.zeros(rate), tone, np.zeros(rate)]).astype(np.float32)
    trimmed = postprocess(audio, rate)
    assert trimmed.dtype == np.float32
    assert abs(np.abs(trimmed).max() - 0.9) < 1e-6
    # Half a second of tone plus ~50 ms of silence each side (trim works in 512-sample frames).
    assert 0.55 * rate <= len(trimmed) <= 0.7 * rate


def test_build_writes_the_ljspeech_layout(tiny_corpus):
    rows = _metadata(tiny_corpus)
    assert [row[0] for row in rows] == ["slt_00000", "rms_00001", "slt_00002", "rms_00003"]
    assert all(len(row) == 4 and row[3] == row[0].split("_")[0] for row in rows)
    assert [row[1] for row in rows] == read_sentences("wordnet", 0, 3, 8)[:4]
    for clip_id, text, _, _ in rows:
        info = soundfile.info(str(tiny_corpus / "wavs" / f"{clip_id}.wav"))
        assert (info.samplerate, info.channels, info.subtype) == (22050, 1, "PCM_16")
        n_words = len(text.split())
        assert 0.12 * n_words < info.duration < 0.8 * n_words + 0.6, (text, info.duration)
    settings = json.loads((tiny_corpus / "corpus.json").read_text(encoding="utf-8"))
    assert settings["voices"] == ["slt", "rms"] and settings["seed"] == 0 and settings["engine"] == "flite"
    utterances, problems = read_utterances(tiny_corpus)
    assert problems == [] and len(utterances) == 4
    assert collections.Counter(u.speaker for u in utterances) == {"slt": 2, "rms": 2}
    assert all(u.audio_path.is_file() for u in utterances)


def test_rerun_remakes_only_the_missing_clip(tiny_corpus, tmp_path):
    folder = shutil.copytree(tiny_corpus, tmp_path / "copy")
    metadata = (folder / "metadata.csv").read_text(encoding="utf-8")
    (folder / "wavs" / "slt_00002.wav").unlink()
    (folder / "metadata.csv").write_text("".join(metadata.splitlines(keepends=True)[:2]), encoding="utf-8")
    kept = {path.name: path.stat().st_mtime_ns for path in (folder / "wavs").iterdir()}
    build_corpus(folder, **_TINY)
    assert (folder / "metadata.csv").read_text(encoding="utf-8") == metadata
    assert {path.name: path.stat().st_mtime_ns for path in (folder / "wavs").iterdir() if path.name in kept} == kept
    assert soundfile.info(str(folder / "wavs" / "slt_00002.wav")).frames > 0
    assert sorted(path.name for path in (folder / "wavs").iterdir()) == sorted([*kept, "slt_00002.wav"])


def test_an_interrupted_build_keeps_finished_clips_and_resumes(monkeypatch, tmp_path):
    flite_class = type(ENGINES["flite"])
    real_synthesize = flite_class.synthesize
    calls, killed = [], []

    def dies_on_third_clip(self, *args, **kwargs):
        calls.append(args)
        if len(calls) == 3 or killed:  # the 4th clip may start before the pool is told to stop
            killed.append(True)
            raise RuntimeError("killed")
        return real_synthesize(self, *args, **kwargs)

    monkeypatch.setattr(flite_class, "synthesize", dies_on_third_clip)
    with pytest.raises(RuntimeError, match="killed"):
        build_corpus(tmp_path / "c", **{**_TINY, "workers": 1})
    assert [row[0] for row in _metadata(tmp_path / "c")] == ["slt_00000", "rms_00001"]
    assert not list((tmp_path / "c" / "wavs").glob(".*"))  # no temporary files left behind
    calls.clear()
    killed.clear()
    build_corpus(tmp_path / "c", **_TINY)
    assert len(calls) == 2 and len(_metadata(tmp_path / "c")) == 4


def test_other_settings_or_a_foreign_folder_are_refused(tiny_corpus, tmp_path):
    before = (tiny_corpus / "metadata.csv").read_text(encoding="utf-8")
    with pytest.raises(UserError, match=r"seed: built with 0, asked for 1"):
        build_corpus(tiny_corpus, **{**_TINY, "seed": 1})
    with pytest.raises(UserError, match=r"voices: built with \['slt', 'rms'\], asked for \['slt'\]"):
        build_corpus(tiny_corpus, **{**_TINY, "voices": ["slt"]})
    assert (tiny_corpus / "metadata.csv").read_text(encoding="utf-8") == before
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(UserError, match="not a voxflow corpus"):
        build_corpus(tmp_path, **_TINY)


def test_a_corpus_grows_in_place_keeping_its_clips_but_never_shrinks(tiny_corpus, tmp_path):
    folder = shutil.copytree(tiny_corpus, tmp_path / "copy")
    kept = {path.name: path.stat().st_mtime_ns for path in (folder / "wavs").iterdir()}
    build_corpus(folder, **{**_TINY, "n_sentences": 6})
    rows = _metadata(folder)
    assert rows[:4] == _metadata(tiny_corpus) and [row[0] for row in rows[4:]] == ["slt_00004", "rms_00005"]
    assert {path.name: path.stat().st_mtime_ns for path in (folder / "wavs").iterdir() if path.name in kept} == kept
    assert json.loads((folder / "corpus.json").read_text(encoding="utf-8"))["n_sentences"] == 6
    # built from scratch, the larger corpus says the same: growing changed nothing a fresh build would not
    fresh = build_corpus(tmp_path / "fresh", **{**_TINY, "n_sentences": 6})
    assert _metadata(fresh) == rows
    with pytest.raises(UserError, match=r"n_sentences: built with 6, asked for 4"):
        build_corpus(folder, **_TINY)
    assert len(_metadata(folder)) == 6


@pytest.mark.parametrize("engine, package", [("flite", "flite"), ("festival", "festival festvox-us-slt-hts"),
                                             ("espeak-ng", "espeak-ng")])
def test_a_missing_engine_names_its_package(engine, package, monkeypatch, tmp_path):
    monkeypatch.setattr(engines_module.shutil, "which", lambda name: None)
    with pytest.raises(EngineMissingError, match=re.escape(f"apt-get install -y {package}")):
        build_corpus(tmp_path / "c", engine=engine, n_sentences=1, progress=False)
    assert not (tmp_path / "c").exists()


def test_unknown_voices_list_the_valid_ones(tmp_path):
    with pytest.raises(UserError, match="unknown flite voice 'awb_time'; valid voices: slt, rms, awb, kal16"):
        build_corpus(tmp_path, voices=["slt", "awb_time"], n_sentences=1, progress=False)
    with pytest.raises(UserError, match="unknown speech engine"):
        build_corpus(tmp_path, engine="say", n_sentences=1, progress=False)


def test_cli_builds_and_reports_mistakes_in_one_line(tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["corpus", "build", "--out", str(out), "--voices", "rms", "--sentences", "2", "--max-words", "6",
                 "--no-prosody", "--seed", "5"]) == 0
    assert "2 clips" in capsys.readouterr().out
    assert [row[3] for row in _metadata(out)] == ["rms", "rms"]
    assert json.loads((out / "corpus.json").read_text(encoding="utf-8"))["prosody"] is False
    assert main(["corpus", "build", "--out", str(tmp_path / "bad"), "--voices", "slt,bogus"]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("voxflow corpus: error: unknown flite voice 'bogus'")


def test_committed_small_corpus(small_corpus):
    utterances, problems = read_utterances(small_corpus)
    assert problems == [] and len(utterances) == 16
    assert collections.Counter(u.speaker for u in utterances) == {"slt": 8, "rms": 8}
    for utterance in utterances:
        info = soundfile.info(str(utterance.audio_path))
        assert (info.samplerate, info.channels, info.subtype) == (22050, 1, "PCM_16") and info.frames > 0
    settings = json.loads((small_corpus / "corpus.json").read_text(encoding="utf-8"))
    assert (settings["seed"], settings["source"], settings["voices"]) == (0, "wordnet", ["slt", "rms"])


def test_a_corpus_json_alone_tells_its_sentences_and_keeps_them_out_of_held_out_tests(tiny_corpus):
    from tts.corpus.sentences import corpus_sentences, held_out_sentences

    settings_file = tiny_corpus / "corpus.json"
    spoken = [row[1] for row in _metadata(tiny_corpus)]
    assert corpus_sentences(json.loads(settings_file.read_text(encoding="utf-8"))) == spoken
    # the held-out picks are the same whether the corpus is named by its metadata or its settings,
    # and none of them is a sentence the corpus speaks; drawn from the corpus's own seed and word
    # range, the unfiltered picks would start with exactly its sentences
    pick = dict(count=30, seed=0, min_words=3, max_words=8)
    by_metadata = held_out_sentences(exclude=[tiny_corpus / "metadata.csv"], **pick)
    by_settings = held_out_sentences(exclude=[settings_file], **pick)
    assert by_metadata == by_settings and not set(by_settings) & set(spoken)
    assert held_out_sentences(**pick)[:4] == spoken


def test_the_bundled_voices_ship_the_settings_of_the_corpus_they_learnt_from():
    from tts.api import DEFAULT_VOICE_DIR, bundled_training_corpus

    settings = json.loads((DEFAULT_VOICE_DIR / "corpus.json").read_text(encoding="utf-8"))
    assert settings["engine"] == "flite" and settings["voices"] == ["slt", "rms", "awb", "kal16"]
    assert bundled_training_corpus() == bundled_training_corpus("flowtron") == [DEFAULT_VOICE_DIR / "corpus.json"]
    assert bundled_training_corpus("runs/x/model.safetensors") == []
