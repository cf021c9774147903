"""Triton kernel: one WaveGlow flow inverted (affine coupling inverse + inverse 1×1 conv) in one pass.

Maths, per item b and time step t, with c channels (≤ 8), h = c / 2 and (shift, log_s) the two
halves of the coupling net's output:
    x_j = (audio_j − shift_{j'}) / exp(log_s_{j'})   for the changed half (j' = j − h, or j if swap),
    x_j = audio_j                                    for the kept half,
    out_i = Σ_j W⁻¹_ij · x_j.
The re-concatenation [kept, changed] (or [changed, kept] with `swap`) keeps every channel where it
was, so it costs nothing: each program loads its block of c audio rows and h + h coupling rows once,
accumulates the c×c product in registers and writes c rows — one pass instead of the reference's
chunk/sub/exp/div/cat/conv (6 passes and 3 temporaries). Arithmetic is float32 with the float32
W⁻¹ (NVIDIA: "inverse only exists on fp32+ data"); one rounding at the store. Inference only: the
dispatcher wraps it in an autograd.Function whose backward recomputes through the reference.

Must match `vocoders.kernels.reference.inverse_flow_step(audio, coupling, weight_inverse, swap)`.
Tolerances (tests/vocoders/test_kernels.py): float32 atol 1e-5 / rtol 1e-5 (order of the c-term sum
and exp-then-divide); float16 atol/rtol 1e-2 and bfloat16 5e-2 (the reference rounds the
difference, exp, quotient and the product with a rounded W⁻¹ to the dtype; the kernel rounds once).

Benchmark: `python benchmarks/vocoder.py` (CUDA rows "triton" vs "reference"). On CPU it runs only
under TRITON_INTERPRET=1 (tests), never for speed.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

__all__ = ["inverse_flow_step", "INTERPRETED"]

_BLOCK = 512


@triton.jit
def _inverse_flow_kernel(audio_ptr, coupling_ptr, weight_ptr, out_ptr, n_steps,
                         audio_stride_b, audio_stride_c, audio_stride_t,
                         coupling_stride_b, coupling_stride_c, coupling_stride_t,
                         C: tl.constexpr, C_PAD: tl.constexpr, SWAP: tl.constexpr, BLOCK: tl.constexpr):
    HALF: tl.constexpr = C // 2
    batch = tl.program_id(0).to(tl.int64)
    steps = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = steps < n_steps
    rows = tl.arange(0, C_PAD)
    row_mask = rows < C
    audio_base = audio_ptr + batch * audio_stride_b + steps * audio_stride_t
    coupling_base = coupling_ptr + batch * coupling_stride_b + steps * coupling_stride_t
    acc = tl.zeros((C_PAD, BLOCK), dtype=tl.float32)
    for j in tl.static_range(C):
        x = tl.load(audio_base + j * audio_stride_c, mask=mask, other=0.0).to(tl.float32)
        if (j >= HALF) != SWAP:  # compile-time: channel j is in the changed half
            index = j % HALF  # its row in shift (and HALF + it in log_s)
            shift = tl.load(coupling_base + index * coupling_stride_c, mask=mask, other=0.0).to(tl.float32)
            log_s = tl.load(coupling_base + (HALF + index) * coupling_stride_c, mask=mask,
                            other=0.0).to(tl.float32)
            x = (x - shift) / tl.exp(log_s)
        column = tl.load(weight_ptr + rows * C + j, mask=row_mask, other=0.0)  # W⁻¹[:, j]
        acc += column[:, None] * x[None, :]
    out = out_ptr + batch * C * n_steps + rows[:, None] * n_steps + steps[None, :]
    tl.store(out, acc.to(out_ptr.dtype.element_ty), mask=row_mask[:, None] & mask[None, :])


# Interpreter mode is fixed when the decorator runs (TRITON_INTERPRET=1 at import time).
INTERPRETED = type(_inverse_flow_kernel).__name__ == "InterpretedFunction"


def inverse_flow_step(audio: torch.Tensor, coupling: torch.Tensor, weight_inverse: torch.Tensor,
                      swap: bool) -> torch.Tensor:
    """audio, coupling (batch, c, n_steps), weight_inverse (c, c) → (batch, c, n_steps), contiguous."""
    batch, channels, n_steps = audio.shape
    if coupling.shape != audio.shape or weight_inverse.shape != (channels, channels) or channels % 2:
        raise ValueError(f"inverse_flow_step: expected audio and coupling (batch, c, n_steps) with c even and "
                         f"weight_inverse (c, c), found {tuple(audio.shape)}, {tuple(coupling.shape)}, "
                         f"{tuple(weight_inverse.shape)}")
    weight = weight_inverse.to(device=audio.device, dtype=torch.float32).contiguous()
    out = torch.empty(batch, channels, n_steps, dtype=audio.dtype, device=audio.device)
    if out.numel():
        grid = (batch, triton.cdiv(n_steps, _BLOCK))
        _inverse_flow_kernel[grid](audio, coupling, weight, out, n_steps, *audio.stride(), *coupling.stride(),
                                   C=channels, C_PAD=triton.next_power_of_2(channels), SWAP=bool(swap),
                                   BLOCK=_BLOCK)
    return out
