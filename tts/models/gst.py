"""Global Style Tokens (Wang et al. 2018, "Style Tokens"), laid out as in NVIDIA/mellotron.

Mellotron adapted KinglittleQ/GST-Tacotron; the submodule names here (`encoder.convs`,
`encoder.bns`, `encoder.gru`, `stl.embed`, `stl.attention.W_query/W_key/W_value`) and their
shapes are Mellotron's, so `mellotron_libritts.pt`'s `gst.*` weights load unchanged.

- `ReferenceEncoder`: mel (batch, n_mels, n_frames) → (batch, gru_dim).
- `StyleTokenLayer`: reference embedding (batch, gru_dim) → style (batch, token_dim), by
  multi-head attention of the embedding over `n_tokens` learned tokens.
- `GST`: both, plus two ways to pick a style without audio: token weights
  (batch, n_tokens) and a single token index; `GST.style` accepts any of the three, and
  `StyleVectors` (batch, token_dim): styles already computed, e.g. points between two styles.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["ReferenceEncoder", "StyleTokenLayer", "GST", "StyleVectors"]


class StyleVectors(NamedTuple):
    """Styles already computed (batch, token_dim), passed through `GST.style` unchanged. A type of
    their own because token weights are 2-D too, and only the type tells them apart."""

    vectors: torch.Tensor


def _conv_output_size(size: int, n_convs: int, kernel_size: int = 3, stride: int = 2, padding: int = 1) -> int:
    for _ in range(n_convs):
        size = (size - kernel_size + 2 * padding) // stride + 1
    return size


class ReferenceEncoder(nn.Module):
    """Strided 3×3 Conv2d + BatchNorm + ReLU stack, then a GRU whose last state is the output (§3.1).

    `mellotron_reshape=True` reproduces Mellotron's `mel.view(batch, 1, -1, n_mels)`: a
    *reshape* of the (n_mels, n_frames) matrix, not a transpose, so the "time" axis the convs see
    is a scrambled mix of bands and frames. The published weights were trained that way
    (mellotron PR#94 proposes the transpose); `False` uses the transpose a new model would want.
    """

    def __init__(self, n_mels: int, filters: Sequence[int], gru_dim: int, mellotron_reshape: bool = True) -> None:
        super().__init__()
        channels = [1, *filters]
        self.convs = nn.ModuleList(
            nn.Conv2d(channels[i], channels[i + 1], kernel_size=3, stride=2, padding=1) for i in range(len(filters)))
        self.bns = nn.ModuleList(nn.BatchNorm2d(size) for size in filters)
        self.gru = nn.GRU(filters[-1] * _conv_output_size(n_mels, len(filters)), gru_dim, batch_first=True)
        self.n_mels = n_mels
        self.mellotron_reshape = mellotron_reshape

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """mel (batch, n_mels, n_frames) → (batch, gru_dim)."""
        batch = mel.size(0)
        if self.mellotron_reshape:
            # Mellotron's view: shaped (batch, 1, n_frames, n_mels), but bands and frames interleave
            outputs = mel.reshape(batch, 1, -1, self.n_mels)
        else:
            outputs = mel.transpose(1, 2).unsqueeze(1)  # (batch, 1, n_frames, n_mels)
        for conv, norm in zip(self.convs, self.bns):
            outputs = F.relu(norm(conv(outputs)))
        outputs = outputs.transpose(1, 2)  # (batch, n_frames', channels, n_mels')
        outputs = outputs.reshape(batch, outputs.size(1), -1)  # (batch, n_frames', channels * n_mels')
        _, last = self.gru(outputs)  # last: (1, batch, gru_dim)
        return last.squeeze(0)


class _MultiHeadAttention(nn.Module):
    """Mellotron's bias-free multi-head attention; scores are scaled by √key_dim (its choice)."""

    def __init__(self, query_dim: int, key_dim: int, n_units: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.key_dim = key_dim
        self.W_query = nn.Linear(query_dim, n_units, bias=False)
        self.W_key = nn.Linear(key_dim, n_units, bias=False)
        self.W_value = nn.Linear(key_dim, n_units, bias=False)

    def forward(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """query (batch, 1, query_dim), keys (batch, n_tokens, key_dim) → (batch, 1, n_units)."""
        batch = query.size(0)
        # (batch, length, n_units) → (batch, n_heads, length, n_units / n_heads)
        queries = self.W_query(query).view(batch, -1, self.n_heads, self.W_query.out_features // self.n_heads)
        keys_proj = self.W_key(keys).view(batch, -1, self.n_heads, self.W_key.out_features // self.n_heads)
        values = self.W_value(keys).view(batch, -1, self.n_heads, self.W_value.out_features // self.n_heads)
        queries, keys_proj, values = (t.transpose(1, 2) for t in (queries, keys_proj, values))
        scores = F.softmax(queries @ keys_proj.transpose(2, 3) / self.key_dim ** 0.5, dim=3)
        outputs = scores @ values  # (batch, n_heads, 1, n_units / n_heads)
        return outputs.transpose(1, 2).reshape(batch, -1, self.W_value.out_features)  # heads concatenated


class StyleTokenLayer(nn.Module):
    """`n_tokens` learned tokens of size token_dim / n_heads, passed through tanh, attended to."""

    def __init__(self, n_tokens: int, token_dim: int, n_heads: int, query_dim: int) -> None:
        super().__init__()
        if token_dim % n_heads != 0:
            raise ValueError(f"StyleTokenLayer: expected token_dim divisible by n_heads ({n_heads}), found {token_dim}")
        self.embed = nn.Parameter(torch.empty(n_tokens, token_dim // n_heads))
        self.attention = _MultiHeadAttention(query_dim, token_dim // n_heads, token_dim, n_heads)
        nn.init.normal_(self.embed, mean=0.0, std=0.5)

    def forward(self, query: torch.Tensor) -> torch.Tensor:
        """query (batch, query_dim) → style (batch, token_dim)."""
        keys = torch.tanh(self.embed).unsqueeze(0).expand(query.size(0), -1, -1)  # (batch, n_tokens, key_dim)
        return self.attention(query.unsqueeze(1), keys).squeeze(1)

    def from_weights(self, weights: torch.Tensor) -> torch.Tensor:
        """Token weights (batch, n_tokens) → style (batch, token_dim).

        Every head then attends with these weights, so the style is W_value(weights · tanh(tokens)).
        A one-hot row is Mellotron's integer style input (its zero query over a single key).
        """
        return self.attention.W_value(weights @ torch.tanh(self.embed))


class GST(nn.Module):
    """Reference encoder + style token layer: the style vector joined to the text memory."""

    def __init__(self, n_mels: int, reference_filters: Sequence[int], reference_gru_dim: int, n_tokens: int,
                 token_dim: int, n_heads: int, mellotron_reshape: bool = True) -> None:
        super().__init__()
        self.encoder = ReferenceEncoder(n_mels, reference_filters, reference_gru_dim, mellotron_reshape)
        self.stl = StyleTokenLayer(n_tokens, token_dim, n_heads, reference_gru_dim)

    @property
    def n_tokens(self) -> int:
        return self.stl.embed.size(0)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """Reference mel (batch, n_mels, n_frames) → style (batch, token_dim)."""
        return self.stl(self.encoder(mel))

    def from_weights(self, weights: torch.Tensor) -> torch.Tensor:
        """Token weights (batch, n_tokens) → style (batch, token_dim)."""
        if weights.dim() != 2 or weights.size(1) != self.n_tokens:
            raise ValueError(f"GST token weights: expected shape (batch, {self.n_tokens}), "
                             f"found {tuple(weights.shape)}")
        return self.stl.from_weights(weights)

    def from_token(self, index: int, batch: int = 1) -> torch.Tensor:
        """A single token's style (Mellotron's integer `style_input`) → (batch, token_dim)."""
        if not 0 <= index < self.n_tokens:
            raise ValueError(f"GST token index: expected 0 <= index < {self.n_tokens}, found {index}")
        weights = self.stl.embed.new_zeros(batch, self.n_tokens)
        weights[:, index] = 1.0
        return self.stl.from_weights(weights)

    def style(self, style: torch.Tensor | int | StyleVectors | None, batch: int) -> torch.Tensor:
        """The inference-time style (batch, token_dim) from a reference mel (batch or 1, n_mels,
        n_frames), token weights (batch or 1, n_tokens), a token index, `StyleVectors` (batch or 1,
        token_dim), or None: equal weights, which is what a zero reference query gives."""
        if isinstance(style, StyleVectors):
            token_dim = self.stl.attention.W_value.out_features
            if style.vectors.dim() != 2 or style.vectors.size(1) != token_dim:
                raise ValueError(f"StyleVectors: expected shape (batch, {token_dim}), "
                                 f"found {tuple(style.vectors.shape)}")
            return style.vectors.expand(batch, -1)
        if style is None:
            style = self.stl.embed.new_full((1, self.n_tokens), 1.0 / self.n_tokens)
        if isinstance(style, int):
            return self.from_token(style, batch)
        if style.dim() == 3:
            return self(style).expand(batch, -1)
        if style.dim() == 2:
            return self.from_weights(style).expand(batch, -1)
        raise ValueError(f"style: expected a mel (batch, n_mels, n_frames), token weights (batch, n_tokens) "
                         f"or a token index, found a tensor of shape {tuple(style.shape)}")
