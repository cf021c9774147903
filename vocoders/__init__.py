"""voxflow vocoders: mel → audio. WaveGlow (the neural vocoder) and Griffin-Lim (no weights).

- `load_vocoder(path)`: a voxflow `.safetensors` WaveGlow (kind "waveglow"), an NVIDIA/DLE WaveGlow
  `.pt` (read by `tts.legacy`'s restricted unpickler; the config is inferred from the tensor
  shapes), or the name "griffin_lim". Returns a module called as `vocoder(mel, sigma=..., generator=...)`.
- `save_vocoder(path, model)`: a WaveGlow as a self-describing safetensors checkpoint.
- `nvidia_to_ours` / `ours_to_nvidia`: WaveGlow key maps between NVIDIA's `glow.py` names and ours.
- `WaveGlowVocoder`: the inference wrapper (no gradients, weight norm folded, inverses cached).

Mel shapes: (batch, n_mels, n_frames) → audio (batch, n_samples); (n_mels, n_frames) → (n_samples,).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from tts.audio import AudioConfig
from tts.errors import UserError

if TYPE_CHECKING:
    from vocoders.waveglow import WaveGlow, WaveGlowConfig

__all__ = ["load_vocoder", "save_vocoder", "WaveGlowVocoder", "nvidia_to_ours", "ours_to_nvidia", "infer_config"]


def load_vocoder(path: str | os.PathLike, audio: AudioConfig | None = None,
                 device: str | torch.device = "cpu") -> nn.Module:
    """The vocoder stored at `path`, on `device`, ready for inference.

    `audio` checks a voxflow checkpoint's audio contract, or supplies what an NVIDIA file does
    not record (its hop length and sample rate; default: the 22050 Hz / hop 256 contract).
    """
    if str(path) in ("griffin_lim", "griffin-lim"):
        from vocoders.griffin_lim import GriffinLim

        return GriffinLim(audio).to(device)
    from tts.checkpoint import build_model, is_safetensors, naming_file, read_checkpoint
    from tts.legacy import read_legacy_checkpoint
    from vocoders.waveglow import WaveGlow, WaveGlowConfig

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such vocoder file")
    if is_safetensors(path):
        checkpoint = read_checkpoint(path)
        if checkpoint.kind != "waveglow":
            raise UserError(f"{path}: a {checkpoint.kind!r} checkpoint, not a vocoder (expected kind 'waveglow')")
        with naming_file(path, "WaveGlow checkpoint"):  # a config of another kind or wrong types names the file
            config = WaveGlowConfig.from_dict(checkpoint.config)
        if audio is not None and audio != config.audio:
            raise UserError(f"{path}: the vocoder's audio config {config.audio} differs from the expected {audio}")
        state_dict = checkpoint.state_dict
    else:
        legacy = read_legacy_checkpoint(path)
        with naming_file(path, "NVIDIA WaveGlow checkpoint"):
            state_dict = nvidia_to_ours(legacy.state_dict)
            stride = legacy.attributes.get("upsample.stride")  # only a pickled model records it
            config = infer_config(state_dict, audio, hop_length=int(stride[0]) if stride else None)
            config = config.replace(alternate_halves=legacy.model_class == "glow_old.WaveGlow")
    # Checked against the tensors on the meta device first: missing/unexpected keys and shapes are
    # named, and a hostile config cannot make us allocate a huge WaveGlow.
    model = build_model(path, lambda: WaveGlow(config), state_dict, "WaveGlow")
    return WaveGlowVocoder(model.to(device))


def save_vocoder(path: str | os.PathLike, model: "WaveGlow", half: bool = False) -> Path:
    """Write a WaveGlow (either weight-norm form) as a voxflow safetensors checkpoint of kind "waveglow";
    `half` stores float tensors as float16 (loading casts them back to float32)."""
    from tts.checkpoint import save_checkpoint

    state_dict = {name: tensor.half() if half and tensor.is_floating_point() else tensor
                  for name, tensor in model.state_dict().items()}
    return save_checkpoint(path, state_dict, "waveglow", model.config.to_dict())


class WaveGlowVocoder(nn.Module):
    """The user-facing vocoder: `vocoder(mel, sigma=0.6, generator=None)` → audio, without gradients.

    mel (batch, n_mels, n_frames) → (batch, n_samples); (n_mels, n_frames) → (n_samples,), like
    `GriffinLim`. n_samples = n_frames · hop_length.
    """

    def __init__(self, model: "WaveGlow") -> None:
        super().__init__()
        self.model = model.prepare_for_inference()

    def _apply(self, fn, recurse: bool = True):
        # A move or cast drops the model's cached inverses; this wrapper is inference-only, so rebuild them.
        result = super()._apply(fn, recurse)
        self.model.prepare_for_inference()
        return result

    @property
    def config(self) -> AudioConfig:
        return self.model.config.audio

    @property
    def sample_rate(self) -> int:
        return self.model.config.audio.sample_rate

    def forward(self, mel: torch.Tensor, sigma: float = 0.6, generator: torch.Generator | None = None,
                chunk_frames: int | None = None, overlap_frames: int = 16) -> torch.Tensor:
        n_mels = self.config.n_mels
        if mel.dim() not in (2, 3) or mel.shape[-2] != n_mels:
            raise ValueError(f"expected mel of shape (batch, {n_mels}, n_frames) or ({n_mels}, n_frames), "
                             f"found {tuple(mel.shape)}")
        with torch.no_grad():
            audio = self.model.infer(mel if mel.dim() == 3 else mel[None], sigma, generator,
                                     chunk_frames, overlap_frames)
        return audio if mel.dim() == 3 else audio[0]


# NVIDIA `glow.py` key prefix ↔ ours; {k} is the flow, {i} the WaveNet layer.
_KEY_MAP = [("WN.{k}.in_layers.{i}.", "flows.{k}.coupling.layers.{i}.dilated."),
            ("WN.{k}.res_skip_layers.{i}.", "flows.{k}.coupling.layers.{i}.res_skip."),
            ("WN.{k}.cond_layer.", "flows.{k}.coupling.cond."),
            ("WN.{k}.start.", "flows.{k}.coupling.start."),
            ("WN.{k}.end.", "flows.{k}.coupling.end."),
            ("convinv.{k}.conv.weight", "flows.{k}.mix.weight"),
            ("upsample.", "upsample.")]


def _rename(state_dict: dict[str, torch.Tensor], to_ours: bool) -> dict[str, torch.Tensor]:
    rules = []
    for nvidia, ours in _KEY_MAP:
        source, target = (nvidia, ours) if to_ours else (ours, nvidia)
        pattern = "^" + re.escape(source).replace(r"\{k\}", r"(?P<k>\d+)").replace(r"\{i\}", r"(?P<i>\d+)")
        rules.append((re.compile(pattern + ("$" if source.endswith("weight") else "")), target))
    renamed, unknown = {}, []
    for key, tensor in state_dict.items():
        # New-style parametrised weight norm stores g and v as original0 / original1.
        key = key.replace("parametrizations.weight.original0", "weight_g")
        key = key.replace("parametrizations.weight.original1", "weight_v")
        match = next(((rule, target) for rule, target in rules if rule.match(key)), None)
        if match is None:
            unknown.append(key)
            continue
        found = match[0].match(key)
        renamed[match[1].format(**found.groupdict()) + key[found.end():]] = tensor
    if unknown:
        raise UserError(f"not {'an NVIDIA' if to_ours else 'a voxflow'} WaveGlow state dict: unknown keys "
                        f"{', '.join(sorted(unknown)[:8])}")
    return renamed


def nvidia_to_ours(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """NVIDIA `glow.py` keys (fused `cond_layer`; `tts.legacy` fuses older files) → ours."""
    renamed = _rename(state_dict, to_ours=True)
    return {key: tensor.squeeze(-1) if key.endswith(".mix.weight") else tensor for key, tensor in renamed.items()}


def ours_to_nvidia(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our keys → NVIDIA `glow.py` keys; the 1×1 weights regain their (c, c, 1) conv shape."""
    renamed = _rename(state_dict, to_ours=False)
    return {key: tensor.unsqueeze(-1) if key.startswith("convinv.") else tensor for key, tensor in renamed.items()}


def infer_config(state_dict: dict[str, torch.Tensor], audio: AudioConfig | None = None,
                 hop_length: int | None = None) -> "WaveGlowConfig":
    """The config a state dict in our key names was built with, from its tensor shapes.

    The hop length (upsampler stride) is not in the shapes: it comes from `audio`, else
    `hop_length`, else the audio contract's 256.
    """
    from vocoders.waveglow import WaveGlowConfig

    def weight(prefix: str) -> torch.Tensor:
        return state_dict.get(prefix + "weight_v", state_dict.get(prefix + "weight"))

    try:
        n_mels, _, kernel = state_dict["upsample.weight"].shape
        sizes = [state_dict[f"flows.{k}.mix.weight"].shape[0]
                 for k in range(len({key.split(".")[1] for key in state_dict if key.startswith("flows.")}))]
        n_layers = len({key.split(".")[4] for key in state_dict if key.startswith("flows.0.coupling.layers.")})
        channels, _, kernel_size = weight("flows.0.coupling.layers.0.dilated.").shape
    except (KeyError, AttributeError, ValueError) as error:
        raise UserError(f"not a WaveGlow state dict (cannot read its shapes: {error!r})") from None
    audio = audio or AudioConfig(n_mels=n_mels, **({"hop_length": hop_length} if hop_length else {}))
    if audio.n_mels != n_mels:
        raise UserError(f"WaveGlow weights expect {n_mels} mel bands, found an audio config with {audio.n_mels}")
    drops = [k for k in range(1, len(sizes)) if sizes[k] < sizes[k - 1]]
    every = drops[0] if drops else len(sizes)
    size = sizes[0] - sizes[drops[0]] if drops else 2
    return WaveGlowConfig(audio=audio, n_flows=len(sizes), n_group=sizes[0], n_early_every=every, n_early_size=size,
                          wn_layers=n_layers, wn_channels=channels // 2, wn_kernel_size=kernel_size,
                          upsample_kernel_size=kernel)
