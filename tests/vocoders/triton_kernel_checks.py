"""Triton kernels against the reference: run by `test_kernels.py::test_triton_kernels_against_the_reference`
in a subprocess, with TRITON_INTERPRET=1 on CPU (set before triton decorates the kernels) or directly
on CUDA tensors where a GPU is present. Not named test_*.py, so the main test run does not collect it.

Per-dtype tolerances (also in each kernel's docstring): the kernels compute in float32 and round once
at the store; the reference rounds every intermediate to the dtype. float32: ~1e-7 differences from
the tanh identity and summation order; float16 (ε = 2⁻¹⁰) and bfloat16 (ε = 2⁻⁷): a few ulps of the
reference's values (the interpreter's bfloat16 store seems to truncate: up to 1 ulp where a GPU
rounds to 0.5). The kernel must be within the dtype's tolerance of both the reference and the
float64 result.
"""

from __future__ import annotations

import os

import pytest
import torch
import triton  # noqa: F401  (this module checks the Triton kernels: it needs triton)

from vocoders import kernels
from vocoders.kernels import reference

INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"
if not INTERPRETED and not torch.cuda.is_available():
    raise RuntimeError("run these checks with TRITON_INTERPRET=1 on CPU (see test_kernels.py), or on a GPU")
DEVICE = "cpu" if INTERPRETED else "cuda"
GATE_TOLERANCE = {torch.float32: 1e-5, torch.float16: 4e-3, torch.bfloat16: 3e-2}
FLOW_TOLERANCE = {torch.float32: 1e-5, torch.float16: 1e-2, torch.bfloat16: 5e-2}
DTYPES = list(GATE_TOLERANCE)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("batch, n_steps, offset", [(1, 37, 0), (3, 1, 8), (2, 1100, 16)])
def test_gate_kernel(generator, dtype, batch, n_steps, offset):
    in_act = torch.randn(batch, 8, n_steps, generator=generator).to(DEVICE, dtype)
    cond = torch.randn(batch, 24, n_steps, generator=generator).to(DEVICE, dtype)  # a 3-layer fused cond
    out = kernels.gated_tanh(in_act, cond, 4, offset, backend="triton")
    expected = reference.gated_tanh(in_act, cond, 4, offset)
    assert out.shape == (batch, 4, n_steps) and out.dtype == dtype
    tolerance = GATE_TOLERANCE[dtype]
    torch.testing.assert_close(out, expected, atol=tolerance, rtol=tolerance)
    truth = reference.gated_tanh(in_act.double(), cond.double(), 4, offset)
    torch.testing.assert_close(out.double(), truth, atol=tolerance, rtol=tolerance)


def test_gate_kernel_backward_recomputes_through_the_reference(generator):
    in_act = torch.randn(2, 8, 9, generator=generator).to(DEVICE).requires_grad_()
    cond = torch.randn(2, 16, 9, generator=generator).to(DEVICE).requires_grad_()
    weights = torch.randn(2, 4, 9, generator=generator).to(DEVICE)
    grads = torch.autograd.grad((kernels.gated_tanh(in_act, cond, 4, 8, backend="triton") * weights).sum(),
                                (in_act, cond))
    expected = torch.autograd.grad((reference.gated_tanh(in_act, cond, 4, 8) * weights).sum(), (in_act, cond))
    for grad, reference_grad in zip(grads, expected):
        torch.testing.assert_close(grad, reference_grad, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("channels, swap, batch, n_steps", [(8, False, 2, 37), (6, True, 1, 600), (4, False, 3, 1),
                                                           (2, True, 2, 5)])
def test_flow_kernel(generator, dtype, channels, swap, batch, n_steps):
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


@pytest.mark.parametrize("alternate_halves", [False, True])
def test_waveglow_inverse_with_triton_kernels_matches_the_reference(kernel_waveglow, waveglow_inputs, monkeypatch,
                                                                     alternate_halves):
    model = kernel_waveglow(alternate_halves=alternate_halves).to(DEVICE).prepare_for_inference(fast=False)
    mel, z = waveglow_inputs(model, 2, 3)
    mel, z = mel.to(DEVICE), z.to(DEVICE)
    with torch.no_grad():
        monkeypatch.setenv("VOXFLOW_KERNELS", "reference")
        expected = model.inverse(mel, z)
        monkeypatch.setenv("VOXFLOW_KERNELS", "triton")
        assert kernels.resolve_backend("gated_tanh", "auto", z) == "triton"
        assert kernels.resolve_backend("inverse_flow_step", "auto", z) == "triton"
        audio = model.inverse(mel, z)
    torch.testing.assert_close(audio, expected, atol=1e-5, rtol=1e-5)
