"""Data sets: LJSpeech folders and NVIDIA filelists, cached mels, padding, length buckets."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile
import torch

from tts.audio import AudioConfig, load_audio, mel_spectrogram
from tts.config import TextConfig
from tts.data import (LengthBucketSampler, SpeakerMap, TextMelDataset, collate_text_mel, load_utterances,
                      read_utterances)
from tts.errors import DataError


def _tone(path, seconds, rate=22050):
    time = np.arange(int(rate * seconds)) / rate
    soundfile.write(path, 0.3 * np.sin(2 * np.pi * 220 * time), rate, subtype="PCM_16")


def test_reads_ljspeech_layout_with_speaker_column(tmp_path):
    (tmp_path / "wavs").mkdir()
    (tmp_path / "metadata.csv").write_text(
        "LJ001|Dr. Smith paid $5.|Doctor Smith paid five dollars.|slt\n"
        "\n"
        "LJ002|Plain text||rms\n"
        "LJ003 only one field\n", encoding="utf-8")
    utterances, problems = read_utterances(tmp_path)
    assert [u.audio_path.name for u in utterances] == ["LJ001.wav", "LJ002.wav"]
    assert utterances[0].text == "Doctor Smith paid five dollars."  # the normalized column wins
    assert utterances[1].text == "Plain text"
    assert [u.speaker for u in utterances] == ["slt", "rms"]
    assert utterances[1].where.endswith("metadata.csv:3")
    assert len(problems) == 1 and problems[0].line == 4 and problems[0].kind == "format"


def test_reads_nvidia_filelists_relative_to_their_folder(tmp_path):
    (tmp_path / "wavs").mkdir()
    _tone(tmp_path / "wavs" / "a.wav", 0.2)
    filelist = tmp_path / "train.txt"
    filelist.write_text("wavs/a.wav|Hello there.|3\n/abs/b.wav|Second line|0|extra\n", encoding="utf-8")
    utterances, problems = read_utterances(filelist)
    assert not problems
    assert utterances[0].audio_path == tmp_path / "wavs" / "a.wav"
    assert utterances[1].audio_path.as_posix() == "/abs/b.wav"
    assert [u.speaker for u in utterances] == ["3", "0"]
    assert utterances[1].extra == ("extra",)


def test_load_utterances_reports_problems_as_one_error(tmp_path):
    with pytest.raises(DataError, match="no such folder or filelist"):
        load_utterances(tmp_path / "nope")
    with pytest.raises(DataError, match="metadata.csv"):
        load_utterances(tmp_path)


def test_speaker_map_uses_string_sorted_names():
    speakers = SpeakerMap(("1069", "118", "14"))
    assert speakers.id_of("118") == 1 and speakers.id_of(2) == 2 and speakers.id_of(None) == 0
    with pytest.raises(DataError, match="unknown speaker 'bob'; known speakers: 1069, 118, 14"):
        speakers.id_of("bob")
    with pytest.raises(DataError, match="out of range"):
        speakers.id_of(3)


def test_dataset_items_collate_and_cache(small_corpus, tmp_path):
    utterances = load_utterances(small_corpus)
    dataset = TextMelDataset(utterances[:3], TextConfig(), AudioConfig(), cache_dir=tmp_path / "cache")
    item = dataset[0]
    expected_mel = mel_spectrogram(load_audio(utterances[0].audio_path)).numpy()
    np.testing.assert_array_equal(item.mel.numpy(), expected_mel)
    assert item.tokens.dtype == torch.long and len(item.tokens) > 5
    assert item.speaker_id == dataset.speakers.id_of(utterances[0].speaker)
    cached = list((tmp_path / "cache").rglob("*.npy"))
    assert len(cached) == 1
    np.testing.assert_array_equal(dataset[0].mel.numpy(), expected_mel)  # served from the cache
    # A different audio config must not reuse the cached mel.
    other = TextMelDataset(utterances[:1], TextConfig(), AudioConfig(n_mels=40), cache_dir=tmp_path / "cache")
    assert other[0].mel.shape[0] == 40

    batch = collate_text_mel([dataset[i] for i in range(3)])
    lengths = [dataset[i].mel.shape[1] for i in range(3)]
    assert batch.mel.shape == (3, 80, max(lengths))
    assert batch.mel_lengths.tolist() == lengths
    for i in range(3):
        assert torch.equal(batch.mel[i, :, : lengths[i]], dataset[i].mel)
        assert (batch.mel[i, :, lengths[i]:] == 0).all()
        assert torch.equal(batch.tokens[i, : batch.token_lengths[i]], dataset[i].tokens)


def test_frame_lengths_come_from_headers(small_corpus):
    utterances = load_utterances(small_corpus)[:2]
    dataset = TextMelDataset(utterances, TextConfig(), AudioConfig())
    assert dataset.frame_lengths() == [dataset[i].mel.shape[1] for i in range(2)]


def test_length_bucket_sampler_covers_everything_in_similar_length_batches():
    rng = np.random.default_rng(0)
    lengths = rng.integers(50, 800, size=203).tolist()
    sampler = LengthBucketSampler(lengths, batch_size=8, seed=1, bucket_batches=4)
    batches = list(sampler)
    assert sorted(i for batch in batches for i in batch) == list(range(203))
    assert len(batches) == len(sampler)
    # Sorting inside buckets keeps the spread inside a batch far below the data set's spread.
    spread = np.mean([max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches])
    assert spread < 0.3 * (max(lengths) - min(lengths))
    sampler.set_epoch(1)
    assert list(sampler) != batches
    sampler.set_epoch(0)
    assert list(sampler) == batches


def test_length_bucket_sampler_splits_between_ranks_without_overlap():
    lengths = list(range(100))
    shares = [list(LengthBucketSampler(lengths, 4, seed=2, rank=r, world_size=2)) for r in range(2)]
    assert len(shares[0]) == len(shares[1])
    seen = [set(i for batch in share for i in batch) for share in shares]
    assert not seen[0] & seen[1]
