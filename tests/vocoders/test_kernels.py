"""WaveGlow kernels: dispatcher rules, the CPU inference plan, and the Triton kernels against the reference.

The Triton kernels themselves are checked in `triton_kernel_checks.py`, which pytest does not
collect here: it needs TRITON_INTERPRET=1 set before triton decorates the kernels (on CPU), and the
interpreter slows every later `@triton.jit` import in the process. So
`test_triton_kernels_against_the_reference` runs that module in one subprocess: under the
interpreter on CPU, directly on CUDA tensors where a GPU is present.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vocoders import kernels
from vocoders.kernels import reference
from vocoders.waveglow_inference import CouplingPlan



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
def test_the_cpu_plan_matches_the_reference_inverse(kernel_waveglow, waveglow_inputs, monkeypatch, changes, batch,
                                                    n_frames):
    model = kernel_waveglow(**changes)
    mel, z = waveglow_inputs(model, batch, n_frames)
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


def test_the_cpu_plan_in_time_blocks_matches_the_whole(kernel_waveglow, waveglow_inputs, monkeypatch):
    model = kernel_waveglow(wn_layers=3).prepare_for_inference()  # halo 1 + 2 + 4 = 7 steps
    mel, z = waveglow_inputs(model, 1, 4)  # 128 steps
    with torch.no_grad():
        whole = model.inverse(mel, z)
        monkeypatch.setattr(CouplingPlan, "block_steps", 56)  # blocks of 56 (the last 16) + 7 each side
        blocked = model.inverse(mel, z)
    torch.testing.assert_close(blocked, whole, atol=1e-6, rtol=1e-6)


def test_the_cpu_plan_is_an_explicit_cache(kernel_waveglow, monkeypatch):
    model = kernel_waveglow().prepare_for_inference()
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


# --- Triton kernels against the reference (one subprocess: the interpreter on CPU, or CUDA) -----------

@pytest.mark.slow  # ~10 s: one subprocess that imports torch and triton and interprets ~40 launches
def test_triton_kernels_against_the_reference():
    import triton  # noqa: F401  (the dev extra installs it; without it the kernels cannot be checked)

    root = Path(__file__).resolve().parents[2]
    checks = Path(__file__).with_name("triton_kernel_checks.py").relative_to(root)
    env = {**os.environ, "VOXFLOW_KERNELS": ""}
    if not torch.cuda.is_available():
        env["TRITON_INTERPRET"] = "1"
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(checks)],
                            cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout, result.stdout[-2000:]
