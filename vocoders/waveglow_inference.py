"""WaveGlow inference helpers: the CPU fast path (inference plans), the cache base class, chunked inversion.

`WaveGlow.prepare_for_inference(fast=True)` (the default) builds, on CPU, one `CouplingPlan` per
flow and an `UpsamplePlan`: explicit inference caches (`InferenceCache`: dropped by `train()`,
`load_state_dict` and any `.to()`), used for CPU tensors of the plan's dtype when autograd is off and
`VOXFLOW_KERNELS` does not force a kernel backend; otherwise the plain PyTorch path (the reference)
runs. A plan computes the same function as the code it replaces — `CouplingNet.forward`:
(batch, in_channels, n_steps) + cond (batch, cond_channels, n_steps) → (batch, 2·in_channels,
n_steps); `WaveGlow._condition` at inference: mel → cond — rearranged for CPU, where the 1×1 and
dilated convs are GEMMs and every extra memory pass shows (`benchmarks/vocoder.py`,
docs/benchmarks.md):

- Time-major GEMMs: each 1×1 conv is one `addmm` on (n_steps, channels) matrices, and the dilated
  conv is one `addmm_` per tap on row-shifted views (zero padding = the rows a tap does not reach),
  all accumulating in place into the layer's conditioning output (its own GEMM, a contiguous
  (n_steps, 2·channels) buffer: 7 % faster than slicing one fused output for the published size),
  so the reference's `in_act + cond` pass and its temporary disappear.
- The `end` conv is linear, so it is folded into each layer's skip weights (end·skip_i: 2·in_channels
  rows instead of `channels`), and each layer's residual and skip outputs come from one GEMM into one
  state buffer [audio | end output]: no skip sum, no per-layer adds.
- The upsampler + squeeze are one GEMM and J row-shifted adds (`UpsamplePlan`), which also leaves
  cond time-major and contiguous, the layout the coupling GEMMs read fastest.
- Biases are folded, so no pass adds one: the skip and `end` biases into one constant; the residual
  biases (and `start`'s) ride on the audio stream as a constant B_i, whose effect through layer i's
  zero-padded dilated conv is a constant minus an edge correction on the first or last `dilation`
  rows of each side tap; that constant, the dilated and the conditioning biases enter the middle
  tap's GEMM as one extra weight row against a column of ones kept in the state buffer.

All of it is exact in real arithmetic; in float32 only the summation order changes (tested against
the reference at 1e-5 on the full inverse, tests/vocoders/test_kernels.py).
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from vocoders.waveglow import CouplingNet, WaveGlow

__all__ = ["CouplingPlan", "InferenceCache", "UpsamplePlan", "inverse_chunked"]

_log = logging.getLogger(__name__)
_logged = False


class InferenceCache(nn.Module):
    """A module with explicit inference caches (the attributes in `_caches`), dropped by `train()`,
    `load_state_dict` and any `.to()` / dtype change."""

    _caches: tuple[str, ...] = ()

    def _drop_caches(self) -> None:
        for name in self._caches:
            setattr(self, name, None)

    def train(self, mode: bool = True):
        if mode:
            self._drop_caches()
        return super().train(mode)

    def _apply(self, fn, recurse: bool = True):
        self._drop_caches()
        return super()._apply(fn, recurse)

    def _load_from_state_dict(self, *args) -> None:
        self._drop_caches()
        super()._load_from_state_dict(*args)


class _LayerPlan:
    """One WaveNet layer, time-major: per tap its weight (c, 2c) — the middle tap's with the layer's
    folded bias as an extra first row (1 + c, 2c), read against the ones column — its row shift and
    edge correction (2c,), and the output weight (c, [c +] n_out)."""

    def __init__(self, taps: list, shifts: list[int], edges: list, out_weight: torch.Tensor, last: bool) -> None:
        self.taps, self.shifts, self.edges, self.out_weight, self.last = taps, shifts, edges, out_weight, last


class CouplingPlan:
    """The time-major, bias-folded form of one `CouplingNet`; see the module docstring."""

    def __init__(self, coupling: "CouplingNet") -> None:
        with torch.no_grad():
            self._build(coupling)

    def _build(self, coupling: "CouplingNet") -> None:
        c = self.channels = coupling.channels
        end_weight, end_bias = coupling.end.weight[:, :, 0].detach(), coupling.end.bias.detach()  # (n_out, c)
        self.n_out, self.dtype = end_weight.shape[0], end_weight.dtype
        self.start_weight = coupling.start.effective_weight()[:, :, 0].detach().T  # (in, c)
        self.cond_weight = coupling.cond.effective_weight()[:, :, 0].detach().T  # (cond_channels, 2c·n_layers)
        offset = coupling.start.bias.detach().clone()  # B_i: the constant the audio stream carries
        self.out_bias, self.layers = end_bias.clone(), []
        for i, layer in enumerate(coupling.layers):
            last = i == len(coupling.layers) - 1
            weight = layer.dilated.effective_weight().detach()  # (2c, c, n_taps)
            n_taps, dilation, middle = weight.shape[-1], layer.dilated.dilation[0], weight.shape[-1] // 2
            taps = list(weight.permute(2, 1, 0))  # n_taps × (c, 2c)
            edges = [tap.T @ offset for tap in taps]  # each tap's response to the constant B_i
            bias = (coupling.cond.bias.detach()[2 * c * i:2 * c * (i + 1)] + layer.dilated.bias.detach()
                    + sum(edges))
            taps[middle] = torch.cat([bias[None], taps[middle]])  # (1 + c, 2c)
            taps = [tap.contiguous() for tap in taps]
            res_skip = layer.res_skip.effective_weight()[:, :, 0].detach()  # ([c +] c, c)
            res_skip_bias = layer.res_skip.bias.detach()
            skip_out = (end_weight @ res_skip[-c:]).T  # (c, n_out): end ∘ skip
            self.out_bias += end_weight @ res_skip_bias[-c:]
            out_weight = skip_out.contiguous() if last else torch.cat([res_skip[:c].T, skip_out], 1).contiguous()
            if not last:
                offset = offset + res_skip_bias[:c]
            shifts = [(k - middle) * dilation for k in range(n_taps)]
            self.layers.append(_LayerPlan(taps, shifts, edges, out_weight, last))
        self.halo = sum(max(layer.shifts) for layer in self.layers)  # receptive field, each side

    def accepts(self, audio: torch.Tensor) -> bool:
        """Whether `forward` may use this plan: CPU, the plan's dtype, no autograd, no override."""
        return _fast_path_allowed(audio, self.dtype)

    def __call__(self, audio: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """(batch, in, n_steps), (batch, cond_channels, n_steps) → (batch, n_out, n_steps)."""
        # Items run one at a time: the row shifts must not cross from one item into the next.
        return torch.stack([self._item(audio[b].T, cond[b].T).T for b in range(audio.shape[0])])

    # Long inputs run in blocks of this many steps plus the receptive field (`halo`) each side, so a
    # layer's buffers stay in cache: `small`, 10 s, 1 thread: 1.18× → 1.45× the reference. Only where
    # the halo is small (`small`: 15 steps; the published size's 255 would add 25 % work to GEMMs
    # that are compute-bound anyway), and on one thread: blocks multiply the parallel regions, and
    # on a shared 2-core machine each costs a scheduler slice (2 threads, same case: 0.24×).
    block_steps = 2048

    def _item(self, audio: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        n_steps, block = audio.shape[0], self.block_steps
        if 8 * self.halo > block or n_steps <= block + 2 * self.halo or torch.get_num_threads() > 1:
            return self._segment(audio, cond)
        out = audio.new_empty(n_steps, self.n_out)
        for start in range(0, n_steps, block):
            end = min(start + block, n_steps)
            low, high = max(0, start - self.halo), min(n_steps, end + self.halo)
            # Rows within `halo` of a cut read rows beyond it (there: the zero padding and its edge
            # correction), so they are wrong; the kept rows [start, end) are exact.
            out[start:end] = self._segment(audio[low:high], cond[low:high])[start - low:end - low]
        return out

    def _segment(self, audio: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """audio (n_steps, in), cond (n_steps, cond_channels), time-major views → (n_steps, n_out)."""
        c, n_steps = self.channels, audio.shape[0]
        state = torch.empty(n_steps, 1 + c + self.n_out, dtype=audio.dtype)  # [ones | audio stream | end output]
        state[:, 0] = 1.0
        state[:, 1:1 + c] = audio @ self.start_weight  # start's bias rides in the folded constants
        state[:, 1 + c:] = self.out_bias
        stream = state[:, 1:1 + c]
        for i, layer in enumerate(self.layers):
            # (n_steps, 2c): this layer's conditioning, one GEMM per layer so it stays contiguous
            pre = torch.mm(cond, self.cond_weight[:, 2 * c * i:2 * c * (i + 1)])  # biases come in with the ones
            for tap, shift, edge in zip(layer.taps, layer.shifts, layer.edges):
                # pre[t] += tap · stream[t + shift]; rows whose t + shift falls outside see zero padding,
                # so they also lose this tap's share of the folded constant (the edge correction).
                if shift == 0:
                    pre.addmm_(state[:, :1 + c], tap)  # with the ones column: + the layer's bias
                elif shift < 0:
                    pre[-shift:].addmm_(stream[:shift], tap)
                    pre[:-shift].sub_(edge)
                else:
                    pre[:-shift].addmm_(stream[shift:], tap)
                    pre[max(n_steps - shift, 0):].sub_(edge)
            acts = torch.tanh(pre[:, :c])
            acts.mul_(torch.sigmoid_(pre[:, c:]))
            state[:, (1 + c if layer.last else 1):].addmm_(acts, layer.out_weight)
        return state[:, 1 + c:]


def _fast_path_allowed(tensor: torch.Tensor, dtype: torch.dtype) -> bool:
    """CPU, the plan's dtype, no autograd, and VOXFLOW_KERNELS not forcing a kernel backend."""
    if tensor.device.type != "cpu" or tensor.dtype != dtype or torch.is_grad_enabled():
        return False
    if os.environ.get("VOXFLOW_KERNELS") in ("reference", "triton"):  # a forced kernel backend: plain path
        return False
    global _logged
    if not _logged:
        _logged = True
        _log.info("WaveGlow: time-major CPU inference plans (vocoders.waveglow_inference)")
    return True


class UpsamplePlan:
    """The mel upsampler (ConvTranspose1d, stride = hop, kernel = J·hop) and the squeeze as one GEMM.

    mel (batch, n_mels, n_frames) → cond (batch, n_mels · n_group, n_frames · hop / n_group), returned
    as a transposed view of a time-major (batch, n_steps, n_mels · n_group) tensor (what the coupling
    plans read). Each frame's kernel-long output block is one row of mel^T · W, with W's columns
    ordered (block j, step q, mel bin, offset g) so that the overlap-add of the J hop-long blocks is J
    shifted row adds and the result is already squeezed. The reference's transposed conv takes
    ~200 ms per second of audio here (torch's slow path: batched oneDNN re-plans per shape).
    Only for the inference crop (n_frames · hop samples).
    """

    def __init__(self, upsample: nn.ConvTranspose1d, n_group: int) -> None:
        n_mels, _, kernel = upsample.weight.shape
        self.hop, self.dtype = upsample.stride[0], upsample.weight.dtype
        self.n_blocks = -(-kernel // self.hop)  # a kernel that is not a multiple of the hop gets zero taps
        steps = self.hop // n_group  # the config guarantees hop % n_group == 0
        with torch.no_grad():
            weight = torch.nn.functional.pad(upsample.weight.detach(), (0, self.n_blocks * self.hop - kernel))
            # (in, out, kernel) with kernel = (j, q, g) → (in, j · q · out · g)
            weight = weight.reshape(n_mels, n_mels, self.n_blocks, steps, n_group)
            self.weight = weight.permute(0, 2, 3, 1, 4).reshape(n_mels, -1).contiguous()
            self.bias_row = upsample.bias.detach().repeat_interleave(n_group).repeat(steps)  # (q · out · g,)
        self.channels = n_mels * n_group

    def accepts(self, mel: torch.Tensor, n_samples: int) -> bool:
        return mel.shape[-1] * self.hop == n_samples and _fast_path_allowed(mel, self.dtype)

    def __call__(self, mel: torch.Tensor) -> torch.Tensor:
        batch, _, n_frames = mel.shape
        blocks = (mel.transpose(1, 2) @ self.weight).view(batch, n_frames, self.n_blocks, -1)  # (b, f, j, q·out·g)
        rows = self.bias_row.expand(batch, n_frames + self.n_blocks - 1, -1).clone()  # hop-long rows
        for j in range(self.n_blocks):  # block j of frame f lands on hop row f + j
            rows[:, j:j + n_frames] += blocks[:, :, j]
        # Crop to n_frames hops (NVIDIA crops kernel − stride at inference): (b, n_steps, n_mels · n_group)
        return rows[:, :n_frames].reshape(batch, -1, self.channels).transpose(1, 2)


def inverse_chunked(model: "WaveGlow", mel: torch.Tensor, z: torch.Tensor, chunk: int, overlap: int) -> torch.Tensor:
    """`model.inverse` over chunks of `chunk` frames with `overlap` frames of context, crossfaded."""
    n_frames, hop = mel.shape[-1], model.config.audio.hop_length
    steps = hop // model.config.n_group  # z steps per mel frame
    fade = (overlap // 2) * hop  # half-width of each crossfade, in samples
    audio = mel.new_zeros(mel.shape[0], n_frames * hop)
    for start in range(0, n_frames, chunk):
        end = min(start + chunk, n_frames)
        low, high = max(0, start - overlap), min(n_frames, end + overlap)
        piece = model.inverse(mel[..., low:high], z[..., low * steps:high * steps])
        first, last = max(0, start * hop - fade), min(n_frames * hop, end * hop + fade)
        position = torch.arange(first, last, device=mel.device, dtype=torch.float32) + 0.5
        weight = torch.ones_like(position)
        if fade and start > 0:  # linear ramps; the two at a boundary sum to 1
            weight = weight * ((position - start * hop + fade) / (2 * fade)).clamp(0, 1)
        if fade and end < n_frames:
            weight = weight * ((end * hop + fade - position) / (2 * fade)).clamp(0, 1)
        audio[:, first:last] += piece[:, first - low * hop:last - low * hop] * weight.to(audio.dtype)
    return audio
