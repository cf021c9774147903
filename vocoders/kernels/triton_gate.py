"""Triton kernel: WaveNet's gated activation with the conditioning slice and the add fused in.

Maths: out[b, i, t] = tanh(a) · sigmoid(g) with a = in_act[b, i, t] + cond[b, off + i, t] and
g = in_act[b, n + i, t] + cond[b, off + n + i, t], for i < n = n_channels and off = cond_offset:
the layer's slice of WaveGlow's fused conditioning conv is read in place (no slice copy, no
`in_act + cond` temporary), so one pass reads 4 rows and writes 1 instead of the reference's 5 passes.
tanh(a) = 2·sigmoid(2a) − 1. Arithmetic is float32 whatever the storage dtype; one rounding at the store.

Must match `vocoders.kernels.reference.gated_tanh(in_act, cond, n_channels, cond_offset)`.
Tolerances (tests/vocoders/test_kernels.py): float32 atol 1e-6 / rtol 1e-5 (the tanh identity is
~1e-7 absolute off near 0); float16 atol 4e-3 and bfloat16 atol 3e-2 (the reference rounds the sum,
tanh, sigmoid and product to the dtype, up to ~2 ulps at |x| < 4; the kernel rounds once).

Benchmark: `python benchmarks/vocoder.py` (CUDA rows "triton" vs "reference"; the kernel saves 4 of
the reference's 5 memory passes over (batch, 2·channels, n_steps) per WaveNet layer). On CPU it runs
only under TRITON_INTERPRET=1 (tests), never for speed.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

__all__ = ["gated_tanh", "INTERPRETED"]

_BLOCK = 1024


@triton.jit
def _gated_tanh_kernel(in_ptr, cond_ptr, out_ptr, n_channels, n_steps, cond_offset,
                       in_stride_b, in_stride_c, in_stride_t, cond_stride_b, cond_stride_c, cond_stride_t,
                       BLOCK: tl.constexpr):
    row = tl.program_id(0)  # batch · n_channels + channel
    batch = (row // n_channels).to(tl.int64)  # 64-bit offsets: cond can exceed 2³¹ elements
    channel = (row % n_channels).to(tl.int64)
    steps = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = steps < n_steps
    in_base = in_ptr + batch * in_stride_b + steps * in_stride_t
    cond_base = cond_ptr + batch * cond_stride_b + steps * cond_stride_t
    a = tl.load(in_base + channel * in_stride_c, mask=mask, other=0.0).to(tl.float32)
    g = tl.load(in_base + (channel + n_channels) * in_stride_c, mask=mask, other=0.0).to(tl.float32)
    a += tl.load(cond_base + (cond_offset + channel) * cond_stride_c, mask=mask, other=0.0).to(tl.float32)
    g += tl.load(cond_base + (cond_offset + channel + n_channels) * cond_stride_c, mask=mask,
                 other=0.0).to(tl.float32)
    out = (2.0 * tl.sigmoid(2.0 * a) - 1.0) * tl.sigmoid(g)
    tl.store(out_ptr + row.to(tl.int64) * n_steps + steps, out.to(out_ptr.dtype.element_ty), mask=mask)


# Triton picks interpreter mode when the decorator runs (TRITON_INTERPRET=1 at import time); only
# then can CPU tensors go through this kernel.
INTERPRETED = type(_gated_tanh_kernel).__name__ == "InterpretedFunction"


def gated_tanh(in_act: torch.Tensor, cond: torch.Tensor, n_channels: int, cond_offset: int = 0) -> torch.Tensor:
    """(batch, 2n, n_steps) + cond (batch, ≥ cond_offset + 2n, n_steps) → (batch, n, n_steps), contiguous."""
    batch, _, n_steps = in_act.shape
    if cond.shape[0] != batch or cond.shape[2] != n_steps or cond.shape[1] < cond_offset + 2 * n_channels:
        raise ValueError(f"gated_tanh: expected cond of shape ({batch}, >= {cond_offset + 2 * n_channels}, "
                         f"{n_steps}), found {tuple(cond.shape)}")
    out = torch.empty(batch, n_channels, n_steps, dtype=in_act.dtype, device=in_act.device)
    if out.numel():
        grid = (batch * n_channels, triton.cdiv(n_steps, _BLOCK))
        _gated_tanh_kernel[grid](in_act, cond, out, n_channels, n_steps, cond_offset, *in_act.stride(),
                                 *cond.stride(), BLOCK=_BLOCK)
    return out
