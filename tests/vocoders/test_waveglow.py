"""WaveGlow: flow properties, NVIDIA parity (golden data from their glow.py), caches, I/O, denoiser."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tts.audio import AudioConfig
from tts.errors import ConfigError, UserError
from vocoders import WaveGlowVocoder, infer_config, kernels, load_vocoder, nvidia_to_ours, ours_to_nvidia, save_vocoder
from vocoders.denoiser import Denoiser
from vocoders.waveglow import InvertibleConv1x1, WaveGlow, WaveGlowConfig, WaveGlowLoss

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
AUDIO = AudioConfig(n_mels=8)


def _tiny(generator: torch.Generator, **changes) -> WaveGlow:
    """The tiny preset with non-trivial couplings (NVIDIA zero-initialises `end`) and 1×1 weights."""
    torch.manual_seed(0)  # module initialisers use the global RNG
    model = WaveGlow(WaveGlowConfig.preset("tiny", AUDIO).replace(**changes))
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if ".end." in name:
                parameter.normal_(0.0, 0.05, generator=generator)
            elif name.endswith("mix.weight"):
                parameter.add_(0.1 * torch.randn(parameter.shape, generator=generator))
    return model


def _golden() -> dict[str, torch.Tensor]:
    return load_file(GOLDEN / "waveglow_tiny_nvidia.safetensors")


def _golden_model() -> WaveGlow:
    weights = nvidia_to_ours({key[8:]: value for key, value in _golden().items() if key.startswith("weights.")})
    model = WaveGlow(infer_config(weights))
    model.load_state_dict(weights)
    return model.eval()


@pytest.mark.parametrize("alternate_halves", [False, True])
def test_inverse_of_forward_recovers_the_audio(generator, alternate_halves):
    model = _tiny(generator, alternate_halves=alternate_halves)
    mel = torch.randn(2, 8, 5, generator=generator)
    audio = 0.3 * torch.randn(2, 5 * 256, generator=generator)
    with torch.no_grad():
        output = model(audio, mel)
        assert output.z.shape == (2, 8, 5 * 256 // 8)
        assert [tuple(log_s.shape[1:2]) for log_s in output.log_s] == [(4,), (4,), (3,), (3,)]
        torch.testing.assert_close(model.inverse(mel, output.z), audio, atol=1e-5, rtol=1e-5)


def test_conv1x1_log_det_is_the_weights_logdet_times_time_steps(generator):
    conv = InvertibleConv1x1(6)
    with torch.no_grad():
        conv.weight.add_(0.5 * torch.randn(6, 6, generator=generator))
        if torch.det(conv.weight) < 0:
            conv.weight[:, 0] *= -1
    audio = torch.randn(3, 6, 11, generator=generator)
    mixed, log_det = conv(audio)
    torch.testing.assert_close(log_det, 3 * 11 * torch.logdet(conv.weight))
    torch.testing.assert_close(mixed, torch.einsum("ij,bjt->bit", conv.weight, audio))
    torch.testing.assert_close(conv.inverse(mixed), audio, atol=1e-5, rtol=1e-5)


def test_new_1x1_weights_are_rotations(generator):
    weight = InvertibleConv1x1(8).weight.detach()
    torch.testing.assert_close(weight @ weight.T, torch.eye(8), atol=1e-5, rtol=0)
    assert torch.det(weight) > 0


def test_removing_weight_norm_leaves_outputs_unchanged(generator):
    model = _tiny(generator)
    mel, audio = torch.randn(1, 8, 4, generator=generator), 0.3 * torch.randn(1, 1024, generator=generator)
    z = 0.6 * torch.randn(1, 8, 128, generator=generator)
    with torch.no_grad():
        before_forward, before_inverse = model(audio, mel).z, model.inverse(mel, z)
        model.prepare_for_inference()
        assert not any(name.endswith(("weight_g", "weight_v")) for name in model.state_dict())
        torch.testing.assert_close(model(audio, mel).z, before_forward, atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(model.inverse(mel, z), before_inverse, atol=1e-6, rtol=1e-6)


def test_inverse_cache_is_invalidated_by_train_load_and_moves(generator):
    model = _tiny(generator)
    mixes = [flow.mix for flow in model.flows]

    def cached() -> bool:
        return all(mix.inverse_weight is not None for mix in mixes)

    assert not any(mix.inverse_weight is not None for mix in mixes)
    model.prepare_for_inference()
    assert cached() and mixes[0].inverse_weight.dtype == torch.float32
    model.eval()
    assert cached()
    model.train()
    assert not any(mix.inverse_weight is not None for mix in mixes)
    model.prepare_for_inference()
    model.to(torch.float64)
    assert not any(mix.inverse_weight is not None for mix in mixes)
    model.to(torch.float32).prepare_for_inference()
    # Loading other weights must not leave the old inverse behind (NVIDIA's cache never resets).
    other = _tiny(torch.Generator().manual_seed(99))
    model.load_state_dict(other.state_dict())
    assert not any(mix.inverse_weight is not None for mix in mixes)
    mel, audio = torch.randn(1, 8, 3, generator=generator), 0.3 * torch.randn(1, 768, generator=generator)
    with torch.no_grad():
        torch.testing.assert_close(model.inverse(mel, model(audio, mel).z), audio, atol=1e-5, rtol=1e-5)


def test_nvidia_key_names_and_sizes_for_the_published_config():
    with torch.device("meta"):
        model = WaveGlow(WaveGlowConfig.preset("nvidia"))
    keys = ours_to_nvidia(model.state_dict())
    assert len(keys) == 686
    assert sum(tensor.numel() for tensor in keys.values()) == 87_879_272
    assert keys["WN.0.cond_layer.weight_v"].shape == (4096, 640, 1)
    assert keys["WN.0.res_skip_layers.7.weight_v"].shape == (256, 256, 1)
    assert keys["WN.11.start.weight_v"].shape == (256, 2, 1)
    assert keys["WN.4.end.weight"].shape == (6, 256, 1)
    assert keys["convinv.8.conv.weight"].shape == (4, 4, 1)
    model.prepare_for_inference()
    folded = ours_to_nvidia(model.state_dict())
    assert len(folded) == 470 and sum(tensor.numel() for tensor in folded.values()) == 87_731_816


def test_key_maps_round_trip(generator):
    golden = {key[8:]: value for key, value in _golden().items() if key.startswith("weights.")}
    ours = nvidia_to_ours(golden)
    assert set(ours) == set(WaveGlow(infer_config(ours)).state_dict())
    back = ours_to_nvidia(ours)
    assert set(back) == set(golden) and all(torch.equal(back[key], golden[key]) for key in golden)
    state = _tiny(generator).state_dict()
    assert nvidia_to_ours(ours_to_nvidia(state)).keys() == state.keys()
    with pytest.raises(UserError, match="unknown keys"):
        nvidia_to_ours({"decoder.linear.weight": torch.zeros(1)})


def test_matches_nvidia_glow_py_forward_and_inverse():
    golden, model = _golden(), _golden_model()
    with torch.no_grad():
        z, log_s, log_det = model(golden["audio_in"], golden["mel"])
        # atol 1e-5: float32 rounding of the same operations in a different order; outputs are O(1-10).
        torch.testing.assert_close(z, golden["forward_z"], atol=1e-5, rtol=1e-5)
        for k, flow_log_s in enumerate(log_s):
            torch.testing.assert_close(flow_log_s, golden[f"forward_log_s.{k}"], atol=1e-5, rtol=1e-5)
        # log_det is batch · n_steps (384) times a float32 logdet: 1e-5 relative.
        torch.testing.assert_close(torch.stack(log_det), golden["forward_log_det"], atol=1e-4, rtol=1e-5)
        audio = model.inverse(golden["mel"], 0.6 * golden["infer_z_unit"])
        torch.testing.assert_close(audio, golden["infer_audio_fixed_z"], atol=1e-5, rtol=1e-5)


def test_seeded_infer_draws_nvidias_noise():
    golden, model = _golden(), _golden_model()
    torch.testing.assert_close(model.draw_noise(golden["mel"], torch.Generator().manual_seed(7)),
                               golden["infer_noise_seed7"], atol=0, rtol=0)
    vocoder = WaveGlowVocoder(model)
    audio = vocoder(golden["mel"], sigma=0.6, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(audio, golden["infer_audio_seed7"], atol=1e-5, rtol=1e-5)


def test_load_vocoder_reads_nvidias_pickled_model():
    golden = _golden()
    vocoder = load_vocoder(GOLDEN / "waveglow_tiny_nvidia_model.pt")
    assert vocoder.sample_rate == 22050 and vocoder.config.n_mels == 4
    audio = vocoder(golden["mel"], sigma=0.6, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(audio, golden["infer_audio_seed7"], atol=1e-5, rtol=1e-5)
    single = vocoder(golden["mel"][0], sigma=0.6, generator=torch.Generator().manual_seed(7))
    assert single.shape == (6 * 256,)
    with pytest.raises(ValueError, match="expected mel of shape"):
        vocoder(torch.zeros(80, 6))


def test_save_then_load_gives_identical_output(generator, tmp_path):
    model = _tiny(generator)
    path = save_vocoder(tmp_path / "waveglow.safetensors", model)
    mel = torch.randn(1, 8, 4, generator=generator)
    expected = WaveGlowVocoder(model)(mel, sigma=0.6, generator=torch.Generator().manual_seed(3))
    loaded = load_vocoder(path)
    assert loaded.model.config == model.config
    torch.testing.assert_close(loaded(mel, sigma=0.6, generator=torch.Generator().manual_seed(3)), expected,
                               atol=0, rtol=0)
    with pytest.raises(UserError, match="audio config"):
        load_vocoder(path, audio=AudioConfig())
    # A prepared model saves folded weights; they load into the weight-norm form too.
    folded = load_vocoder(save_vocoder(tmp_path / "folded.safetensors", model))
    torch.testing.assert_close(folded(mel, sigma=0.6, generator=torch.Generator().manual_seed(3)), expected,
                               atol=1e-6, rtol=1e-6)
    folded.to(torch.float64)
    assert all(flow.mix.inverse_weight is not None for flow in folded.model.flows)


def test_loss_falls_when_overfitting_one_clip(generator):
    model = _tiny(generator)
    time = torch.arange(1024) / 22050
    audio = (0.5 * torch.sin(2 * torch.pi * 220 * time) + 0.05 * torch.randn(1024, generator=generator))[None]
    mel = torch.randn(1, 8, 4, generator=generator)  # any fixed conditioning will do for memorising
    criterion, optimizer = WaveGlowLoss(sigma=1.0), torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(20):
        loss = criterion(model(audio, mel))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.5, losses


def test_chunked_inference_matches_whole_on_the_same_noise(generator):
    model = _tiny(generator).prepare_for_inference()
    mel = torch.randn(1, 8, 40, generator=generator)
    with torch.no_grad():
        whole = model.infer(mel, sigma=0.6, generator=torch.Generator().manual_seed(5))
        chunked = model.infer(mel, sigma=0.6, generator=torch.Generator().manual_seed(5), chunk_frames=10,
                              overlap_frames=8)
        no_context = model.infer(mel, sigma=0.6, generator=torch.Generator().manual_seed(5), chunk_frames=10,
                                 overlap_frames=0)
    # The tiny model sees ±12 z steps (96 samples) through its couplings plus 3 frames back through
    # the upsampler; 8 frames of overlap keep 4 frames of context beyond each crossfade, so the
    # chunks compute the same sums as the whole pass: only float32 rounding differs.
    torch.testing.assert_close(chunked, whole, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(no_context, whole, atol=1e-3)  # without context the seams differ
    with pytest.raises(ValueError, match="chunk_frames"):
        model.infer(mel, chunk_frames=4, overlap_frames=8)


def test_denoiser_removes_the_bias_hiss(generator):
    model = _tiny(generator).prepare_for_inference()
    with torch.no_grad():
        hiss = model.infer(torch.zeros(1, 8, 40), sigma=0.0)
        denoiser = Denoiser(model, mode="zeros")
        denoised = denoiser(hiss, strength=1.0)
        assert denoised.shape == hiss.shape
        assert denoised.square().sum() < 0.2 * hiss.square().sum()
        torch.testing.assert_close(denoiser(hiss[0], strength=0.0), hiss[0], atol=1e-5, rtol=1e-4)
        Denoiser(model, mode="normal", generator=generator)
    with pytest.raises(ValueError, match="mode"):
        Denoiser(model, mode="pink")


def test_config_checks_and_json_round_trip():
    config = WaveGlowConfig.preset("small", AUDIO)
    assert WaveGlowConfig.from_dict(config.to_dict()) == config
    assert WaveGlowConfig.preset("dle").wn_channels == 512
    with pytest.raises(ConfigError, match="n_group: expected an even number"):
        WaveGlowConfig(n_group=7)
    with pytest.raises(ConfigError, match="leave >= 2"):
        WaveGlowConfig(n_early_size=4)
    with pytest.raises(ConfigError, match="hop_length"):
        WaveGlowConfig(audio=AudioConfig(hop_length=100))
    with pytest.raises(ConfigError, match="unknown config key"):
        WaveGlowConfig.from_dict({"n_flow": 3})


def test_kernel_backends(monkeypatch):
    in_act, cond = torch.randn(1, 8, 5), torch.randn(1, 8, 5)
    expected = torch.tanh((in_act + cond)[:, :4]) * torch.sigmoid((in_act + cond)[:, 4:])
    torch.testing.assert_close(kernels.gated_tanh(in_act, cond, 4), expected)
    torch.testing.assert_close(kernels.gated_tanh(in_act, cond, 4, backend="reference"), expected)
    with pytest.raises(NotImplementedError, match="reference"):
        kernels.gated_tanh(in_act, cond, 4, backend="triton")
    with pytest.raises(ValueError, match="backend"):
        kernels.gated_tanh(in_act, cond, 4, backend="cuda")
    monkeypatch.setenv("VOXFLOW_KERNELS", "reference")
    assert kernels.resolve_backend("gated_tanh", "auto", in_act) == "reference"
