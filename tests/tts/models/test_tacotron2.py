"""Tacotron 2 (+ GST, + speaker): key layout, shapes, masks, padding invariance, batched inference,
losses, checkpoints, and parity with NVIDIA's code (tests/golden/README.md)."""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from tts.audio import AudioConfig
from tts.checkpoint import read_checkpoint, save_checkpoint
from tts.errors import ConfigError
from tts.models import (TACOTRON2_PRESETS, GSTConfig, Tacotron2, Tacotron2Config, guided_attention_loss,
                        nvidia_config_from_state_dict, nvidia_state_dict_to_ours, tacotron2_loss)
from tts.models.tacotron2 import (AttentionConfig, Tacotron2Output, DecoderConfig, EncoderConfig, GuidedAttentionConfig,
                                  PostnetConfig, self_feedback_schedule)

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "tacotron2_tiny_nvidia.safetensors"
N_MELS = 20


def _tiny(frames_per_step: int = 1, gst: bool = False, n_speakers: int = 0) -> Tacotron2Config:
    return Tacotron2Config(
        audio=AudioConfig(n_mels=N_MELS),
        encoder=EncoderConfig(embedding_dim=16, n_convolutions=2, kernel_size=5),
        attention=AttentionConfig(rnn_dim=24, attention_dim=8, location_n_filters=4, location_kernel_size=7),
        decoder=DecoderConfig(rnn_dim=24, prenet_dim=16, frames_per_step=frames_per_step),
        postnet=PostnetConfig(channels=16, n_convolutions=3),
        gst=GSTConfig(reference_filters=(4, 4, 8), reference_gru_dim=8, n_tokens=4, token_dim=8, n_heads=2)
        if gst else None,
        n_speakers=n_speakers, speaker_embedding_dim=6 if n_speakers else 0)


def _model(config: Tacotron2Config, seed: int = 0) -> Tacotron2:
    torch.manual_seed(seed)
    model = Tacotron2(config)
    generator = torch.Generator().manual_seed(seed + 1)
    for module in model.modules():  # non-trivial BatchNorm statistics, so eval-mode BN matters
        if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            module.running_mean.copy_(torch.randn(module.num_features, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
    return model.eval()


def _batch(generator: torch.Generator, token_lengths=(9, 6, 4), mel_lengths=(13, 8, 11), n_mels: int = N_MELS):
    tokens = torch.randint(1, 148, (len(token_lengths), max(token_lengths)), generator=generator)
    mel = torch.randn(len(mel_lengths), n_mels, max(mel_lengths), generator=generator) - 4.0
    token_lengths, mel_lengths = torch.tensor(token_lengths), torch.tensor(mel_lengths)
    tokens = tokens * (torch.arange(tokens.size(1)) < token_lengths.unsqueeze(1))
    mel = mel * (torch.arange(mel.size(2)) < mel_lengths.unsqueeze(1)).unsqueeze(1)
    return tokens, token_lengths, mel, mel_lengths


def _nvidia_reference_shapes() -> dict[str, tuple[int, ...]]:
    """nvidia-models.md §3.3, written out."""
    shapes = {"embedding.weight": (148, 512)}

    def batch_norm(prefix: str, n: int) -> dict[str, tuple[int, ...]]:
        names = ("weight", "bias", "running_mean", "running_var")
        return {f"{prefix}.{name}": (n,) for name in names} | {f"{prefix}.num_batches_tracked": ()}

    for i in range(3):
        shapes |= {f"encoder.convolutions.{i}.0.conv.weight": (512, 512, 5),
                   f"encoder.convolutions.{i}.0.conv.bias": (512,)}
        shapes |= batch_norm(f"encoder.convolutions.{i}.1", 512)
    for suffix in ("", "_reverse"):
        shapes |= {f"encoder.lstm.weight_ih_l0{suffix}": (1024, 512), f"encoder.lstm.weight_hh_l0{suffix}": (1024, 256),
                   f"encoder.lstm.bias_ih_l0{suffix}": (1024,), f"encoder.lstm.bias_hh_l0{suffix}": (1024,)}
    shapes |= {"decoder.prenet.layers.0.linear_layer.weight": (256, 80),
               "decoder.prenet.layers.1.linear_layer.weight": (256, 256)}
    for rnn, input_dim in (("attention_rnn", 768), ("decoder_rnn", 1536)):
        shapes |= {f"decoder.{rnn}.weight_ih": (4096, input_dim), f"decoder.{rnn}.weight_hh": (4096, 1024),
                   f"decoder.{rnn}.bias_ih": (4096,), f"decoder.{rnn}.bias_hh": (4096,)}
    attention = "decoder.attention_layer."
    shapes |= {attention + "query_layer.linear_layer.weight": (128, 1024),
               attention + "memory_layer.linear_layer.weight": (128, 512),
               attention + "v.linear_layer.weight": (1, 128),
               attention + "location_layer.location_conv.conv.weight": (32, 2, 31),
               attention + "location_layer.location_dense.linear_layer.weight": (128, 32),
               "decoder.linear_projection.linear_layer.weight": (80, 1536),
               "decoder.linear_projection.linear_layer.bias": (80,),
               "decoder.gate_layer.linear_layer.weight": (1, 1536), "decoder.gate_layer.linear_layer.bias": (1,)}
    channels = [80, 512, 512, 512, 512, 80]
    for i in range(5):
        shapes |= {f"postnet.convolutions.{i}.0.conv.weight": (channels[i + 1], channels[i], 5),
                   f"postnet.convolutions.{i}.0.conv.bias": (channels[i + 1],)}
        shapes |= batch_norm(f"postnet.convolutions.{i}.1", channels[i + 1])
    return shapes


def test_nvidia_preset_has_nvidias_84_keys_shapes_and_parameter_count():
    with torch.device("meta"):
        model = Tacotron2(TACOTRON2_PRESETS["nvidia"])
    shapes = {key: tuple(tensor.shape) for key, tensor in model.state_dict().items()}
    assert shapes == _nvidia_reference_shapes()
    assert len(shapes) == 84
    assert sum(p.numel() for p in model.parameters()) == 28_193_153
    assert sum(t.numel() for t in model.state_dict().values()) == 28_200_489


def test_gst_and_speaker_keys_have_mellotrons_shapes():
    config = TACOTRON2_PRESETS["nvidia"].replace(gst=GSTConfig(), n_speakers=123, speaker_embedding_dim=128)
    with torch.device("meta"):
        shapes = {key: tuple(t.shape) for key, t in Tacotron2(config).state_dict().items()}
    filters = [1, 32, 32, 64, 64, 128, 128]
    for i in range(6):
        assert shapes[f"gst.encoder.convs.{i}.weight"] == (filters[i + 1], filters[i], 3, 3)
        assert shapes[f"gst.encoder.bns.{i}.running_var"] == (filters[i + 1],)
    assert shapes["gst.encoder.gru.weight_ih_l0"] == (384, 256)
    assert shapes["gst.encoder.gru.weight_hh_l0"] == (384, 128)
    assert shapes["gst.stl.embed"] == (10, 32)
    assert shapes["gst.stl.attention.W_query.weight"] == (256, 128)
    assert shapes["gst.stl.attention.W_key.weight"] == shapes["gst.stl.attention.W_value.weight"] == (256, 32)
    assert shapes["speaker_embedding.weight"] == (123, 128)
    # memory = text 512 + style 256 + speaker 128 = 896 (Mellotron adds F0 to the attention-RNN input on top)
    assert shapes["decoder.attention_layer.memory_layer.linear_layer.weight"] == (128, 896)
    assert shapes["decoder.attention_rnn.weight_ih"] == (4096, 256 + 896)
    assert shapes["decoder.decoder_rnn.weight_ih"] == (4096, 1920)
    assert shapes["decoder.linear_projection.linear_layer.weight"] == (80, 1920)
    assert shapes["decoder.gate_layer.linear_layer.weight"] == (1, 1920)


def test_config_round_trips_and_validates():
    config = _tiny(frames_per_step=2, gst=True, n_speakers=3)
    assert Tacotron2Config.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert config.n_symbols == 148 and config.memory_dim == 16 + 8 + 6
    for name, preset in TACOTRON2_PRESETS.items():
        assert Tacotron2Config.from_dict(preset.to_dict()) == preset, name
    with pytest.raises(ConfigError, match="expected >= 1, found 0"):
        DecoderConfig(frames_per_step=0)
    with pytest.raises(ConfigError, match="both 0"):
        Tacotron2Config(n_speakers=4)
    with pytest.raises(ConfigError, match="multiple of n_heads"):
        GSTConfig(token_dim=10, n_heads=4)
    with pytest.raises(ConfigError, match="decoder.rnn_dimm"):
        Tacotron2Config.from_dict({"decoder": {"rnn_dimm": 3}})


@pytest.mark.parametrize("frames_per_step", [1, 2, 3])
def test_forward_shapes_and_masks(frames_per_step, generator):
    model = _model(_tiny(frames_per_step))
    tokens, token_lengths, mel, mel_lengths = _batch(generator)
    output = model(tokens, token_lengths, mel, mel_lengths, prenet_dropout=0.0)
    n_steps = -(-mel.size(2) // frames_per_step)
    assert output.mel.shape == output.mel_postnet.shape == mel.shape
    assert output.gate_logits.shape == (3, n_steps)
    assert output.alignment.shape == (3, n_steps, tokens.size(1))
    per_frame = output.frame_alignment()  # each step's row over its r frames, cut to the mel
    assert per_frame.shape == (3, mel.size(2), tokens.size(1))
    assert torch.equal(per_frame[:, ::frames_per_step], output.alignment)
    full_steps = mel.size(2) // frames_per_step
    assert torch.equal(per_frame[:, frames_per_step - 1::frames_per_step], output.alignment[:, :full_steps])
    for i, (n_tokens, n_frames) in enumerate(zip(token_lengths.tolist(), mel_lengths.tolist())):
        valid_steps = -(-n_frames // frames_per_step)
        assert output.mel[i, :, n_frames:].abs().sum() == 0 and output.mel_postnet[i, :, n_frames:].abs().sum() == 0
        assert (output.gate_logits[i, valid_steps:] == 1e3).all()
        assert torch.allclose(output.alignment[i, :valid_steps].sum(1), torch.ones(valid_steps))
        assert output.alignment[i, :, n_tokens:].abs().sum() == 0 and output.alignment[i, valid_steps:].sum() == 0


def test_padding_invariance_teacher_forced(generator):
    model = _model(_tiny(frames_per_step=2, gst=True, n_speakers=3))
    tokens, token_lengths, mel, mel_lengths = _batch(generator)
    speakers = torch.tensor([2, 0, 1])
    reference = torch.randn(1, N_MELS, 16, generator=generator) - 4.0
    batched = model(tokens, token_lengths, mel, mel_lengths, speakers, reference.expand(3, -1, -1), prenet_dropout=0)
    for i in range(3):
        n_tokens, n_frames = int(token_lengths[i]), int(mel_lengths[i])
        alone = model(tokens[i:i + 1, :n_tokens], token_lengths[i:i + 1], mel[i:i + 1, :, :n_frames],
                      mel_lengths[i:i + 1], speakers[i:i + 1], reference, prenet_dropout=0)
        n_steps = alone.gate_logits.size(1)
        torch.testing.assert_close(batched.mel[i:i + 1, :, :n_frames], alone.mel, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(batched.mel_postnet[i:i + 1, :, :n_frames], alone.mel_postnet, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(batched.gate_logits[i:i + 1, :n_steps], alone.gate_logits, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(batched.alignment[i:i + 1, :n_steps, :n_tokens], alone.alignment, atol=1e-5,
                                   rtol=1e-5)


@pytest.mark.parametrize("frames_per_step", [1, 3])
def test_self_feedback_feeds_the_decoder_its_own_output_in_training_only(frames_per_step, generator):
    """decoder.self_feedback = 1: in training every step after the first reads the decoder's own
    previous output, so the outputs no longer depend on the recorded frames (the style comes from a
    fixed reference here); 0, or eval mode, reads the recorded frames."""
    tokens, token_lengths, mel, mel_lengths = _batch(generator)
    other_mel = (torch.randn(mel.shape, generator=generator) - 4.0) * (mel != 0)
    reference = torch.randn(3, N_MELS, 16, generator=generator) - 4.0

    def decoded(feedback: float, target: torch.Tensor, training: bool, run: float = 0.0) -> torch.Tensor:
        config = _tiny(frames_per_step, gst=True)
        decoder = config.decoder.replace(self_feedback=feedback, self_feedback_run=run)
        model = _model(config.replace(decoder=decoder)).train(training)
        torch.manual_seed(7)  # the same dropout masks and feedback draws for both targets
        output = model(tokens, token_lengths, target, mel_lengths, style_mel=reference)
        output.mel_postnet.sum().backward()  # gradients still flow through the fed-back steps
        return output.mel.detach()

    torch.testing.assert_close(decoded(1.0, mel, True), decoded(1.0, other_mel, True))
    torch.testing.assert_close(decoded(1.0, mel, True, run=4), decoded(1.0, other_mel, True, run=4))
    for feedback, training, run in ((0.0, True, 0), (1.0, False, 0), (0.5, True, 0), (0.5, True, 4)):
        assert not torch.allclose(decoded(feedback, mel, training, run), decoded(feedback, other_mel, training, run))
    with pytest.raises(ConfigError, match="self_feedback"):
        DecoderConfig(self_feedback=1.5)


def _runs(row: torch.Tensor) -> list[int]:
    """Lengths of the runs of True in a 1-D bool tensor."""
    lengths, current = [], 0
    for value in row.tolist() + [False]:
        if value:
            current += 1
        elif current:
            lengths.append(current)
            current = 0
    return lengths


@pytest.mark.parametrize("share,mean_run", [(0.3, 10.0), (0.5, 4.0), (0.3, 0.0)])
def test_self_feedback_schedule_keeps_the_share_and_makes_runs_of_the_asked_length(share, mean_run):
    generator = torch.Generator().manual_seed(3)
    own = self_feedback_schedule(share, mean_run, 400, 200, torch.device("cpu"), generator)
    assert own.shape == (400, 200) and not own[0].any()  # step 0 reads the go frame
    assert abs(own[1:].float().mean().item() - share) < 0.02
    runs = [length for item in own.T for length in _runs(item)]
    expected = 1 / (1 - share) if mean_run == 0 else mean_run  # independent draws: geometric runs
    assert abs(sum(runs) / len(runs) - expected) < 0.05 * expected


def test_self_feedback_run_is_checked_against_the_share():
    DecoderConfig(self_feedback=0.5, self_feedback_run=1)
    DecoderConfig(self_feedback=1.0, self_feedback_run=1)
    with pytest.raises(ConfigError, match="self_feedback_run.*>= 3"):
        DecoderConfig(self_feedback=0.75, self_feedback_run=2)
    with pytest.raises(ConfigError, match="self_feedback_run"):
        DecoderConfig(self_feedback=0.3, self_feedback_run=0.5)


@pytest.mark.parametrize("frames_per_step", [1, 3])
def test_infer_shapes_and_padded_batch_equals_single_items(frames_per_step, generator):
    model = _model(_tiny(frames_per_step, n_speakers=2))
    tokens, token_lengths, _, _ = _batch(generator)
    with pytest.warns(UserWarning, match="max_decoder_steps=6"):
        batched = model.infer(tokens, token_lengths, speaker_id=1, gate_threshold=1.0, max_decoder_steps=6,
                              prenet_dropout=0)
    assert batched.mel.shape == (3, N_MELS, 6 * frames_per_step) and batched.gate_logits.shape == (3, 6)
    assert batched.mel_lengths.tolist() == [6 * frames_per_step] * 3
    for i in range(3):
        with pytest.warns(UserWarning):
            alone = model.infer(tokens[i:i + 1, :int(token_lengths[i])], speaker_id=1, gate_threshold=1.0,
                                max_decoder_steps=6, prenet_dropout=0)
        torch.testing.assert_close(batched.mel_postnet[i:i + 1], alone.mel_postnet, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(batched.alignment[i:i + 1, :, :int(token_lengths[i])], alone.alignment,
                                   atol=1e-5, rtol=1e-5)


def test_infer_prenet_dropout_draws_only_from_the_generator(generator):
    model = _model(_tiny())
    tokens = torch.randint(1, 148, (1, 5), generator=generator)
    state = torch.get_rng_state()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first, again, other, deterministic = (
            model.infer(tokens, gate_threshold=1.0, max_decoder_steps=5, prenet_dropout=p,
                        generator=torch.Generator().manual_seed(s))
            for p, s in ((0.5, 1), (0.5, 1), (0.5, 2), (0.0, 3)))
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(first.mel, again.mel) and not torch.equal(first.mel, other.mel)
    assert not torch.equal(first.mel, deterministic.mel)


def test_infer_style_choices_and_errors(generator):
    model = _model(_tiny(gst=True))
    tokens = torch.randint(1, 148, (2, 5), generator=generator)

    def run(**kwargs) -> torch.Tensor:
        return model.infer(tokens, gate_threshold=1.0, max_decoder_steps=3, prenet_dropout=0, **kwargs).mel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        by_index, one_hot = run(style=2), run(style=torch.eye(4)[2:3])
        uniform, default = run(style=torch.full((2, 4), 0.25)), run()
        from_mel = run(style=torch.randn(1, N_MELS, 12, generator=generator))
        with pytest.raises(ValueError, match="token index"):
            run(style=7)
        with pytest.raises(ValueError, match="no speaker embedding"):
            run(speaker_id=0)
        with pytest.raises(ValueError, match="no GST"):
            _model(_tiny()).infer(tokens, style=1)
        with pytest.raises(ValueError, match="pass speaker_id"):
            _model(_tiny(n_speakers=2)).infer(tokens)
    torch.testing.assert_close(by_index, one_hot)
    torch.testing.assert_close(uniform, default)
    assert not torch.allclose(by_index, uniform) and not torch.allclose(from_mel, uniform)


def test_guided_attention_loss_prefers_the_diagonal():
    n_steps, n_tokens = 12, 6
    diagonal = torch.zeros(1, n_steps, n_tokens)
    diagonal[0, torch.arange(n_steps), torch.arange(n_steps) * n_tokens // n_steps] = 1.0
    uniform = torch.full((1, n_steps, n_tokens), 1.0 / n_tokens)
    lengths = torch.tensor([n_tokens]), torch.tensor([n_steps])
    assert guided_attention_loss(diagonal, *lengths) < 0.05 < guided_attention_loss(uniform, *lengths)
    padded = torch.cat((uniform, torch.ones(1, 3, n_tokens)), dim=1)  # padded steps must not count
    assert torch.isclose(guided_attention_loss(padded, *lengths), guided_attention_loss(uniform, *lengths))


def test_every_parameter_gets_a_gradient(generator):
    config = _tiny(frames_per_step=2, gst=True, n_speakers=3)
    config = config.replace(guided_attention=GuidedAttentionConfig(weight=1.0))
    model = _model(config).train()
    tokens, token_lengths, mel, mel_lengths = _batch(generator)
    output = model(tokens, token_lengths, mel, mel_lengths, speaker_id=torch.tensor([0, 1, 2]))
    loss, parts = tacotron2_loss(output, mel, mel_lengths, token_lengths, config.decoder.frames_per_step,
                                 config.guided_attention)
    loss.backward()
    assert set(parts) == {"mel", "postnet", "gate", "guided_attention", "total"}
    missing = [name for name, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing


def test_loss_falls_when_overfitting_two_utterances(generator):
    model = _model(_tiny(frames_per_step=2)).train()
    tokens, token_lengths, _, mel_lengths = _batch(generator, token_lengths=(7, 5), mel_lengths=(12, 9))
    # A smooth, learnable target (noise would take far longer than 30 steps to memorise).
    pattern = torch.sin(torch.arange(12) / 3.0) * torch.cos(torch.arange(N_MELS) / 4.0).unsqueeze(1) - 1.0
    mel = pattern * (torch.arange(12) < mel_lengths.unsqueeze(1)).unsqueeze(1)  # (2, n_mels, 12), zero-padded
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        output = model(tokens, token_lengths, mel, mel_lengths, generator=generator)
        loss, parts = tacotron2_loss(output, mel, mel_lengths, token_lengths, frames_per_step=2)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(parts["total"]))
    assert losses[-1] < 0.5 * losses[0], losses


def test_l1_mel_loss_is_the_mean_absolute_error_over_real_frames(generator):
    mel_lengths = torch.tensor([6, 4])
    mel = torch.randn(2, N_MELS, 6, generator=generator)
    predicted = torch.randn(2, N_MELS, 6, generator=generator)
    output = Tacotron2Output(mel=predicted, mel_postnet=predicted * 2, gate_logits=torch.zeros(2, 3),
                             alignment=torch.full((2, 3, 5), 0.2), mel_lengths=mel_lengths)
    _, parts = tacotron2_loss(output, mel, mel_lengths, torch.tensor([5, 5]), frames_per_step=2, mel_loss="l1")
    real = [(predicted[0] - mel[0]).abs(), (predicted[1, :, :4] - mel[1, :, :4]).abs()]
    expected = torch.cat([error.flatten() for error in real]).mean()
    torch.testing.assert_close(parts["mel"], expected)
    _, squared = tacotron2_loss(output, mel, mel_lengths, torch.tensor([5, 5]), frames_per_step=2)
    assert not torch.allclose(squared["mel"], expected)  # the default stays NVIDIA's MSE
    with pytest.raises(ConfigError, match="mel_loss"):
        Tacotron2Config(mel_loss="l2")


def test_save_load_round_trip_reproduces_outputs(tmp_path, generator):
    model = _model(_tiny(frames_per_step=2, gst=True, n_speakers=3))
    path = save_checkpoint(tmp_path / "t2.safetensors", model.state_dict(), kind="tacotron2",
                           config=model.config.to_dict(), symbols=["_", "-"])
    checkpoint = read_checkpoint(path)
    assert checkpoint.kind == "tacotron2"
    loaded = Tacotron2(Tacotron2Config.from_dict(checkpoint.config))
    loaded.load_state_dict(checkpoint.state_dict, strict=True)
    loaded.eval()
    tokens, token_lengths, mel, mel_lengths = _batch(generator)
    speakers = torch.tensor([0, 1, 2])
    outputs = []
    for net in (model, loaded):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # max_decoder_steps is reached on purpose
            outputs.append((net(tokens, token_lengths, mel, mel_lengths, speakers, prenet_dropout=0),
                            net.infer(tokens, token_lengths, speakers, style=1, gate_threshold=1.0,
                                      max_decoder_steps=4, prenet_dropout=0.5,
                                      generator=torch.Generator().manual_seed(5))))
    for before, after in zip(*outputs):
        for field in dataclasses.fields(before):
            value, loaded_value = getattr(before, field.name), getattr(after, field.name)
            same = torch.equal(value, loaded_value) if torch.is_tensor(value) else value == loaded_value
            assert same, field.name


# --- NVIDIA parity (tests/golden/README.md: NVIDIA/tacotron2 185cd24e run once, outside the repo) ---

@pytest.fixture(scope="module")
def golden():
    with safe_open(str(GOLDEN), framework="pt") as file:
        tensors = {key: file.get_tensor(key) for key in file.keys()}
        metadata = file.metadata()
    state_dict = {k.removeprefix("state_dict."): v for k, v in tensors.items() if k.startswith("state_dict.")}
    return tensors, state_dict, metadata


def _close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-5)


def test_nvidia_golden_teacher_forced(golden):
    tensors, state_dict, _ = golden
    model = Tacotron2.from_nvidia_state_dict(state_dict)
    for name in ("forward", "forward_padded"):
        inputs = [tensors[f"{name}.input.{k}"] for k in ("tokens", "token_lengths", "mel", "mel_lengths")]
        output = model(*inputs, prenet_dropout=0.0)
        expected = {k: tensors[f"{name}.output.{k}"] for k in ("mel", "mel_postnet", "gate_logits", "alignment")}
        mel_lengths = inputs[3].tolist()
        _close(output.mel, expected["mel"])
        _close(output.gate_logits, expected["gate_logits"])
        # NVIDIA leaves padded alignment rows unmasked and lets padded decoder frames leak into
        # the postnet's view of the last real frames; voxflow masks both (padding invariance).
        for i, n_frames in enumerate(mel_lengths):
            _close(output.alignment[i, :n_frames], expected["alignment"][i, :n_frames])
            if n_frames == max(mel_lengths):
                _close(output.mel_postnet[i], expected["mel_postnet"][i])


def test_nvidia_golden_inference_single_and_batched(golden):
    tensors, state_dict, metadata = golden
    model = Tacotron2.from_nvidia_state_dict(state_dict)
    texts = [tensors[f"infer{i}.input.tokens"] for i in range(2)]
    expected = [{k: tensors[f"infer{i}.output.{k}"] for k in ("mel", "mel_postnet", "gate_logits", "alignment")}
                for i in range(2)]
    assert json.loads(metadata["infer_steps"]) == [3, 80]  # text 0 stops by itself; text 1 hits the limit
    for text, reference in zip(texts, expected):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            output = model.infer(text, max_decoder_steps=80, prenet_dropout=0.0)
        for key, value in reference.items():
            _close(getattr(output, key), value)
    tokens = torch.zeros(2, 11, dtype=torch.long)
    tokens[0, :7], tokens[1] = texts[0][0], texts[1][0]
    with pytest.warns(UserWarning, match="1 of 2 item"):
        batched = model.infer(tokens, torch.tensor([7, 11]), max_decoder_steps=80, prenet_dropout=0.0)
    assert batched.mel_lengths.tolist() == [3, 80]
    assert batched.mel[0, :, 3:].abs().sum() == 0 and (batched.gate_logits[0, 3:] == 1e3).all()
    for i, (n_tokens, n_frames) in enumerate(((7, 3), (11, 80))):
        _close(batched.mel[i:i + 1, :, :n_frames], expected[i]["mel"])
        _close(batched.mel_postnet[i:i + 1, :, :n_frames], expected[i]["mel_postnet"])
        _close(batched.gate_logits[i:i + 1, :n_frames], expected[i]["gate_logits"])
        _close(batched.alignment[i:i + 1, :n_frames, :n_tokens], expected[i]["alignment"])


def test_nvidia_state_dict_conversion(golden):
    _, state_dict, _ = golden
    # DeepLearningExamples / DDP prefixes, fp16 weights, and no num_batches_tracked (2018-era files).
    legacy = {"module." + k: v.half() if v.is_floating_point() else v for k, v in state_dict.items()
              if not k.endswith("num_batches_tracked")}
    converted = nvidia_state_dict_to_ours(legacy)
    assert set(converted) == set(state_dict) and all(v.dtype != torch.float16 for v in converted.values())
    config = nvidia_config_from_state_dict(converted)
    assert (config.encoder.embedding_dim, config.attention.rnn_dim, config.decoder.rnn_dim) == (16, 20, 24)
    assert (config.text.symbol_set, config.decoder.frames_per_step, config.postnet.channels) == ("tacotron2", 1, 16)
    Tacotron2.from_nvidia_state_dict(legacy)  # strict load
    with torch.device("meta"):
        flowtron_sized = Tacotron2(_tiny(gst=True, n_speakers=5).replace(
            text=_tiny().text.replace(symbol_set="flowtron"))).state_dict()
    inferred = nvidia_config_from_state_dict(flowtron_sized)
    assert inferred.text.symbol_set == "flowtron" and inferred.gst == _tiny(gst=True).gst
    assert (inferred.n_speakers, inferred.speaker_embedding_dim, inferred.audio.n_mels) == (5, 6, N_MELS)
    with pytest.raises(ConfigError, match="expected 148"):
        nvidia_config_from_state_dict({"embedding.weight": torch.zeros(10, 4)})
