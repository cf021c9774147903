"""WaveGlow (Prenger et al., 2019) as NVIDIA built it: a flow between mel-conditioned audio and noise.

Shapes: mel (batch, n_mels, n_frames); audio (batch, n_samples) with n_samples = n_frames · hop_length
at inference; z (batch, n_group, n_samples / n_group).

- The mel is upsampled by a ConvTranspose1d (stride = hop_length) and "squeezed" with the audio
  into groups of n_group samples: audio → (batch, n_group, n_steps), mel → (batch, n_mels · n_group,
  n_steps) with channel = mel_bin · n_group + offset, as NVIDIA's `glow.py` arranges them.
- Each flow step is an invertible 1×1 convolution (`mix`) and an affine coupling whose shift and
  log-scale come from a non-causal WaveNet (`coupling`, NVIDIA's `WN`) fed the first half.
- Every `n_early_every` flows, `n_early_size` channels leave the flow early (paper §2.4).

`forward(audio, mel)`: training, x → z; `inverse(mel, z)`: z → audio; `infer(mel, sigma, generator)`
draws z in NVIDIA's order, optionally in chunks. NVIDIA's key names (`WN`, `convinv`, `cond_layer`)
are mapped by `vocoders.nvidia_to_ours` / `ours_to_nvidia`.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import torch
from torch import nn

from tts.audio import AudioConfig
from tts.config import Config
from tts.errors import ConfigError
from vocoders import kernels
from vocoders.kernels.reference import inverse_weight
from vocoders.waveglow_inference import CouplingPlan, InferenceCache, UpsamplePlan, inverse_chunked

__all__ = ["WaveGlowConfig", "WaveGlow", "WaveGlowOutput", "WaveGlowLoss"]


@dataclasses.dataclass(frozen=True)
class WaveGlowConfig(Config):
    """WaveGlow's dimensions. Defaults are NVIDIA's published 256-channel model (`config.json`).

    `alternate_halves` reproduces `glow_old.py` (Nov 2018 checkpoints), whose odd flows transform
    the first half instead of the second. The upsampler's stride is the audio hop length.
    """

    audio: AudioConfig = dataclasses.field(default_factory=AudioConfig)
    n_flows: int = 12
    n_group: int = 8
    n_early_every: int = 4
    n_early_size: int = 2
    wn_layers: int = 8
    wn_channels: int = 256
    wn_kernel_size: int = 3
    upsample_kernel_size: int = 1024
    alternate_halves: bool = False

    def __post_init__(self) -> None:
        for name in ("n_flows", "n_group", "n_early_every", "wn_layers", "wn_channels", "wn_kernel_size"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"waveglow.{name}: expected a positive number, found {getattr(self, name)}")
        if self.n_group % 2:
            raise ConfigError(f"waveglow.n_group: expected an even number, found {self.n_group}")
        if self.n_early_size < 0 or self.n_early_size % 2:
            raise ConfigError(f"waveglow.n_early_size: expected an even number >= 0, found {self.n_early_size}")
        if self.n_remaining_channels < 2:
            raise ConfigError(f"waveglow.n_early_size: expected the early outputs to leave >= 2 of the {self.n_group} "
                              f"channels, found {self.n_remaining_channels} left after {self.n_exits} early outputs "
                              f"of {self.n_early_size}")
        if self.wn_kernel_size % 2 == 0:
            raise ConfigError(f"waveglow.wn_kernel_size: expected an odd number, found {self.wn_kernel_size}")
        if self.audio.hop_length % self.n_group:
            raise ConfigError(f"waveglow: expected audio.hop_length (the upsampler stride) divisible by n_group "
                              f"{self.n_group}, found {self.audio.hop_length}")
        if self.upsample_kernel_size < self.audio.hop_length:
            raise ConfigError(f"waveglow.upsample_kernel_size: expected >= audio.hop_length {self.audio.hop_length}, "
                              f"found {self.upsample_kernel_size}")

    @property
    def n_exits(self) -> int:  # early outputs leave before flows n_early_every, 2·n_early_every, ...
        return (self.n_flows - 1) // self.n_early_every

    @property
    def n_remaining_channels(self) -> int:
        """Channels left in the flow after all early outputs (4 in NVIDIA's model)."""
        return self.n_group - self.n_exits * self.n_early_size

    def channels(self, flow: int) -> int:
        """Channels flowing through flow `flow` (8/6/4 for NVIDIA's flows 0-3/4-7/8-11)."""
        return self.n_group - (flow // self.n_early_every) * self.n_early_size

    @classmethod
    def preset(cls, name: str, audio: AudioConfig | None = None) -> "WaveGlowConfig":
        """`nvidia` (published 256 ch), `dle` (DLE/torch.hub 512 ch), `small`, `tiny` (tests)."""
        presets = {"nvidia": {}, "dle": {"wn_channels": 512},
                   "small": {"n_flows": 8, "wn_channels": 64, "wn_layers": 4},
                   "tiny": {"n_flows": 4, "n_early_every": 2, "wn_layers": 2, "wn_channels": 8}}
        if name not in presets:
            raise ConfigError(f"waveglow preset: expected one of {sorted(presets)}, found {name!r}")
        return cls(audio=audio or AudioConfig(), **presets[name])


class WaveGlowOutput(NamedTuple):
    """`forward`'s result; unpacks like NVIDIA's `(z, log_s_list, log_det_W_list)`."""

    z: torch.Tensor  # (batch, n_group, n_steps)
    log_s: list[torch.Tensor]  # per flow (batch, channels_k / 2, n_steps)
    log_det: list[torch.Tensor]  # per flow, a scalar: batch · n_steps · log|det W_k|


def _row_norm(weight: torch.Tensor) -> torch.Tensor:
    return weight.norm(dim=tuple(range(1, weight.dim())), keepdim=True)


class WeightNormConv1d(nn.Conv1d):
    """Conv1d with weight = g · v / ‖v‖ per output channel (torch's weight_norm, dim 0): parameters
    `weight_g` (out, 1, 1) and `weight_v` as NVIDIA stores them, until `remove_weight_norm()` folds
    them into `weight`. Loading accepts either form."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, dilation: int = 1) -> None:
        super().__init__(in_channels, out_channels, kernel_size, dilation=dilation,
                         padding=dilation * (kernel_size - 1) // 2)
        weight = self.weight.detach()
        del self.weight
        self.weight_g = nn.Parameter(_row_norm(weight))
        self.weight_v = nn.Parameter(weight.clone())

    @property
    def has_weight_norm(self) -> bool:
        return "weight_v" in self._parameters

    def effective_weight(self) -> torch.Tensor:
        if self.has_weight_norm:
            return self.weight_v * (self.weight_g / _row_norm(self.weight_v))
        return self.weight

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(input, self.effective_weight(), self.bias)

    def remove_weight_norm(self) -> None:
        if self.has_weight_norm:
            weight = self.effective_weight().detach()
            del self.weight_g, self.weight_v
            self.weight = nn.Parameter(weight)

    def _load_from_state_dict(self, state_dict, prefix, *args) -> None:
        if self.has_weight_norm and prefix + "weight" in state_dict:
            weight = state_dict.pop(prefix + "weight")
            state_dict[prefix + "weight_g"], state_dict[prefix + "weight_v"] = _row_norm(weight), weight
        elif not self.has_weight_norm and prefix + "weight_v" in state_dict:
            g, v = state_dict.pop(prefix + "weight_g", None), state_dict.pop(prefix + "weight_v")
            state_dict[prefix + "weight"] = v if g is None else v * (g / _row_norm(v))
        super()._load_from_state_dict(state_dict, prefix, *args)


class InvertibleConv1x1(InferenceCache):
    """Glow's invertible 1×1 conv over channels, initialised as a random rotation (det +1).

    The float32 inverse is cached by `prepare_for_inference()` and dropped by `train()`,
    `load_state_dict` and any `.to()` / dtype change; without a cache it is computed per call.
    """

    _caches = ("inverse_weight",)

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(channels, channels))
        self.inverse_weight: torch.Tensor | None = None
        if self.weight.device.type != "meta":
            rotation = torch.linalg.qr(torch.randn(channels, channels))[0]
            rotation[:, 0] *= torch.sign(torch.det(rotation))  # a rotation: det +1, not -1
            with torch.no_grad():
                self.weight.copy_(rotation)

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return kernels.invertible_conv1x1(audio, self.weight)

    def weight_inverse(self) -> torch.Tensor:
        """W⁻¹ in float32: the cached one, else computed now."""
        return self.inverse_weight if self.inverse_weight is not None else inverse_weight(self.weight)

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        return kernels.invertible_conv1x1_inverse(z, self.weight_inverse())

    def prepare_for_inference(self) -> None:
        self.inverse_weight = inverse_weight(self.weight)


class GatedLayer(nn.Module):
    """One WaveNet layer: dilated conv → gated tanh (+ conditioning) → residual/skip 1×1 conv."""

    def __init__(self, channels: int, kernel_size: int, dilation: int, last: bool) -> None:
        super().__init__()
        self.dilated = WeightNormConv1d(channels, 2 * channels, kernel_size, dilation)
        # The last layer has no residual output, only skip (NVIDIA: "last one is not necessary").
        self.res_skip = WeightNormConv1d(channels, channels if last else 2 * channels)


class CouplingNet(InferenceCache):
    """NVIDIA's `WN`: (batch, in_channels, n_steps) + cond → shift and log-scale (batch, 2·in_channels, n_steps).

    `plan`: the time-major CPU form (`vocoders.waveglow_inference.CouplingPlan`), an inference cache.
    """

    _caches = ("plan",)

    def __init__(self, in_channels: int, cond_channels: int, n_layers: int, channels: int, kernel_size: int) -> None:
        super().__init__()
        self.channels = channels
        self.start = WeightNormConv1d(in_channels, channels)
        # One fused conditioning conv for all layers; layer i reads channels [2c·i, 2c·(i+1)).
        self.cond = WeightNormConv1d(cond_channels, 2 * channels * n_layers)
        self.layers = nn.ModuleList(GatedLayer(channels, kernel_size, 2 ** i, i == n_layers - 1)
                                    for i in range(n_layers))
        self.end = nn.Conv1d(channels, 2 * in_channels, 1)
        # Zero-initialised so each coupling starts as the identity (NVIDIA: training stability).
        nn.init.zeros_(self.end.weight)
        nn.init.zeros_(self.end.bias)
        self.plan: CouplingPlan | None = None

    def forward(self, audio: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        if self.plan is not None and self.plan.accepts(audio):
            return self.plan(audio, cond)
        c = self.channels
        audio = self.start(audio)
        skip = torch.zeros_like(audio)
        cond = self.cond(cond)
        for i, layer in enumerate(self.layers):
            acts = kernels.gated_tanh(layer.dilated(audio), cond, c, 2 * c * i)  # cond channels [2c·i, 2c·(i+1))
            res_skip = layer.res_skip(acts)
            if i < len(self.layers) - 1:
                audio = audio + res_skip[:, :c]
                skip = skip + res_skip[:, c:]
            else:
                skip = skip + res_skip
        return self.end(skip)


class FlowStep(nn.Module):
    """One flow: `mix` (1×1 conv) then the affine coupling of one half, conditioned on the other."""

    def __init__(self, channels: int, cond_channels: int, config: WaveGlowConfig) -> None:
        super().__init__()
        self.mix = InvertibleConv1x1(channels)
        self.coupling = CouplingNet(channels // 2, cond_channels, config.wn_layers, config.wn_channels,
                                    config.wn_kernel_size)

    def forward(self, audio, cond, swap: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        audio, log_det = self.mix(audio)
        kept, changed = _halves(audio, swap)
        shift, log_s = self.coupling(kept, cond).chunk(2, dim=1)
        changed = torch.exp(log_s) * changed + shift
        return torch.cat([changed, kept] if swap else [kept, changed], dim=1), log_s, log_det

    def inverse(self, z: torch.Tensor, cond: torch.Tensor, swap: bool) -> torch.Tensor:
        # (changed − shift) / exp(log_s), re-concatenated, then W⁻¹: one fused step (kernels).
        return kernels.inverse_flow_step(z, self.coupling(_halves(z, swap)[0], cond), self.mix.weight_inverse(), swap)


def _halves(audio: torch.Tensor, swap: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(kept, changed): `glow.py` always keeps the first half; `glow_old` swaps on odd flows."""
    first, second = audio.chunk(2, dim=1)
    return (second, first) if swap else (first, second)


class WaveGlow(InferenceCache):
    """`WaveGlow(config)`: training `forward(audio, mel)`, synthesis `infer(mel, sigma, generator)`."""

    _caches = ("upsample_plan",)

    def __init__(self, config: WaveGlowConfig) -> None:
        super().__init__()
        self.config = config
        n_mels = config.audio.n_mels
        self.upsample = nn.ConvTranspose1d(n_mels, n_mels, config.upsample_kernel_size,
                                           stride=config.audio.hop_length)
        self.flows = nn.ModuleList(FlowStep(config.channels(k), n_mels * config.n_group, config)
                                   for k in range(config.n_flows))
        self.upsample_plan: UpsamplePlan | None = None

    def _exit_index(self, flow: int) -> int | None:
        """Which early output leaves just before flow `flow` (None if none does)."""
        every = self.config.n_early_every
        return flow // every - 1 if flow > 0 and flow % every == 0 else None

    def _swap(self, flow: int) -> bool:  # glow_old's odd flows transform the first half
        return self.config.alternate_halves and flow % 2 == 1

    def _condition(self, mel: torch.Tensor, n_samples: int) -> torch.Tensor:
        """Mel (batch, n_mels, n_frames) → squeezed cond (batch, n_mels · n_group, n_samples / n_group)."""
        if self.upsample_plan is not None and self.upsample_plan.accepts(mel, n_samples):
            return self.upsample_plan(mel)
        batch, n_mels, _ = mel.shape
        group = self.config.n_group
        # (batch, n_mels, (n_frames - 1) · hop + kernel), cropped as NVIDIA does: to the audio length
        # in training, and by kernel - stride at inference, which leaves exactly n_frames · hop.
        # One item at a time on CPU: batched, oneDNN builds a deconvolution per new shape (~1 s).
        cpu = mel.device.type == "cpu"
        upsampled = torch.cat([self.upsample(item) for item in mel.split(1)]) if cpu else self.upsample(mel)
        if upsampled.shape[-1] < n_samples:
            raise ValueError(f"expected a mel of at least {n_samples} samples' frames, found {mel.shape[-1]} frames")
        upsampled = upsampled[..., :n_samples].reshape(batch, n_mels, n_samples // group, group)
        # (batch, n_mels, n_steps, group) → (batch, n_mels · group, n_steps), channel = bin · group + offset
        return upsampled.transpose(2, 3).reshape(batch, n_mels * group, n_samples // group)

    def forward(self, audio: torch.Tensor, mel: torch.Tensor) -> WaveGlowOutput:
        """Training pass, audio (batch, n_samples) + mel → z, per-flow log_s and log_det."""
        batch, n_samples = audio.shape
        group = self.config.n_group
        if n_samples % group:
            raise ValueError(f"expected n_samples divisible by n_group {group}, found {n_samples}")
        cond = self._condition(mel, n_samples)
        # (batch, n_samples) → (batch, group, n_steps), channel = sample offset within its group
        audio = audio.reshape(batch, n_samples // group, group).transpose(1, 2)
        early, log_s_list, log_det_list = [], [], []
        for k, flow in enumerate(self.flows):
            if self._exit_index(k) is not None:
                early.append(audio[:, :self.config.n_early_size])
                audio = audio[:, self.config.n_early_size:]
            audio, log_s, log_det = flow(audio, cond, self._swap(k))
            log_s_list.append(log_s)
            log_det_list.append(log_det)
        return WaveGlowOutput(torch.cat([*early, audio], dim=1), log_s_list, log_det_list)

    def inverse(self, mel: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """z (batch, n_group, n_frames · hop / n_group), laid out as `forward` gives it → (batch, n_samples)."""
        batch, group, n_steps = z.shape
        cond = self._condition(mel, mel.shape[-1] * self.config.audio.hop_length)
        if group != self.config.n_group or n_steps != cond.shape[-1]:
            raise ValueError(f"expected z of shape {(batch, self.config.n_group, cond.shape[-1])}, found {z.shape}")
        size = self.config.n_early_size
        audio = z[:, group - self.config.n_remaining_channels:]
        for k in reversed(range(self.config.n_flows)):
            audio = self.flows[k].inverse(audio, cond, self._swap(k))
            exit_index = self._exit_index(k)
            if exit_index is not None:
                audio = torch.cat([z[:, exit_index * size:(exit_index + 1) * size], audio], dim=1)
        return audio.transpose(1, 2).reshape(batch, group * n_steps)

    def draw_noise(self, mel: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Unit noise shaped like z, drawn in NVIDIA's order (final channels, then each early output
        from the last to the first) in the mel's dtype, so a seed gives NVIDIA's `infer` noise."""
        batch, _, n_frames = mel.shape
        config = self.config
        n_steps = n_frames * config.audio.hop_length // config.n_group
        options = dict(generator=generator, dtype=mel.dtype, device=generator.device if generator else mel.device)
        draws = [torch.randn(batch, size, n_steps, **options)
                 for size in [config.n_remaining_channels] + [config.n_early_size] * config.n_exits]
        return torch.cat([*reversed(draws[1:]), draws[0]], dim=1).to(mel.device)

    def infer(self, mel: torch.Tensor, sigma: float = 0.6, generator: torch.Generator | None = None,
              chunk_frames: int | None = None, overlap_frames: int = 16) -> torch.Tensor:
        """Mel (batch, n_mels, n_frames) → audio (batch, n_frames · hop_length), z = sigma · N(0, 1).

        With `chunk_frames`, runs chunks of that many frames plus `overlap_frames` of context each
        side, crossfaded over `overlap_frames` at each boundary. z is drawn once for the whole length,
        so this matches the unchunked result where the context covers the receptive field.
        """
        z = sigma * self.draw_noise(mel, generator)
        if chunk_frames is None or chunk_frames >= mel.shape[-1]:
            return self.inverse(mel, z)
        if chunk_frames < max(1, overlap_frames):
            raise ValueError(f"chunk_frames: expected >= overlap_frames ({overlap_frames}), found {chunk_frames}")
        return inverse_chunked(self, mel, z, chunk_frames, overlap_frames)

    def prepare_for_inference(self, fast: bool = True) -> "WaveGlow":
        """Fold weight norm and cache each 1×1 conv's float32 inverse; returns self in eval mode.

        `fast` (on CPU) also caches each coupling's time-major plan (`vocoders.waveglow_inference`),
        used without autograd unless VOXFLOW_KERNELS forces a kernel backend: ~2× faster on CPU,
        equal to the plain path within float32 rounding (benchmarks/vocoder.py, docs/benchmarks.md).
        """
        for module in self.modules():
            if isinstance(module, WeightNormConv1d):
                module.remove_weight_norm()
            elif isinstance(module, InvertibleConv1x1):
                module.prepare_for_inference()
        fast = fast and self.upsample.weight.device.type == "cpu"
        for flow in self.flows:
            flow.coupling.plan = CouplingPlan(flow.coupling) if fast else None
        self.upsample_plan = UpsamplePlan(self.upsample, self.config.n_group) if fast else None
        return self.eval()


class WaveGlowLoss(nn.Module):
    """NLL per audio sample, [Σz²/(2σ²) − Σlog_s − Σlog_det] / (batch · n_samples); may be negative."""

    def __init__(self, sigma: float = 1.0) -> None:
        super().__init__()
        self.sigma = sigma

    def forward(self, output: WaveGlowOutput) -> torch.Tensor:
        z, log_s_list, log_det_list = output
        log_s_total = sum(log_s.float().sum() for log_s in log_s_list)
        log_det_total = sum(log_det.float() for log_det in log_det_list)
        nll = z.float().square().sum() / (2 * self.sigma ** 2) - log_s_total - log_det_total
        return nll / z.numel()
