"""Mellotron: NVIDIA's 136-key layout, parity with NVIDIA's code (tests/golden/README.md), every
inference mode on a tiny model, the MusicXML path, and `voxflow train mellotron`."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from tts.audio import AudioConfig
from tts.config import TextConfig
from tts.errors import TrainingError
from tts.models.mellotron import (LIBRITTS_SPEAKERS, Mellotron, MellotronConfig, looks_like_nvidia_mellotron,
                                  mellotron_preset)
from tts.models.presets import looks_like_nvidia_tacotron2
from tts.models.singing import read_score
from tts.models.tacotron2 import AttentionConfig, DecoderConfig, EncoderConfig, GSTConfig, PostnetConfig

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "golden" / "mellotron_tiny_nvidia.safetensors"
SCORE = ROOT / "fixtures" / "scores" / "duet.musicxml"
OUTPUTS = ("mel", "mel_postnet", "gate_logits", "alignment")


def _tiny(n_mels: int = 20, frames_per_step: int = 1) -> Mellotron:
    torch.manual_seed(0)
    config = MellotronConfig(
        audio=AudioConfig(n_mels=n_mels), text=TextConfig(symbol_set="mellotron", p_arpabet=0.0),
        encoder=EncoderConfig(embedding_dim=16, n_convolutions=1),
        attention=AttentionConfig(rnn_dim=16, attention_dim=8, location_n_filters=4, location_kernel_size=5),
        decoder=DecoderConfig(rnn_dim=16, prenet_dim=8, frames_per_step=frames_per_step),
        postnet=PostnetConfig(channels=8, n_convolutions=2),
        gst=GSTConfig(reference_filters=(4, 4), reference_gru_dim=8, n_tokens=4, token_dim=8, n_heads=2),
        n_speakers=3, speaker_embedding_dim=4)
    model = Mellotron(config).eval()
    with torch.no_grad():
        model.decoder.prenet_f0.conv.weight.fill_(0.01)
    return model


@pytest.fixture(scope="module")
def golden() -> dict[str, torch.Tensor]:
    with safe_open(str(GOLDEN), framework="pt") as file:
        return {key: file.get_tensor(key) for key in file.keys()}


def _nvidia_model(golden) -> Mellotron:
    return Mellotron.from_nvidia_state_dict({k.removeprefix("state_dict."): v for k, v in golden.items()
                                             if k.startswith("state_dict.")})


def test_default_config_has_nvidias_136_keys_and_element_count():
    state_dict = Mellotron(MellotronConfig()).state_dict()
    assert len(state_dict) == 136 and sum(t.numel() for t in state_dict.values()) == 31_951_184
    shapes = {key: tuple(t.shape) for key, t in state_dict.items()}
    assert shapes["embedding.weight"] == (185, 512) and shapes["decoder.prenet_f0.conv.weight"] == (1, 1, 1)
    assert shapes["decoder.attention_rnn.weight_ih"] == (4096, 1153)
    assert shapes["decoder.decoder_rnn.weight_ih"] == (4096, 1920)
    assert shapes["decoder.attention_layer.memory_layer.linear_layer.weight"] == (128, 896)
    assert shapes["speaker_embedding.weight"] == (123, 128) and shapes["gst.stl.embed"] == (10, 32)


def test_nvidia_layout_state_dict_loads_strictly_and_is_detected(golden):
    nvidia = {"module." + k.removeprefix("state_dict."): v for k, v in golden.items() if k.startswith("state_dict.")}
    assert len(nvidia) == 136 and looks_like_nvidia_mellotron(nvidia) and looks_like_nvidia_tacotron2(nvidia)
    model = Mellotron.from_nvidia_state_dict(nvidia)  # strict=True inside; `module.` stripped
    assert model.config.n_speakers == 3 and model.nvidia_speaker_names == ()
    assert model.config.text.symbol_set == "mellotron" and model.config.gst.reference_filters == (4, 4, 8, 8, 8, 8)
    libritts = dict(nvidia, **{"module.speaker_embedding.weight": torch.randn(123, 6)})
    assert Mellotron.from_nvidia_state_dict(libritts).nvidia_speaker_names == LIBRITTS_SPEAKERS
    assert LIBRITTS_SPEAKERS[:4] == ("1069", "1088", "1116", "118") and len(set(LIBRITTS_SPEAKERS)) == 123
    tacotron_only = {k: v for k, v in nvidia.items() if "prenet_f0" not in k}
    assert not looks_like_nvidia_mellotron(tacotron_only)


def test_nvidia_golden_teacher_forced_with_f0(golden):
    model = _nvidia_model(golden)
    output = model(golden["forward.input.tokens"], torch.tensor([9, 9]), golden["forward.input.mel"],
                   torch.tensor([14, 14]), f0=golden["forward.input.f0"],
                   speaker_id=golden["forward.input.speaker_ids"], prenet_dropout=0.0)
    for name in OUTPUTS:  # measured: ≤ 7.6e-6 on gate logits of ~37 (×100 gate), ≤ 7e-7 elsewhere
        torch.testing.assert_close(getattr(output, name), golden[f"forward.output.{name}"], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("case", ["infer0", "infer1"])
def test_nvidia_golden_inference(golden, case):
    model = _nvidia_model(golden)
    style = golden.get(f"{case}.input.style_mel")
    style = int(golden[f"{case}.input.style_token"]) if style is None else style
    with pytest.warns(UserWarning, match="max_decoder_steps") if case == "infer1" else _no_warning():
        output = model.infer(golden[f"{case}.input.tokens"], speaker_id=golden[f"{case}.input.speaker_ids"],
                             style=style, f0=golden[f"{case}.input.f0"], prenet_dropout=0.0, max_decoder_steps=60)
    for name in OUTPUTS:  # measured: identical to the bit
        torch.testing.assert_close(getattr(output, name), golden[f"{case}.output.{name}"], atol=1e-5, rtol=1e-5)


def test_nvidia_golden_rhythm_transfer(golden):
    """NVIDIA's notebook: teacher-forced alignment, then `inference_noattention`."""
    model = _nvidia_model(golden)
    tokens, mel, f0 = (golden[f"forward.input.{k}"][:1] for k in ("tokens", "mel", "f0"))
    alignment = model.align(tokens, mel, f0, int(golden["forward.input.speaker_ids"][0]), prenet_dropout=0.0)
    output = model.infer(tokens, speaker_id=golden["noattention.input.speaker_ids"], style=mel, f0=f0,
                         alignment=alignment, prenet_dropout=0.0)
    for name in OUTPUTS:
        torch.testing.assert_close(getattr(output, name), golden[f"noattention.output.{name}"], atol=1e-5, rtol=1e-5)


class _no_warning:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.filterwarnings("ignore:Mellotron reached max_decoder_steps")
def test_plain_inference_lets_the_model_choose_pitch_and_accepts_speakers_and_styles(generator):
    model = _tiny()
    tokens = torch.randint(1, 185, (1, 6), generator=generator)
    zeros = model.infer(tokens, speaker_id=1, f0=torch.zeros(1, 40), prenet_dropout=0.0, max_decoder_steps=12)
    plain = model.infer(tokens, speaker_id=1, prenet_dropout=0.0, max_decoder_steps=12)
    torch.testing.assert_close(plain.mel_postnet, zeros.mel_postnet)  # f0=None is NVIDIA's zero contour
    for style in (None, 2, torch.tensor([[0.1, 0.2, 0.3, 0.4]]), torch.randn(1, 20, 30, generator=generator)):
        output = model.infer(tokens, speaker_id=2, style=style, prenet_dropout=0.0, max_decoder_steps=12)
        assert output.mel.shape[:2] == (1, 20) and torch.isfinite(output.mel_postnet).all()


@pytest.mark.filterwarnings("ignore:Mellotron reached max_decoder_steps")
def test_pitch_changes_the_output_and_shift_equals_a_scaled_contour(generator):
    model = _tiny()
    tokens = torch.randint(1, 185, (1, 6), generator=generator)
    f0 = torch.full((1, 12), 150.0)
    run = lambda **kw: model.infer(tokens, speaker_id=0, prenet_dropout=0.0, max_decoder_steps=12, **kw).mel
    assert not torch.allclose(run(f0=f0), run())
    torch.testing.assert_close(run(f0=f0, pitch_shift=12), run(f0=2 * f0))
    torch.testing.assert_close(run(f0=f0, pitch_scale=0.5, pitch_shift=12), run(f0=f0))


@pytest.mark.filterwarnings("ignore:Mellotron reached max_decoder_steps")
@pytest.mark.parametrize("rhythm", [True, False])
@pytest.mark.parametrize("pitch", [True, False])
@pytest.mark.parametrize("gst", [True, False])
def test_style_transfer_with_each_part_switchable(rhythm, pitch, gst, generator):
    model = _tiny()
    tokens = torch.randint(1, 185, (1, 5), generator=generator)
    mel, f0 = torch.randn(1, 20, 16, generator=generator) - 4, torch.full((1, 16), 180.0)
    output = model.transfer(tokens, mel, f0, speaker_id=2, reference_speaker_id=0, rhythm=rhythm, pitch=pitch,
                            gst=gst, prenet_dropout=0.0, max_decoder_steps=20)
    if rhythm:  # the reference's frame count, no stop gate
        assert output.mel.shape == (1, 20, 16) and output.alignment.shape == (1, 16, 5)
        forced = model.align(tokens, mel, f0, 0, prenet_dropout=0.0)
        torch.testing.assert_close(output.alignment, forced)
    assert torch.isfinite(output.mel_postnet).all()


def test_rhythm_with_frames_per_step(generator):
    model = _tiny(frames_per_step=2)
    tokens = torch.randint(1, 185, (1, 5), generator=generator)
    mel = torch.randn(1, 20, 15, generator=generator) - 4
    alignment = model.align(tokens, mel, torch.full((1, 15), 120.0), 1)
    assert alignment.shape == (1, 15, 5)
    output = model.infer(tokens, speaker_id=1, f0=torch.full((1, 15), 120.0), alignment=alignment,
                         prenet_dropout=0.0)
    assert output.mel.shape == (1, 20, 15)


def test_musicxml_parts_pitches_and_durations():
    soprano, alto = read_score(SCORE)
    assert (soprano.name, alto.name, soprano.tempo) == ("Soprano", "Alto", 120.0)
    frames = lambda quarters: round(quarters * 0.5 * 22050 / 256)  # 120 bpm: a quarter is 0.5 s
    notes = [(n.lyric, round(n.hz, 2), n.start_frame, n.end_frame) for n in soprano.notes]
    assert notes == [("Hel", 440.0, 0, frames(1)), ("lo", 523.25, frames(1), frames(2)),
                     (None, 0.0, frames(2), frames(3)), ("world", 659.26, frames(3), frames(4)),
                     (None, 587.33, frames(4), frames(6))]  # melisma on D5; the final rest is dropped
    assert soprano.text == "{HH AH0 L OW1} {W ER1 L D}"
    assert soprano.phones == ("@HH", "@AH0", "@L", "@OW1", " ", "@W", "@ER1", "@L", "@D")
    assert soprano.durations.tolist() == [5, 38, 5, 38, 43, 5, 114, 5, 5]
    assert int(soprano.durations.sum()) == len(soprano.f0) == frames(6) == 258
    assert soprano.f0[:43].eq(440.0).all() and soprano.f0[86:129].eq(0).all() and soprano.f0[200] == pytest.approx(587.33, abs=0.01)
    assert alto.phones == ("@S", "@IH1", "@NG", " ", "@AH0", " ", "@S", "@AO1", "@NG")
    assert alto.durations.tolist() == [5, 76, 5, 0, 43, 0, 5, 119, 5]  # the tie extends "song"
    assert alto.f0[129:258].eq(alto.f0[130]).all() and alto.alignment().shape == (258, 9)


def test_singing_inference_from_the_score():
    model = _tiny()
    part = read_score(SCORE)[1]
    output = model.infer(part.token_ids[None], speaker_id=0, f0=part.f0[None], alignment=part.alignment()[None],
                         prenet_dropout=0.0, pitch_scale=0.5)
    assert output.mel.shape == (1, 20, 258)
    torch.testing.assert_close(output.alignment[0], part.alignment())


def test_config_round_trips_and_loader_reads_a_voxflow_checkpoint(tmp_path):
    from tts.loading import read_model, save_model

    model = _tiny()
    assert MellotronConfig.from_dict(model.config.to_dict()) == model.config
    path = save_model(tmp_path / "m.safetensors", model, speakers=("a", "b", "c"))
    loaded = read_model(path)
    assert loaded.kind == "mellotron" and loaded.speakers == ("a", "b", "c")
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value)


@pytest.mark.slow
def test_voxflow_train_mellotron_runs_on_the_fixture_corpus(small_corpus, tmp_path):
    from tts.cli import main
    from tts.loading import read_model

    run = tmp_path / "run"
    code = main(["train", "mellotron", "--data", str(small_corpus), "--out", str(run), "--config", "tiny",
                 "--set", "train.max_steps=2", "--set", "train.batch_size=4", "--set", "train.val_size=1",
                 "--set", "train.validate_every=1000", "--set", "train.checkpoint_every=1000", "--no-progress"])
    assert code in (0, None)
    loaded = read_model(run / "model.safetensors")
    assert loaded.kind == "mellotron" and loaded.speakers == ("rms", "slt") and loaded.model.config.n_speakers == 2
    assert list((run / "cache").rglob("*-f0-*.npy"))  # F0 cached beside the mels


def _same_shape_tacotron2(mellotron: Mellotron):
    import dataclasses

    from tts.models.tacotron2 import Tacotron2, Tacotron2Config

    config = Tacotron2Config(**{f.name: getattr(mellotron.config, f.name) for f in dataclasses.fields(Tacotron2Config)})
    torch.manual_seed(1)
    return Tacotron2(config).eval()


@pytest.mark.filterwarnings("ignore:.*reached max_decoder_steps")
def test_a_tacotron2_warm_starts_a_mellotron_that_computes_the_same_until_it_learns_f0(generator):
    mellotron = _tiny(frames_per_step=2)
    tacotron2 = _same_shape_tacotron2(mellotron)
    state_dict = mellotron.tacotron2_state_dict(tacotron2.state_dict())
    assert mellotron.tacotron2_state_dict(state_dict) is state_dict  # already a Mellotron's: unchanged
    mellotron.load_state_dict(state_dict, strict=True)
    tokens = torch.randint(1, 60, (1, 9), generator=generator)
    expected = tacotron2.infer(tokens, speaker_id=1, max_decoder_steps=12, prenet_dropout=0.0)
    contour = torch.full((1, 40), 180.0)
    for f0 in (None, contour):  # the F0 input starts with zero weights, so no contour matters yet
        found = mellotron.infer(tokens, speaker_id=1, f0=f0, max_decoder_steps=12, prenet_dropout=0.0)
        torch.testing.assert_close(found.mel_postnet, expected.mel_postnet, atol=1e-5, rtol=1e-4)
    with torch.no_grad():  # once the F0 weights move, the contour is read
        mellotron.decoder.attention_rnn.weight_ih[:, 8] = 0.05
    moved = mellotron.infer(tokens, speaker_id=1, f0=contour, max_decoder_steps=12, prenet_dropout=0.0)
    assert not torch.allclose(moved.mel_postnet, expected.mel_postnet, atol=1e-3)


def test_f0_dropout_zeroes_whole_contours_in_training_only(monkeypatch):
    from tts.models.mellotron import PitchConfig
    from tts.train.mellotron_task import MellotronBatch, MellotronTask

    model = _tiny()
    task = MellotronTask(model.config.replace(pitch=PitchConfig(f0_dropout=0.5)))
    seen = []

    class Seen(Exception):
        pass

    def record_f0(self, *args, f0=None, **kwargs):
        seen.append(f0)
        raise Seen

    monkeypatch.setattr(Mellotron, "forward", record_f0)
    n_items, n_frames = 64, 6
    batch = MellotronBatch(tokens=torch.ones(n_items, 3, dtype=torch.long), token_lengths=torch.full((n_items,), 3),
                           mel=torch.zeros(n_items, 20, n_frames), mel_lengths=torch.full((n_items,), n_frames),
                           speaker_ids=torch.zeros(n_items, dtype=torch.long), f0=torch.full((n_items, n_frames), 150.0))
    for training in (True, False):
        model.train(training)
        with pytest.raises(Seen):
            task.compute_loss(model, batch)
    trained, evaluated = seen
    dropped = (trained == 0).all(dim=1)
    assert ((trained == 150.0).all(dim=1) | dropped).all()  # whole contours, never single frames
    assert 10 < int(dropped.sum()) < 54  # about half of 64
    assert torch.equal(evaluated, batch.f0)
    with pytest.raises(Exception, match="f0_dropout"):
        PitchConfig(f0_dropout=1.5)


def test_a_narrow_mellotron_grows_into_wider_lstms_and_postnet_with_the_same_output(generator):
    """Warm-starting a wider config from a trained narrower one (`grow_state_dict`, used by the
    training tasks' warm start): the grown model computes what the narrow one did, teacher-forced
    and generating, and its new units are really there (random inputs, zero outputs)."""
    from tts.models.grow import grow_state_dict
    from tts.train.mellotron_task import MellotronTask

    narrow_config = mellotron_preset("tiny").replace(n_speakers=2)
    torch.manual_seed(0)
    narrow = Mellotron(narrow_config)
    for parameter in narrow.parameters():  # trained-looking: no zero-initialised layer left
        parameter.data.normal_(0.0, 0.1)
    narrow.eval()
    wide_config = narrow_config.replace(
        attention=narrow_config.attention.replace(rnn_dim=320), decoder=narrow_config.decoder.replace(rnn_dim=384),
        postnet=narrow_config.postnet.replace(channels=192))
    wide = Mellotron(wide_config)
    wide.load_state_dict(MellotronTask(wide_config).adapt_warm_start(wide, narrow.state_dict()), strict=True)
    wide.eval()
    tokens = torch.randint(1, 100, (2, 12), generator=generator)
    lengths, mel = torch.tensor([12, 9]), torch.randn(2, 80, 30, generator=generator) - 5.0
    f0 = torch.rand(2, 30, generator=generator) * 200 + 100
    speakers = torch.tensor([0, 1])
    for model_output in (lambda m: m(tokens, lengths, mel, torch.tensor([30, 24]), f0=f0, speaker_id=speakers,
                                     prenet_dropout=0.0).mel_postnet,
                         lambda m: m.infer(tokens, lengths, speaker_id=speakers, f0=f0, prenet_dropout=0.0,
                                           max_decoder_steps=12).mel_postnet):
        with torch.no_grad():
            torch.testing.assert_close(model_output(wide), model_output(narrow), atol=1e-5, rtol=1e-5)
    weight_hh = wide.decoder.decoder_rnn.weight_hh
    assert weight_hh[:256, 256:].abs().sum() == 0 and weight_hh[384:384 + 256, 256:].abs().sum() == 0
    assert weight_hh[256:384].abs().sum() > 0  # the new units' own weights are random
    same = narrow.state_dict()
    assert grow_state_dict(narrow, same) is same
    with pytest.raises(TrainingError, match="cannot grow (embedding|encoder)"):
        grow_state_dict(Mellotron(narrow_config.replace(encoder=narrow_config.encoder.replace(embedding_dim=64))),
                        same)


@pytest.mark.slow
def test_runs_on_the_same_data_share_one_cache_and_a_resumed_run_keeps_it(small_corpus, tmp_path):
    """`train.cache_dir`: a Mellotron fills the shared cache (mels and F0); a Tacotron 2 with the same
    audio settings then computes nothing, and the Mellotron resumed without the option still uses it."""
    from tts.cli import main

    cache = tmp_path / "shared_cache"

    def train(kind: str, run: str, *extra: str) -> None:
        code = main(["train", kind, "--data", str(small_corpus), "--out", str(tmp_path / run), "--no-progress",
                     *extra])
        assert code in (0, None)

    tiny = ["--config", "tiny", "--set", "train.batch_size=16", "--set", "train.val_size=0",
            "--set", "train.validate_every=1000", "--set", "train.checkpoint_every=1"]
    train("mellotron", "mellotron", *tiny, "--set", "train.max_steps=1", "--set", f"train.cache_dir={cache}")
    entries = {path: path.stat().st_mtime_ns for path in cache.rglob("*.npy")}
    assert len([path for path in entries if "-f0-" in path.name]) == 16  # every clip's F0 beside its mel
    assert len(entries) == 32 and not (tmp_path / "mellotron" / "cache").exists()

    train("tacotron2", "tacotron2", *tiny, "--set", "train.max_steps=1", "--set", f"train.cache_dir={cache}")
    train("mellotron", "mellotron", "--resume", "--set", "train.max_steps=2")
    assert {path: path.stat().st_mtime_ns for path in cache.rglob("*.npy")} == entries  # read, never rewritten
    assert not (tmp_path / "tacotron2" / "cache").exists() and not (tmp_path / "mellotron" / "cache").exists()
