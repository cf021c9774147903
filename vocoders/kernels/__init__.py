"""Kernel dispatchers for WaveGlow: model code calls only these, never a backend directly.

`backend` is "auto", "reference" or "triton". "auto" will pick Triton only for CUDA tensors when
`triton` imports and the fused kernel modules are present; until they land, "auto" always runs
the pure-PyTorch reference (`vocoders.kernels.reference`), and forcing "triton" raises
`NotImplementedError`. `VOXFLOW_KERNELS=reference|triton` overrides "auto" for debugging. The
backend in use is logged once per kernel; nothing about it is stored in checkpoints.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os

import torch

from vocoders.kernels import reference

__all__ = ["gated_tanh", "invertible_conv1x1", "invertible_conv1x1_inverse", "resolve_backend", "BACKENDS"]

BACKENDS = ("auto", "reference", "triton")
_TRITON_MODULES = {"gated_tanh": "vocoders.kernels.triton_gate",
                   "invertible_conv1x1": "vocoders.kernels.triton_conv1x1",
                   "invertible_conv1x1_inverse": "vocoders.kernels.triton_conv1x1"}
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
    if backend == "triton" and _triton_module(kernel) is None:
        raise NotImplementedError(f"the Triton kernel for {kernel} is not available (triton missing or the fused "
                                  f"kernels not built yet); use backend='reference'")
    if (kernel, backend) not in _logged:
        _logged.add((kernel, backend))
        _log.info("vocoder kernel %s: %s backend", kernel, backend)
    return backend


@functools.lru_cache(maxsize=None)
def _triton_module(kernel: str):
    # Imported lazily (CPU-only installs never import triton) and once: a failed import is not retried.
    try:
        importlib.import_module("triton")
        return importlib.import_module(_TRITON_MODULES[kernel])
    except ImportError:
        return None


def gated_tanh(in_act: torch.Tensor, cond: torch.Tensor, n_channels: int, backend: str = "auto") -> torch.Tensor:
    """tanh(x[:, :n]) · sigmoid(x[:, n:]), x = in_act + cond: (batch, 2n, n_steps) → (batch, n, n_steps)."""
    if resolve_backend("gated_tanh", backend, in_act) == "triton":
        return _triton_module("gated_tanh").gated_tanh(in_act, cond, n_channels)
    return reference.gated_tanh(in_act, cond, n_channels)


def invertible_conv1x1(audio: torch.Tensor, weight: torch.Tensor,
                       backend: str = "auto") -> tuple[torch.Tensor, torch.Tensor]:
    """W·x over channels and batch · n_steps · log|det W|: (batch, c, n_steps), (c, c) → same, scalar."""
    if resolve_backend("invertible_conv1x1", backend, audio) == "triton":
        return _triton_module("invertible_conv1x1").invertible_conv1x1(audio, weight)
    return reference.invertible_conv1x1(audio, weight)


def invertible_conv1x1_inverse(audio: torch.Tensor, weight_inverse: torch.Tensor,
                               backend: str = "auto") -> torch.Tensor:
    """W⁻¹·z over channels, given the cached float32 inverse: (batch, c, n_steps) → same."""
    if resolve_backend("invertible_conv1x1_inverse", backend, audio) == "triton":
        return _triton_module("invertible_conv1x1_inverse").invertible_conv1x1_inverse(audio, weight_inverse)
    return reference.invertible_conv1x1_inverse(audio, weight_inverse)
