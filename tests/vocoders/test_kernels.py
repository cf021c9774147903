"""WaveGlow kernels: dispatcher rules, the CPU inference plan, and the Triton kernels against the reference.

The Triton tests need TRITON_INTERPRET=1 set before triton decorates the kernels, and the interpreter
slows every later `@triton.jit` import in the process, so they do not run in this process:
`test_triton_kernels_under_the_interpreter` reruns this module in one subprocess with
TRITON_INTERPRET=1, where the `_interpreted` tests run (here they are skipped). On the lent GPU the
same tests run directly on CUDA tensors (`device` = cuda), at the same tolerances.

Per-dtype tolerances (also in each kernel's docstring): the kernels compute in float32 and round once
at the store; the reference rounds every intermediate to the dtype. float32: ~1e-7 differences from
the tanh identity and summation order; float16 (ε = 2⁻¹⁰) and bfloat16 (ε = 2⁻⁷): a few ulps of the
reference's values (the interpreter's bfloat16 store seems to truncate: up to 1 ulp where a GPU
rounds to 0.5). The kernel must be within the dtype's tolerance of both the reference and the
float64 result.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tts.audio import AudioConfig
from vocoders import kernels
from vocoders.kernels import reference
from vocoders.waveglow import WaveGlow, WaveGlowConfig
from vocoders.waveglow_inference import CouplingPlan

INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"
_interpreted = pytest.mark.skipif(not INTERPRETED and not torch.cuda.is_available(),
                                  reason="runs in the TRITON_INTERPRET=1 subprocess (or on CUDA)")
DEVICE = "cuda" if torch.cuda.is_available() and not INTERPRETED else "cpu"
GATE_TOLERANCE = {torch.float32: 1e-5, torch.float16: 4e-3, torch.bfloat16: 3e-2}
FLOW_TOLERANCE = {torch.float32: 1e-5, torch.float16: 1e-2, torch.bfloat16: 5e-2}
DTYPES = list(GATE_TOLERANCE)


def _model(generator: torch.Generator, **changes) -> WaveGlow:
    """The tiny preset with non-zero `end` layers (NVIDIA zero-initialises them: couplings = identity)."""
    torch.manual_seed(0)
    model = WaveGlow(WaveGlowConfig.preset("tiny", AudioConfig(n_mels=8)).replace(**changes))
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if ".end." in name:
                parameter.normal_(0.0, 0.05, generator=generator)
            elif name.endswith((".bias", "weight_g")):
                parameter.add_(0.1 * torch.randn(parameter.shape, generator=generator))
    return model


def _inputs(model: WaveGlow, generator: torch.Generator, batch: int, n_frames: int):
    mel = torch.randn(batch, 8, n_frames, generator=generator)
    return mel, 0.6 * model.draw_noise(mel, generator)


# --- dispatcher rules (no triton needed) -------------------------------------------------------------

def test_auto_is_the_reference_on_cpu_and_the_env_override_wins(monkeypatch):
    tensor = torch.zeros(1, 4, 3)
    monkeypatch.delenv("VOXFLOW_KERNELS", raising=False)
    assert kernels.resolve_backend("gated_tanh", "auto", tensor) == "reference"
    assert kernels.resolve_backend("inverse_flow_step", "auto", tensor) == "reference"
    monkeypatch.setenv("VOXFLOW_KERNELS", "reference")
    assert kernels.resolve_backend("gated_tanh", "auto", tensor) == "reference"
    assert kernels.resolve_backend("gated_tanh", "reference", tensor) == "reference"
    monkeypatch.setenv("VOXFLOW_KERNELS", "fast")
    with pytest.raises(ValueError, match="VOXFLOW_KERNELS"):
        kernels.resolve_backend("gated_tanh", "auto", tensor)
    with pytest.raises(ValueError, match="backend"):
        kernels.resolve_backend("gated_tanh", "cuda", tensor)


@pytest.mark.skipif(INTERPRETED, reason="the interpreter makes forced Triton usable on CPU")
def test_forcing_triton_without_a_usable_triton_is_a_clear_error():
    audio = torch.randn(1, 4, 5)
    for call in (lambda: kernels.gated_tanh(torch.randn(1, 8, 5), torch.randn(1, 8, 5), 4, backend="triton"),
                 lambda: kernels.inverse_flow_step(audio, audio, torch.eye(4), False, backend="triton"),
                 lambda: kernels.invertible_conv1x1(audio, torch.eye(4), backend="triton")):
        # Without triton: "not installed"; with it but no CUDA and no interpreter: "needs a CUDA tensor".
        with pytest.raises(NotImplementedError, match="use backend='reference'"):
            call()


def test_the_backend_is_logged_once(monkeypatch, caplog):
    monkeypatch.setattr(kernels, "_logged", set())
    monkeypatch.delenv("VOXFLOW_KERNELS", raising=False)
    with caplog.at_level(logging.INFO, logger="vocoders.kernels"):
        for _ in range(3):
            kernels.gated_tanh(torch.randn(1, 8, 5), torch.randn(1, 8, 5), 4)
    assert [record.getMessage() for record in caplog.records] == ["vocoder kernel gated_tanh: reference backend"]


def test_reference_gate_reads_the_layers_slice_of_the_fused_conditioning(generator):
    in_act, cond = torch.randn(2, 8, 7, generator=generator), torch.randn(2, 24, 7, generator=generator)
    torch.testing.assert_close(reference.gated_tanh(in_act, cond, 4, 8),
                               reference.gated_tanh(in_act, cond[:, 8:16].contiguous(), 4), atol=0, rtol=0)


# --- the CPU inference plan (vocoders.waveglow_inference) ---------------------------------------------

@pytest.mark.parametrize("changes, batch, n_frames", [
    ({}, 2, 5),
    ({"alternate_halves": True}, 1, 3),
    ({"wn_kernel_size": 5, "wn_layers": 3}, 1, 4),
    ({"wn_layers": 7}, 1, 1),  # dilations up to 64 > the 32 steps: side taps never reach a row
    ({"upsample_kernel_size": 1000}, 2, 2),  # not a multiple of the hop: the upsample plan pads it
])
def test_the_cpu_plan_matches_the_reference_inverse(generator, monkeypatch, changes, batch, n_frames):
    model = _model(generator, **changes)
    mel, z = _inputs(model, generator, batch, n_frames)
    calls, original = [], CouplingPlan._item
    monkeypatch.setattr(CouplingPlan, "_item", lambda self, *args: calls.append(1) or original(self, *args))
    with torch.no_grad():
        expected = model.prepare_for_inference(fast=False).inverse(mel, z)
        assert not calls
        fast = model.prepare_for_inference().inverse(mel, z)
        assert model.upsample_plan is not None
        torch.testing.assert_close(model._condition(mel, mel.shape[-1] * 256),
                                   model.prepare_for_inference(fast=False)._condition(mel, mel.shape[-1] * 256),
                                   atol=1e-5, rtol=1e-5)
    assert len(calls) == batch * model.config.n_flows  # every coupling, item by item
    # Same sums in another order (bias folding, end ∘ skip): float32 rounding only.
    torch.testing.assert_close(fast, expected, atol=1e-5, rtol=1e-5)


def test_the_cpu_plan_in_time_blocks_matches_the_whole(generator, monkeypatch):
    model = _model(generator, wn_layers=3).prepare_for_inference()  # halo 1 + 2 + 4 = 7 steps
    mel, z = _inputs(model, generator, 1, 4)  # 128 steps
    with torch.no_grad():
        whole = model.inverse(mel, z)
        monkeypatch.setattr(CouplingPlan, "block_steps", 56)  # blocks of 56 (the last 16) + 7 each side
        blocked = model.inverse(mel, z)
    torch.testing.assert_close(blocked, whole, atol=1e-6, rtol=1e-6)


def test_the_cpu_plan_is_an_explicit_cache(generator, monkeypatch):
    model = _model(generator).prepare_for_inference()
    coupling = model.flows[0].coupling
    audio, cond = torch.randn(1, 4, 6), torch.randn(1, 64, 6)
    assert not coupling.plan.accepts(audio)  # autograd on: the reference path
    with torch.no_grad():
        assert coupling.plan.accepts(audio) and not coupling.plan.accepts(audio.double())
        monkeypatch.setenv("VOXFLOW_KERNELS", "reference")
        assert not coupling.plan.accepts(audio)
        torch.testing.assert_close(coupling.plan(audio, cond), coupling(audio, cond), atol=1e-5, rtol=1e-5)
        monkeypatch.delenv("VOXFLOW_KERNELS")
    model.train()
    assert coupling.plan is None and model.upsample_plan is None
    model.prepare_for_inference().to(torch.float64)
    assert coupling.plan is None
    model.to(torch.float32).prepare_for_inference()
    model.load_state_dict(model.state_dict())
    assert coupling.plan is None
    assert model.prepare_for_inference(fast=False).flows[0].coupling.plan is None


# --- Triton kernels against the reference (TRITON_INTERPRET=1 subprocess, or CUDA) --------------------

@pytest.mark.slow  # ~10 s: one subprocess that imports torch and triton and interprets ~40 launches
@pytest.mark.skipif(INTERPRETED or torch.cuda.is_available(), reason="this is the driver")
def test_triton_kernels_under_the_interpreter():
    pytest.importorskip("triton")
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "TRITON_INTERPRET": "1", "VOXFLOW_KERNELS": ""}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "interpreted",
                             str(Path(__file__).relative_to(root))], cwd=root, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout, result.stdout[-2000:]


@_interpreted
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("batch, n_steps, offset", [(1, 37, 0), (3, 1, 8), (2, 1100, 16)])
def test_gate_kernel_interpreted(generator, dtype, batch, n_steps, offset):
    pytest.importorskip("triton")
    in_act = torch.randn(batch, 8, n_steps, generator=generator).to(DEVICE, dtype)
    cond = torch.randn(batch, 24, n_steps, generator=generator).to(DEVICE, dtype)  # a 3-layer fused cond
    out = kernels.gated_tanh(in_act, cond, 4, offset, backend="triton")
    expected = reference.gated_tanh(in_act, cond, 4, offset)
    assert out.shape == (batch, 4, n_steps) and out.dtype == dtype
    tolerance = GATE_TOLERANCE[dtype]
    torch.testing.assert_close(out, expected, atol=tolerance, rtol=tolerance)
    truth = reference.gated_tanh(in_act.double(), cond.double(), 4, offset)
    torch.testing.assert_close(out.double(), truth, atol=tolerance, rtol=tolerance)


@_interpreted
def test_gate_kernel_backward_recomputes_through_the_reference_interpreted(generator):
    pytest.importorskip("triton")
    in_act = torch.randn(2, 8, 9, generator=generator).to(DEVICE).requires_grad_()
    cond = torch.randn(2, 16, 9, generator=generator).to(DEVICE).requires_grad_()
    weights = torch.randn(2, 4, 9, generator=generator).to(DEVICE)
    grads = torch.autograd.grad((kernels.gated_tanh(in_act, cond, 4, 8, backend="triton") * weights).sum(),
                                (in_act, cond))
    expected = torch.autograd.grad((reference.gated_tanh(in_act, cond, 4, 8) * weights).sum(), (in_act, cond))
    for grad, reference_grad in zip(grads, expected):
        torch.testing.assert_close(grad, reference_grad, atol=1e-6, rtol=1e-5)


@_interpreted
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("channels, swap, batch, n_steps", [(8, False, 2, 37), (6, True, 1, 600), (4, False, 3, 1),
                                                           (2, True, 2, 5)])
def test_flow_kernel_interpreted(generator, dtype, channels, swap, batch, n_steps):
    pytest.importorskip("triton")
    audio = torch.randn(batch, channels, n_steps, generator=generator).to(DEVICE, dtype)
    coupling = (0.3 * torch.randn(batch, channels, n_steps, generator=generator)).to(DEVICE, dtype)
    weight_inverse = torch.linalg.inv(torch.linalg.qr(torch.randn(channels, channels, generator=generator))[0])
    out = kernels.inverse_flow_step(audio, coupling, weight_inverse.to(DEVICE), swap, backend="triton")
    expected = reference.inverse_flow_step(audio, coupling, weight_inverse.to(DEVICE), swap)
    assert out.shape == audio.shape and out.dtype == dtype
    tolerance = FLOW_TOLERANCE[dtype]
    torch.testing.assert_close(out, expected, atol=tolerance, rtol=tolerance)
    truth = reference.inverse_flow_step(audio.double(), coupling.double(), weight_inverse.double().to(DEVICE), swap)
    torch.testing.assert_close(out.double(), truth, atol=tolerance, rtol=tolerance)


@_interpreted
@pytest.mark.parametrize("alternate_halves", [False, True])
def test_waveglow_inverse_with_triton_kernels_matches_the_reference_interpreted(generator, monkeypatch,
                                                                                  alternate_halves):
    pytest.importorskip("triton")
    model = _model(generator, alternate_halves=alternate_halves).to(DEVICE).prepare_for_inference(fast=False)
    mel, z = _inputs(model, generator, 2, 3)
    mel, z = mel.to(DEVICE), z.to(DEVICE)
    with torch.no_grad():
        monkeypatch.setenv("VOXFLOW_KERNELS", "reference")
        expected = model.inverse(mel, z)
        monkeypatch.setenv("VOXFLOW_KERNELS", "triton")
        assert kernels.resolve_backend("gated_tanh", "auto", z) == "triton"
        assert kernels.resolve_backend("inverse_flow_step", "auto", z) == "triton"
        audio = model.inverse(mel, z)
    torch.testing.assert_close(audio, expected, atol=1e-5, rtol=1e-5)
