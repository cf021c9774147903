"""Named Tacotron 2 configs, and reading NVIDIA Tacotron 2 state dicts.

- `tacotron2_preset(name)`: "nvidia" (NVIDIA/tacotron2's hparams.py: 28.19 M parameters),
  "small" (embedding 256, LSTMs 512, postnet 256) and "tiny" (embedding 128, LSTMs 256, r=3).
- `nvidia_state_dict_to_ours(state_dict)`: NVIDIA/tacotron2 or DeepLearningExamples weights →
  our keys (the names already agree; this strips DDP prefixes, casts to float32 and fills in
  BatchNorm `num_batches_tracked` that 2018-era files may lack).
- `nvidia_config_from_state_dict(state_dict)`: the `Tacotron2Config` those tensors imply.
"""

from __future__ import annotations

import re

import torch

from tts.audio import AudioConfig
from tts.config import TextConfig
from tts.errors import ConfigError
from tts.models.tacotron2 import (AttentionConfig, DecoderConfig, EncoderConfig, GSTConfig, PostnetConfig,
                                  Tacotron2Config)

__all__ = ["TACOTRON2_PRESETS", "tacotron2_preset", "nvidia_state_dict_to_ours", "nvidia_config_from_state_dict",
           "looks_like_nvidia_tacotron2"]

TACOTRON2_PRESETS: dict[str, Tacotron2Config] = {
    "nvidia": Tacotron2Config(),
    "small": Tacotron2Config(
        encoder=EncoderConfig(embedding_dim=256),
        attention=AttentionConfig(rnn_dim=512, attention_dim=128),
        decoder=DecoderConfig(rnn_dim=512, prenet_dim=256),
        postnet=PostnetConfig(channels=256)),
    "tiny": Tacotron2Config(
        encoder=EncoderConfig(embedding_dim=128),
        attention=AttentionConfig(rnn_dim=256, attention_dim=64, location_n_filters=16),
        decoder=DecoderConfig(rnn_dim=256, prenet_dim=128, frames_per_step=3),
        postnet=PostnetConfig(channels=128)),
}

# n_symbols → the text path whose table has that many rows (text.symbols).
_TEXT_BY_N_SYMBOLS = {
    148: TextConfig(symbol_set="tacotron2", cleaners=("english_cleaners",), p_arpabet=0.0),
    185: TextConfig(symbol_set="flowtron", cleaners=("flowtron_cleaners",), p_arpabet=1.0),
}


def tacotron2_preset(name: str) -> Tacotron2Config:
    try:
        return TACOTRON2_PRESETS[name]
    except KeyError:
        raise ConfigError(f"tacotron2 preset: expected one of {sorted(TACOTRON2_PRESETS)}, found {name!r}") from None


def nvidia_state_dict_to_ours(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strip `module.1.` / `module.` (DLE, DDP), cast floating tensors to float32 and add any
    missing BatchNorm `num_batches_tracked` (PyTorch's own loader would)."""
    converted = {}
    for key, tensor in state_dict.items():
        for prefix in ("module.1.", "module."):
            if key.startswith(prefix):
                key = key[len(prefix):]
                break
        converted[key] = tensor.float() if tensor.is_floating_point() else tensor
    for key in [k for k in converted if k.endswith(".running_mean")]:
        converted.setdefault(key.removesuffix("running_mean") + "num_batches_tracked", torch.tensor(0))
    return converted


def looks_like_nvidia_tacotron2(state_dict: dict[str, torch.Tensor]) -> bool:
    """True for NVIDIA/DLE Tacotron 2 tensor names (with or without a `module.` prefix)."""
    keys = {key.removeprefix("module.") for key in state_dict}
    return {"embedding.weight", "decoder.attention_layer.query_layer.linear_layer.weight",
            "postnet.convolutions.0.0.conv.weight"} <= keys


def _count(state_dict: dict[str, torch.Tensor], pattern: str) -> int:
    return sum(1 for key in state_dict if re.fullmatch(pattern, key))


def _shape(state_dict: dict[str, torch.Tensor], key: str) -> tuple[int, ...]:
    if key not in state_dict:
        raise ConfigError(f"not a Tacotron 2 state dict: expected a tensor {key!r}, found none")
    return tuple(state_dict[key].shape)


def nvidia_config_from_state_dict(state_dict: dict[str, torch.Tensor]) -> Tacotron2Config:
    """The config whose model has exactly these tensor shapes (NVIDIA key names, prefix stripped).

    The symbol set comes from the embedding rows (148: "tacotron2", 185: "flowtron"); the audio
    settings other than n_mels cannot be read from weights and stay at NVIDIA's defaults.
    """
    n_symbols, embedding_dim = _shape(state_dict, "embedding.weight")
    if n_symbols not in _TEXT_BY_N_SYMBOLS:
        raise ConfigError(f"embedding.weight: expected 148 (tacotron2) or 185 (flowtron) rows, found {n_symbols}")
    n_postnet = _count(state_dict, r"postnet\.convolutions\.\d+\.0\.conv\.weight")
    n_mels = _shape(state_dict, f"postnet.convolutions.{n_postnet - 1}.0.conv.weight")[0]
    n_outputs = _shape(state_dict, "decoder.linear_projection.linear_layer.weight")[0]
    if n_outputs % n_mels:
        raise ConfigError(f"decoder.linear_projection: expected a multiple of n_mels ({n_mels}) outputs, "
                          f"found {n_outputs}")
    location = _shape(state_dict, "decoder.attention_layer.location_layer.location_conv.conv.weight")
    gst, n_speakers, speaker_dim = None, 0, 0
    if "gst.stl.embed" in state_dict:
        n_tokens, key_dim = _shape(state_dict, "gst.stl.embed")
        token_dim = _shape(state_dict, "gst.stl.attention.W_value.weight")[0]
        n_reference = _count(state_dict, r"gst\.encoder\.convs\.\d+\.weight")
        gst = GSTConfig(
            reference_filters=tuple(_shape(state_dict, f"gst.encoder.convs.{i}.weight")[0] for i in range(n_reference)),
            reference_gru_dim=_shape(state_dict, "gst.encoder.gru.weight_hh_l0")[1],
            n_tokens=n_tokens, token_dim=token_dim, n_heads=token_dim // key_dim)
    if "speaker_embedding.weight" in state_dict:
        n_speakers, speaker_dim = _shape(state_dict, "speaker_embedding.weight")
    return Tacotron2Config(
        audio=AudioConfig(n_mels=n_mels),
        text=_TEXT_BY_N_SYMBOLS[n_symbols],
        encoder=EncoderConfig(embedding_dim=embedding_dim,
                              n_convolutions=_count(state_dict, r"encoder\.convolutions\.\d+\.0\.conv\.weight"),
                              kernel_size=_shape(state_dict, "encoder.convolutions.0.0.conv.weight")[2]),
        attention=AttentionConfig(
            rnn_dim=_shape(state_dict, "decoder.attention_rnn.weight_hh")[1],
            attention_dim=_shape(state_dict, "decoder.attention_layer.query_layer.linear_layer.weight")[0],
            location_n_filters=location[0], location_kernel_size=location[2]),
        decoder=DecoderConfig(
            rnn_dim=_shape(state_dict, "decoder.decoder_rnn.weight_hh")[1],
            prenet_dim=_shape(state_dict, "decoder.prenet.layers.0.linear_layer.weight")[0],
            prenet_n_layers=_count(state_dict, r"decoder\.prenet\.layers\.\d+\.linear_layer\.weight"),
            frames_per_step=n_outputs // n_mels),
        postnet=PostnetConfig(channels=_shape(state_dict, "postnet.convolutions.0.0.conv.weight")[0],
                              kernel_size=_shape(state_dict, "postnet.convolutions.0.0.conv.weight")[2],
                              n_convolutions=n_postnet),
        gst=gst, n_speakers=n_speakers, speaker_embedding_dim=speaker_dim)
