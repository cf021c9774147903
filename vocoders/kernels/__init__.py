"""Kernel dispatchers for WaveGlow: model code calls only these, never a backend directly.

`backend` is "auto", "reference" or "triton":
- "auto" picks Triton only for CUDA tensors when `triton` imports (lazily, inside the first call)
  and the kernel has a Triton version (`gated_tanh`: `triton_gate`, `inverse_flow_step`:
  `triton_flow`; the 1×1 conv forward/inverse have none and always run the reference).
- "triton" forced needs an importable `triton` and either a CUDA tensor or, for CPU tensors, the
  kernel module imported under TRITON_INTERPRET=1 (Triton reads it when the kernels are decorated,
  so it must be set before the first call); otherwise NotImplementedError says why.
- `VOXFLOW_KERNELS=reference|triton` overrides "auto" for debugging (it also turns off the WaveGlow
  CPU plan, `vocoders.waveglow_inference`, so "reference" means the plain PyTorch path everywhere).
The backend in use is logged once per kernel; nothing about it is stored in checkpoints. With
autograd on, a Triton forward is wrapped in an autograd.Function whose backward recomputes through
the reference (`vocoders.kernels.reference`), so training may use the fused gate.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os

import torch

from vocoders.kernels import reference

__all__ = ["gated_tanh", "invertible_conv1x1", "invertible_conv1x1_inverse", "inverse_flow_step",
           "resolve_backend", "BACKENDS"]

BACKENDS = ("auto", "reference", "triton")
_TRITON_MODULES = {"gated_tanh": "vocoders.kernels.triton_gate",
                   "inverse_flow_step": "vocoders.kernels.triton_flow"}
_logged: set[tuple[str, str]] = set()
_log = logging.getLogger(__name__)


def resolve_backend(kernel: str, backend: str, tensor: torch.Tensor) -> str:
    """The backend that will run `kernel` on `tensor`: "reference" or "triton"."""
    if backend not in BACKENDS:
        raise ValueError(f"kernel backend: expected one of {list(BACKENDS)}, found {backend!r}")
    if backend == "auto":
        backend = os.environ.get("VOXFLOW_KERNELS", "auto") or "auto"
        if backend not in BACKENDS:
            raise ValueError(f"VOXFLOW_KERNELS: expected one of {list(BACKENDS)}, found {backend!r}")
        if backend == "auto":
            backend = "triton" if tensor.is_cuda and _triton_module(kernel) is not None else "reference"
    if backend == "triton":
        module = _triton_module(kernel)
        if module is None:
            raise NotImplementedError(f"no usable Triton kernel for {kernel} (triton is not installed, or this "
                                      f"kernel has no Triton version); use backend='reference'")
        if not tensor.is_cuda and not (tensor.device.type == "cpu" and module.INTERPRETED):
            raise NotImplementedError(f"the Triton kernel for {kernel} needs a CUDA tensor, found one on "
                                      f"{tensor.device} (on CPU only under TRITON_INTERPRET=1, set before the "
                                      f"first kernel call); use backend='reference'")
    if (kernel, backend) not in _logged:
        _logged.add((kernel, backend))
        _log.info("vocoder kernel %s: %s backend", kernel, backend)
    return backend


@functools.lru_cache(maxsize=None)
def _triton_module(kernel: str):
    # Imported lazily (CPU-only installs never import triton) and once: a failed import is not retried.
    if kernel not in _TRITON_MODULES:
        return None
    try:
        importlib.import_module("triton")
        return importlib.import_module(_TRITON_MODULES[kernel])
    except ImportError:
        return None


class _Fused(torch.autograd.Function):
    """A Triton forward; the backward recomputes the reference function and differentiates it."""

    @staticmethod
    def forward(ctx, kernel, reference_fn, options, *tensors):
        ctx.reference_fn, ctx.options = reference_fn, options
        ctx.save_for_backward(*tensors)
        return kernel(*tensors, **options)

    @staticmethod
    def backward(ctx, grad):
        needs = ctx.needs_input_grad[3:]
        inputs = [tensor.detach().requires_grad_(need) for tensor, need in zip(ctx.saved_tensors, needs)]
        with torch.enable_grad():
            output = ctx.reference_fn(*inputs, **ctx.options)
        wanted = [tensor for tensor in inputs if tensor.requires_grad]
        grads = iter(torch.autograd.grad(output, wanted, grad) if wanted else ())
        return (None, None, None, *(next(grads) if need else None for need in needs))


def _run_triton(kernel: str, reference_fn, options: dict, *tensors: torch.Tensor) -> torch.Tensor:
    function = getattr(_triton_module(kernel), kernel)
    if torch.is_grad_enabled() and any(tensor.requires_grad for tensor in tensors):
        return _Fused.apply(function, reference_fn, options, *tensors)
    return function(*tensors, **options)


def gated_tanh(in_act: torch.Tensor, cond: torch.Tensor, n_channels: int, cond_offset: int = 0,
               backend: str = "auto") -> torch.Tensor:
    """tanh(x[:, :n]) · sigmoid(x[:, n:]), x = in_act + cond[:, cond_offset:cond_offset + 2n]:
    in_act (batch, 2n, n_steps), cond (batch, ≥ cond_offset + 2n, n_steps) → (batch, n, n_steps)."""
    options = {"n_channels": n_channels, "cond_offset": cond_offset}
    if resolve_backend("gated_tanh", backend, in_act) == "triton":
        return _run_triton("gated_tanh", reference.gated_tanh, options, in_act, cond)
    return reference.gated_tanh(in_act, cond, **options)


def inverse_flow_step(audio: torch.Tensor, coupling: torch.Tensor, weight_inverse: torch.Tensor, swap: bool,
                      backend: str = "auto") -> torch.Tensor:
    """One flow inverted: the coupling inverse (changed − shift) / exp(log_s), re-concatenation and
    W⁻¹: audio, coupling (batch, c, n_steps), weight_inverse (c, c) → (batch, c, n_steps)."""
    if resolve_backend("inverse_flow_step", backend, audio) == "triton":
        return _run_triton("inverse_flow_step", reference.inverse_flow_step, {"swap": bool(swap)},
                           audio, coupling, weight_inverse)
    return reference.inverse_flow_step(audio, coupling, weight_inverse, swap)


def invertible_conv1x1(audio: torch.Tensor, weight: torch.Tensor,
                       backend: str = "auto") -> tuple[torch.Tensor, torch.Tensor]:
    """W·x over channels and batch · n_steps · log|det W|: (batch, c, n_steps), (c, c) → same, scalar."""
    resolve_backend("invertible_conv1x1", backend, audio)  # no Triton version: "triton" raises
    return reference.invertible_conv1x1(audio, weight)


def invertible_conv1x1_inverse(audio: torch.Tensor, weight_inverse: torch.Tensor,
                               backend: str = "auto") -> torch.Tensor:
    """W⁻¹·z over channels, given the cached float32 inverse: (batch, c, n_steps) → same."""
    resolve_backend("invertible_conv1x1_inverse", backend, audio)
    return reference.invertible_conv1x1_inverse(audio, weight_inverse)
