"""Flowtron: NVIDIA key layout, invertibility, golden parity with NVIDIA's code (tests/golden/README.md),
legacy pickles, posterior sampling, latent interpolation, losses and a short training run."""

from __future__ import annotations

import copy
import sys
import types
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from torch import nn

from tts.audio import AudioConfig
from tts.config import TextConfig
from tts.errors import ConfigError
from tts.loading import read_model
from tts.models import flowtron_interpolate as interp
from tts.models import flowtron_layers as layers
from tts.models.flowtron import (FLOWTRON_PRESETS, FlowConfig, Flowtron, FlowtronConfig, FlowtronEncoderConfig,
                                 attention_ctc_loss, beta_binomial_prior, default_n_frames, flowtron_loss,
                                 looks_like_nvidia_flowtron)
from tts.models.layers import lengths_to_mask

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "flowtron_tiny_nvidia.safetensors"
N_MELS = 6


def _tiny(n_flows: int = 2, cumulative: bool = False, n_speakers: int = 3) -> FlowtronConfig:
    return FlowtronConfig(audio=AudioConfig(n_mels=N_MELS), encoder=FlowtronEncoderConfig(embedding_dim=8),
                          flows=FlowConfig(n_flows=n_flows, hidden_dim=12, attention_dim=10, n_lstm_layers=2,
                                           cumulative_attention=cumulative),
                          n_speakers=n_speakers, speaker_embedding_dim=4)


def _model(config: FlowtronConfig, seed: int = 0) -> Flowtron:
    """Random weights, with the zero-initialised coupling convs redrawn so every flow does something."""
    torch.manual_seed(seed)
    model = Flowtron(config)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if ".conv." in name and "attn_cond" not in name:
                parameter.normal_(0.0, 0.3)
    return model.eval()


def _batch(generator, token_lengths=(9, 6, 4), mel_lengths=(13, 8, 11)):
    tokens = torch.randint(1, 185, (len(token_lengths), max(token_lengths)), generator=generator)
    mel = torch.randn(len(mel_lengths), N_MELS, max(mel_lengths), generator=generator) - 4.0
    token_lengths, mel_lengths = torch.tensor(token_lengths), torch.tensor(mel_lengths)
    tokens = tokens * (torch.arange(tokens.size(1)) < token_lengths.unsqueeze(1))
    mel = mel * (torch.arange(mel.size(2)) < mel_lengths.unsqueeze(1)).unsqueeze(1)
    return tokens, token_lengths, mel, mel_lengths, torch.tensor([0, 2, 1])


def test_nvidia_preset_has_nvidias_68_keys_and_parameter_count():
    with torch.device("meta"):
        model = Flowtron(FLOWTRON_PRESETS["nvidia"])
    state = model.state_dict()
    assert len(state) == 68
    assert sum(t.numel() for t in state.values()) == 60_977_473
    shapes = {key: tuple(t.shape) for key, t in state.items()}
    assert shapes["embedding.weight"] == (185, 512) and shapes["speaker_embedding.weight"] == (1, 128)
    for prefix in ("flows.0.", "flows.1.ar_step."):
        assert shapes[prefix + "lstm.weight_ih_l0"] == (4096, 1664)
        assert shapes[prefix + "attention_lstm.weight_ih_l0"] == (4096, 80)
        assert shapes[prefix + "attention_layer.v.linear_layer.weight"] == (1, 640)
        assert shapes[prefix + "conv.weight"] == (160, 1024, 1)
    assert shapes["flows.1.ar_step.gate_layer.linear_layer.weight"] == (1, 1664)
    assert not any("flows.0.gate_layer" in key for key in shapes)
    assert looks_like_nvidia_flowtron(state)


def test_config_round_trips_and_validates():
    config = _tiny(cumulative=True)
    assert FlowtronConfig.from_dict(config.to_dict()) == config
    assert FlowtronConfig().text == TextConfig(symbol_set="flowtron", cleaners=("flowtron_cleaners",), p_arpabet=0.5)
    with pytest.raises(ConfigError, match="n_speakers"):
        FlowtronConfig(n_speakers=0)
    with pytest.raises(ConfigError, match="flows.n_flows"):
        FlowConfig(n_flows=0)


def test_reverse_each_reverses_real_frames_keeps_padding_last_and_is_an_involution():
    frames = torch.arange(10.0).view(2, 5, 1)
    lengths = torch.tensor([5, 3])
    flipped = layers.reverse_each(frames, lengths)
    assert flipped[:, :, 0].tolist() == [[4, 3, 2, 1, 0], [7, 6, 5, 9, 8]]
    assert torch.equal(layers.reverse_each(flipped, lengths), frames)


@pytest.mark.parametrize("n_flows, cumulative", [(2, False), (3, True)])
def test_inverse_recovers_the_mel_of_a_padded_batch(n_flows, cumulative, generator):
    """forward: mel → z with teacher forcing (frame t's affine map depends on mel_<t); inverse
    regenerates mel_<t frame by frame, so with the gate off it recovers every real frame."""
    model = _model(_tiny(n_flows, cumulative))
    tokens, token_lengths, mel, mel_lengths, speakers = _batch(generator)
    with torch.no_grad():
        out = model(mel, speakers, tokens, token_lengths, mel_lengths)
        assert (out.z - mel).abs().max() > 0.5  # the flows do transform
        back = model.inverse(out.z, speakers, tokens, token_lengths, mel_lengths)
    assert torch.equal(back.mel_lengths, mel_lengths)
    torch.testing.assert_close(back.mel, mel, atol=1e-5, rtol=1e-5)
    real = (torch.arange(mel.size(2)) < mel_lengths[:, None]).unsqueeze(2)
    for k in range(n_flows):  # on real frames the inverse attends exactly as the teacher-forced pass did
        torch.testing.assert_close(back.attention[k] * real, out.attention[k] * real, atol=1e-6, rtol=1e-5)


def test_padding_invariance(generator):
    model = _model(_tiny())
    tokens, token_lengths, mel, mel_lengths, speakers = _batch(generator)
    with torch.no_grad():
        batched = model(mel, speakers, tokens, token_lengths, mel_lengths)
        for i in range(3):
            n, m = int(token_lengths[i]), int(mel_lengths[i])
            single = model(mel[i:i + 1, :, :m], speakers[i:i + 1], tokens[i:i + 1, :n])
            torch.testing.assert_close(batched.z[i:i + 1, :, :m], single.z, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(batched.attention[1][i:i + 1, :m, :n], single.attention[1], atol=1e-6, rtol=1e-5)


def test_log_s_sum_is_the_log_determinant(generator):
    """Each frame's map is diagonal-affine given earlier frames: the Jacobian is triangular, its
    log-determinant Σ log_s; checked against torch.logdet on one tiny item."""
    model = _model(_tiny(n_flows=2))
    tokens, _, mel, _, speakers = _batch(generator, (5,), (4,))
    mel, speakers = mel[:1], speakers[:1]

    def z_of(flat):
        return model(flat.view(1, N_MELS, 4), speakers, tokens).z.flatten()

    jacobian = torch.autograd.functional.jacobian(z_of, mel.flatten())
    log_s = model(mel, speakers, tokens).log_s
    torch.testing.assert_close(torch.logdet(jacobian), sum(s.sum() for s in log_s).detach(), atol=1e-4, rtol=1e-4)


@pytest.fixture(scope="module")
def golden():
    with safe_open(GOLDEN, "pt") as file:
        return {key: file.get_tensor(key) for key in file.keys()}, file.metadata()


def _golden_model(golden, name: str) -> Flowtron:
    tensors, _ = golden
    prefix = f"{name}.state_dict."
    return Flowtron.from_nvidia_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})


@pytest.mark.parametrize("name", ["a", "b"])
@pytest.mark.parametrize("tag", ["forward", "forward_prior"])
def test_nvidia_golden_teacher_forced(golden, name, tag):
    tensors, _ = golden
    model = _golden_model(golden, name)
    inputs = {key: tensors[f"{name}.input.{key}"] for key in
              ("tokens", "token_lengths", "mel", "mel_lengths", "speaker_ids", "prior")}
    lengths = inputs["mel_lengths"]
    torch.testing.assert_close(beta_binomial_prior(inputs["token_lengths"], lengths), inputs["prior"],
                               atol=1e-7, rtol=1e-6)
    with torch.no_grad():
        out = model(inputs["mel"], inputs["speaker_ids"], inputs["tokens"], inputs["token_lengths"], lengths,
                    inputs["prior"] if tag == "forward_prior" else None)
    torch.testing.assert_close(out.z, tensors[f"{name}.{tag}.z"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.gate_logits, tensors[f"{name}.{tag}.gate"], atol=1e-5, rtol=1e-5)
    for k in range(len(model.flows)):  # NVIDIA keeps backward flows' log_s / attention in processing order
        unflip = (lambda t: layers.reverse_each(t, lengths)) if k % 2 else (lambda t: t)
        torch.testing.assert_close(out.log_s[k], unflip(tensors[f"{name}.{tag}.log_s.{k}"].transpose(1, 2)).transpose(1, 2),
                                   atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(out.attention[k], unflip(tensors[f"{name}.{tag}.attention.{k}"]), atol=1e-6, rtol=1e-5)
    if name == "a":  # NVIDIA's FlowtronLoss with use_ctc_loss, blank_logprob -8
        nll, gate = flowtron_loss(out)
        ctc = attention_ctc_loss(out.attention_log_probs, inputs["token_lengths"], lengths, -8.0)
        for value, key in ((nll, "loss_nll"), (gate, "loss_gate"), (ctc, "loss_ctc")):
            torch.testing.assert_close(value.reshape(1), tensors[f"a.{tag}.{key}"], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["a", "b"])
def test_nvidia_golden_inference_with_given_z(golden, name):
    tensors, _ = golden
    model = _golden_model(golden, name)
    z, tokens, speaker = (tensors[f"{name}.infer.{key}"] for key in ("z", "tokens", "speaker_id"))
    with torch.no_grad():
        full = model.inverse(z, speaker, tokens)
        stopped = model.inverse(z, speaker, tokens, gate_threshold=float(tensors[f"{name}.infer.gate_threshold"]))
    torch.testing.assert_close(full.mel, tensors[f"{name}.infer.mel_full"], atol=1e-5, rtol=1e-5)
    assert stopped.mel.shape == tensors[f"{name}.infer.mel_stop"].shape and stopped.mel.size(2) < z.size(2)
    torch.testing.assert_close(stopped.mel, tensors[f"{name}.infer.mel_stop"], atol=1e-5, rtol=1e-5)
    first = len(model.flows) - 1  # NVIDIA lists attention in run order: the last flow first
    reference = tensors[f"{name}.infer.attention_full.0"]
    torch.testing.assert_close(full.attention[first], layers.reverse_each(reference, None) if first % 2 else reference,
                               atol=1e-6, rtol=1e-5)


def test_nvidia_state_dict_file_loads_strictly(golden, tmp_path):
    tensors, _ = golden
    state = {k[len("a.state_dict."):]: v for k, v in tensors.items() if k.startswith("a.state_dict.")}
    assert len(state) == 68
    torch.save({"state_dict": state, "iteration": 5}, tmp_path / "flowtron_ljs.pt")
    loaded = read_model(tmp_path / "flowtron_ljs.pt")
    assert loaded.kind == "flowtron" and loaded.model.config.text.p_arpabet == 1.0
    assert loaded.model.config.n_speakers == 3 and loaded.model.config.flows.n_flows == 2


# NVIDIA's class for each of ours (flowtron.py at HEAD); torch modules are pickled as they are.
_NVIDIA_CLASSES = {"Flowtron": "Flowtron", "FlowtronEncoder": "Encoder", "ARStep": "AR_Step",
                   "BackwardStep": "AR_Back_Step", "FlowtronAttention": "Attention", "LinearNorm": "LinearNorm",
                   "ConvNorm": "ConvNorm", "DenseLayer": "DenseLayer", "AttentionConditioning": "AttentionConditioningLayer",
                   "InstanceNorm1d": "MaskedInstanceNorm1d"}


def _as_nvidia_object(module: nn.Module, stand_ins: dict[str, type], memo: dict[int, nn.Module]) -> nn.Module:
    """A copy of `module` whose voxflow classes are stand-ins named `flowtron.<NVIDIA name>`."""
    if id(module) in memo:  # keep aliases (cumulative attention registers its convs twice)
        return memo[id(module)]
    name = _NVIDIA_CLASSES.get(type(module).__name__)
    copied = object.__new__(stand_ins[name]) if name else object.__new__(type(module))
    memo[id(module)] = copied
    copied.__dict__.update({k: copy.copy(v) for k, v in module.__dict__.items() if k != "_modules"})
    copied.__dict__.pop("config", None)
    copied.__dict__["_modules"] = {k: _as_nvidia_object(child, stand_ins, memo) if child is not None else None
                                   for k, child in module._modules.items()}
    return copied


def test_pickled_nvidia_flowtron_object_loads_through_stubs(tmp_path, generator):
    model = _model(_tiny(n_flows=3, cumulative=True))
    fake = types.ModuleType("flowtron")
    stand_ins = {name: type(name, (nn.Module,), {"__module__": "flowtron"}) for name in _NVIDIA_CLASSES.values()}
    vars(fake).update(stand_ins)
    sys.modules["flowtron"] = fake
    try:
        torch.save({"model": _as_nvidia_object(model, stand_ins, {})}, tmp_path / "flowtron_libritts2p3k.pt")
    finally:
        del sys.modules["flowtron"]
    from tts.legacy import read_legacy_checkpoint

    checkpoint = read_legacy_checkpoint(tmp_path / "flowtron_libritts2p3k.pt")
    assert checkpoint.model_class == "flowtron.Flowtron" and checkpoint.classes["flows.1"] == "flowtron.AR_Back_Step"
    loaded = Flowtron.from_nvidia_state_dict(checkpoint.state_dict)
    assert loaded.config.flows == model.config.flows
    tokens, token_lengths, mel, mel_lengths, speakers = _batch(generator)
    with torch.no_grad():
        assert torch.equal(loaded(mel, speakers, tokens, token_lengths, mel_lengths).z,
                           model(mel, speakers, tokens, token_lengths, mel_lengths).z)


def test_infer_is_seeded_and_its_frame_count_follows_the_text():
    model = _model(_tiny())
    tokens = torch.randint(1, 185, (1, 5), generator=torch.Generator().manual_seed(3))
    runs = [model.infer(tokens, 1, sigma=0.5, n_frames=12, gate_threshold=None,
                        generator=torch.Generator().manual_seed(9)).mel for _ in range(2)]
    assert torch.equal(runs[0], runs[1]) and runs[0].shape == (1, N_MELS, 12)
    assert default_n_frames(5) == 64 and default_n_frames(100) == 1200 and default_n_frames(10_000) == 4000
    with pytest.warns(UserWarning, match="n_frames"):
        model.infer(tokens, 0, n_frames=6, gate_threshold=1.5)  # a gate that never fires


def test_posterior_z_aggregations_and_style_inference(generator):
    model = _model(_tiny())
    mels = [torch.randn(N_MELS, n, generator=generator) - 4 for n in (7, 11)]
    texts = [torch.randint(1, 185, (n,), generator=generator) for n in (5, 8)]
    batch_mean = model.posterior_z(mels, texts, speaker_id=1, n_frames=20)
    time_mean = model.posterior_z(mels, texts, speaker_id=1, aggregation="time_and_batch")
    assert batch_mean.shape == (1, N_MELS, 20) and time_mean.shape == (1, N_MELS, 1)
    zs = [model(m[None], torch.tensor([1]), t[None]).z.detach() for m, t in zip(mels, texts)]
    tiled = torch.stack([z.repeat(1, 1, 3)[0, :, :20] for z in zs]).mean(0)
    torch.testing.assert_close(batch_mean[0], tiled * (2e4 / (2e4 + 1)))
    # a large λ shrinks the posterior mean towards the prior's 0
    assert model.posterior_z(mels, texts, 1, 20, shrinkage=1e3).abs().max() < 0.01 * batch_mean.abs().max()
    out = model.infer(texts[0][None], 1, sigma=0.0, z_mean=batch_mean, gate_threshold=None)
    reference = model.inverse(batch_mean, torch.tensor([1]), texts[0][None])
    torch.testing.assert_close(out.mel, reference.mel)
    with pytest.raises(ValueError, match="aggregation"):
        model.posterior_z(mels, texts, aggregation="time")


def test_interpolations_hit_their_endpoints(generator):
    model = _model(_tiny())
    tokens = torch.randint(1, 185, (1, 6), generator=generator)
    z_a, z_b = (torch.randn(1, N_MELS, 10, generator=generator) for _ in range(2))
    path = interp.interpolate_z(z_a, z_b, interp.interpolation_weights(5))
    assert path.shape == (5, N_MELS, 10) and torch.equal(path[0], z_a[0]) and torch.equal(path[-1], z_b[0])
    torch.testing.assert_close(path[2], (z_a[0] + z_b[0]) / 2)
    speakers = interp.interpolate_speakers(model, 0, 2, [0.0, 0.5, 1.0])
    assert torch.equal(speakers[0], model.speaker_embedding.weight[0]) and torch.equal(speakers[2], model.speaker_embedding.weight[2])
    mels = interp.synthesize_path(model, tokens, z_a.expand(3, -1, -1), speakers)
    by_id = model.inverse(z_a.expand(2, -1, -1), torch.tensor([0, 2]), tokens.expand(2, -1)).mel
    torch.testing.assert_close(mels[[0, 2]], by_id)  # embedding vectors at 0 / 1 = the speaker ids
    mean = torch.randn(1, N_MELS, 1, generator=generator)
    over_time = interp.prior_to_posterior_over_time(z_a, mean, start=2, end=7)
    assert torch.equal(over_time[..., :3], z_a[..., :3])
    assert torch.equal(over_time[..., 7:], (z_a + mean)[..., 7:])
    assert interp.synthesize_path(model, tokens, over_time).shape == (1, N_MELS, 10)


def test_every_parameter_gets_a_gradient(generator):
    model = _model(_tiny(cumulative=True)).train()
    tokens, token_lengths, mel, mel_lengths, speakers = _batch(generator)
    prior = beta_binomial_prior(token_lengths, mel_lengths)
    out = model(mel, speakers, tokens, token_lengths, mel_lengths, prior)
    nll, gate = flowtron_loss(out)
    (nll + gate + attention_ctc_loss(out.attention_log_probs, token_lengths, mel_lengths)).backward()
    missing = [name for name, p in model.named_parameters()
               if p.grad is None or not p.grad.abs().sum() > 0]
    # speaker rows not in the batch have no gradient; all ids 0..2 are used here
    assert missing == []


def _train(task, model, data, steps, learning_rate=3e-3):
    from tts.data import collate_text_mel

    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    batch = collate_text_mel([data.train[i] for i in range(4)])
    history = []
    for _ in range(steps):
        model.train()
        loss, parts = task.compute_loss(model, batch)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        history.append((loss.item(), float(parts["attention_sharpness"])))
    return history


@pytest.mark.slow
def test_tiny_flowtron_overfits_and_its_attention_sharpens(small_corpus, tmp_path):
    from tts.train.flowtron_task import FlowtronTask

    config = FlowtronConfig(audio=AudioConfig(n_mels=80), encoder=FlowtronEncoderConfig(embedding_dim=32),
                            flows=FlowConfig(n_flows=1, hidden_dim=64, attention_dim=32, n_lstm_layers=1),
                            n_speakers=2, speaker_embedding_dim=8)
    config = config.replace(loss=config.loss.replace(ctc_start_step=0))
    task = FlowtronTask(config)
    data = task.build_data(small_corpus, tmp_path / "cache", 2, 0)
    torch.manual_seed(0)
    model = task.build_model()
    history = _train(task, model, data, 60)
    first, last = history[0], history[-1]
    assert last[0] < first[0] - 1.0
    assert last[1] > first[1] + 0.05


@pytest.mark.slow  # ~7 s: mels for the 16 clips, 2 steps, a checkpoint
def test_voxflow_train_flowtron_runs_a_few_steps(small_corpus, tmp_path):
    from tts.cli import main

    run = tmp_path / "run"
    code = main(["train", "flowtron", "--data", str(small_corpus), "--out", str(run), "--config", "tiny",
                 "--set", "train.max_steps=2", "--set", "train.batch_size=2", "--set", "train.val_size=1",
                 "--set", "model.flows.hidden_dim=16", "--set", "model.flows.attention_dim=8",
                 "--set", "model.encoder.embedding_dim=8", "--set", "model.n_speakers=2",
                 "--set", "train.validate_every=100", "--no-progress"])
    assert code == 0
    loaded = read_model(run / "model.safetensors")
    assert loaded.kind == "flowtron" and loaded.speakers == ("rms", "slt")


def test_a_mellotron_lends_its_text_encoder_and_speakers_to_a_flowtron():
    """`text_state_dict`: embedding, encoder convolutions and BiLSTM, speaker table carry over (the
    BatchNorm's affine becomes the InstanceNorm's); the flows keep their own initialisation, and
    the result loads strictly. A Flowtron's own dict passes through unchanged."""
    from tts.models.mellotron import Mellotron, mellotron_preset
    from tts.train.flowtron_task import FlowtronTask

    torch.manual_seed(0)
    mellotron = Mellotron(mellotron_preset("tiny").replace(n_speakers=3, speaker_embedding_dim=4))
    for parameter in mellotron.parameters():  # trained-looking weights, unlike any fresh init
        parameter.data.normal_()
    width = mellotron.config.encoder.embedding_dim
    flowtron = _model(_tiny(n_speakers=3).replace(encoder=FlowtronEncoderConfig(embedding_dim=width)))
    before = copy.deepcopy(flowtron.state_dict())
    mellotron_weights = mellotron.state_dict()
    adapted = FlowtronTask(flowtron.config).adapt_warm_start(flowtron, mellotron_weights)
    flowtron.load_state_dict(adapted, strict=True)
    after = flowtron.state_dict()
    for key in ("embedding.weight", "speaker_embedding.weight", "encoder.lstm.weight_ih_l0_reverse",
                "encoder.convolutions.2.0.conv.weight", "encoder.convolutions.0.1.weight"):
        assert torch.equal(after[key], mellotron_weights[key]), key
    flow_keys = [key for key in after if key.startswith("flows.")]
    assert flow_keys and all(torch.equal(after[key], before[key]) for key in flow_keys)
    assert flowtron.text_state_dict(after) is after


def _mean_entropy(target: torch.Tensor, mel_lengths: torch.Tensor) -> float:
    """The entropy of each real frame's target row (batch, n_frames, n_tokens), averaged over frames."""
    frames = lengths_to_mask(mel_lengths, target.size(1)).float()
    return float((-(target * torch.log(target + 1e-12)).sum(2) * frames).sum() / frames.sum())


def test_attention_target_loss_reaches_the_target_entropy_only_at_the_target():
    from tts.models.flowtron import attention_target_loss

    generator = torch.Generator().manual_seed(0)
    target = torch.softmax(3 * torch.randn(2, 7, 5, generator=generator), dim=2)
    mel_lengths = torch.tensor([7, 4])
    target[1, 4:] = 0.0  # padded frames: no target, and they must not count
    entropy = _mean_entropy(target, mel_lengths)
    at_target = attention_target_loss([torch.log(target + 1e-12)], target, mel_lengths)
    elsewhere = attention_target_loss([torch.log_softmax(torch.randn(2, 7, 5, generator=generator), 2)],
                                      target, mel_lengths)
    assert at_target == pytest.approx(entropy, abs=1e-5)
    assert elsewhere > at_target + 0.1


def _teacher_file(tmp_path, flowtron_config, speakers=("rms", "slt")):
    """A random tiny Mellotron with the Flowtron's text and mel settings, saved as a voxflow file."""
    from tts.loading import save_model
    from tts.models.mellotron import Mellotron, mellotron_preset

    torch.manual_seed(1)
    config = mellotron_preset("tiny").replace(text=flowtron_config.text, audio=flowtron_config.audio,
                                              n_speakers=len(speakers))
    return save_model(tmp_path / "teacher.safetensors", Mellotron(config).eval(), speakers)


@pytest.mark.slow  # ~25 s: mels for the 16 clips, 60 steps of a small Flowtron and its teacher
def test_a_teachers_alignment_is_learnt_by_the_flowtrons_own_attention(small_corpus, tmp_path):
    """With `loss.alignment_teacher` (here the bundled Mellotron, which knows the corpus's two
    flite speakers), the prior is left out and the cross-entropy of the Flowtron's own attention
    to the teacher's teacher-forced attention falls towards the teacher's entropy, its floor."""
    from tts.api import bundled_voices
    from tts.data import collate_text_mel
    from tts.train.flowtron_task import FlowtronTask

    teacher = bundled_voices()["mellotron"]
    config = FlowtronConfig(audio=AudioConfig(n_mels=80), encoder=FlowtronEncoderConfig(embedding_dim=128),
                            flows=FlowConfig(n_flows=1, hidden_dim=64, attention_dim=32, n_lstm_layers=1),
                            n_speakers=4, speaker_embedding_dim=64)
    config = config.replace(loss=config.loss.replace(alignment_teacher=str(teacher), ctc_weight=0.0))
    task = FlowtronTask(config)
    data = task.build_data(small_corpus, tmp_path / "cache", 2, 0)
    batch = collate_text_mel([data.train[i] for i in range(4)])
    target = task._teacher_alignment(task._alignment_teacher(batch.tokens.device), batch)
    floor = _mean_entropy(target, batch.mel_lengths)
    torch.manual_seed(0)
    model = task.build_model()  # its text encoder and speakers from the teacher, as in the recipe
    model.load_state_dict(task.adapt_warm_start(model, read_model(teacher).model.state_dict()))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    gaps = []
    for _ in range(60):
        model.train()
        loss, parts = task.compute_loss(model, batch)
        gaps.append(float(parts["alignment"]) - floor)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert "ctc" not in parts and gaps[0] > 0.3
    assert gaps[-1] < 0.6 * gaps[0], gaps[::10]


def test_an_alignment_teacher_for_other_speakers_is_refused(small_corpus, tmp_path):
    from tts.errors import TrainingError
    from tts.train.flowtron_task import FlowtronTask

    config = _tiny(n_flows=1, n_speakers=2).replace(audio=AudioConfig(n_mels=80))
    teacher = _teacher_file(tmp_path, config, speakers=("awb", "slt"))
    task = FlowtronTask(config.replace(loss=config.loss.replace(alignment_teacher=str(teacher))))
    task.build_data(small_corpus, None, 2, 0)
    with pytest.raises(TrainingError, match=r"teacher\.safetensors.*\['rms'\]"):
        task._alignment_teacher(torch.device("cpu"))
