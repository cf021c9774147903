"""Building blocks shared by the Tacotron family (Tacotron 2-GST, Mellotron).

Every block takes explicit, typed arguments (never a config object), and its submodule names
follow NVIDIA/tacotron2's `model.py` / `layers.py`, because state-dict keys are part of the
file format: NVIDIA's published weights load into these blocks unchanged.

Shapes (batch first everywhere):
- `Encoder`: embedded tokens (batch, channels, n_tokens) → memory (batch, n_tokens, channels).
- `Prenet`: (..., in_dim) → (..., sizes[-1]).
- `LocationSensitiveAttention`: query (batch, query_dim), memory (batch, n_tokens, memory_dim),
  previous + cumulative weights (batch, 2, n_tokens) → context (batch, memory_dim) and weights
  (batch, n_tokens).
- `Postnet`: mel (batch, n_mels, n_frames) → residual (batch, n_mels, n_frames).
- `Decoder.step`: one autoregressive step, state passed explicitly in a `DecoderState`:
  prenet features (batch, prenet_dim + extra) → frames (batch, n_mels * r), gate logit (batch,).

Masks are `True` on real positions. Padded positions are zeroed before every convolution, so a
padded batch computes, for each item, exactly what that item computes alone (NVIDIA lets the pad
embedding and padded decoder frames leak into the last few valid positions; with full-length
inputs the two agree bit for bit).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["LinearNorm", "ConvNorm", "Prenet", "Postnet", "LocationLayer", "LocationSensitiveAttention",
           "Encoder", "Decoder", "DecoderState", "lengths_to_mask"]


def lengths_to_mask(lengths: torch.Tensor, max_length: int | None = None) -> torch.Tensor:
    """(batch,) lengths → (batch, max_length) bool mask, True on real positions."""
    if max_length is None:
        max_length = int(lengths.max())
    positions = torch.arange(max_length, device=lengths.device)
    return positions.unsqueeze(0) < lengths.unsqueeze(1)


class LinearNorm(nn.Module):
    """`nn.Linear` with Xavier-uniform init scaled for the following nonlinearity (NVIDIA's init)."""

    def __init__(self, in_dim: int, out_dim: int, bias: bool = True, w_init_gain: str = "linear") -> None:
        super().__init__()
        self.linear_layer = nn.Linear(in_dim, out_dim, bias=bias)
        nn.init.xavier_uniform_(self.linear_layer.weight, gain=nn.init.calculate_gain(w_init_gain))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.linear_layer(inputs)


class ConvNorm(nn.Module):
    """`nn.Conv1d` with "same" padding (odd kernel) and NVIDIA's Xavier-uniform init."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, bias: bool = True,
                 w_init_gain: str = "linear") -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"ConvNorm: expected an odd kernel_size, found {kernel_size}")
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, padding=(kernel_size - 1) // 2, bias=bias)
        nn.init.xavier_uniform_(self.conv.weight, gain=nn.init.calculate_gain(w_init_gain))

    def forward(self, signal: torch.Tensor) -> torch.Tensor:
        return self.conv(signal)


class Prenet(nn.Module):
    """Bias-free Linear + ReLU + dropout layers before the attention RNN (Tacotron 2 §2.3).

    Dropout is applied in training *and* inference, as in NVIDIA's code and the paper ("to
    introduce output variation at inference time"); the caller passes its probability. The
    mask is drawn from `generator` (never the global RNG when a generator is given); p=0 makes
    decoding deterministic.
    """

    def __init__(self, in_dim: int, sizes: Sequence[int]) -> None:
        super().__init__()
        in_sizes = [in_dim, *sizes[:-1]]
        self.layers = nn.ModuleList(LinearNorm(i, o, bias=False) for i, o in zip(in_sizes, sizes))

    def forward(self, inputs: torch.Tensor, dropout: float = 0.5,
                generator: torch.Generator | None = None) -> torch.Tensor:
        outputs = inputs
        for linear in self.layers:
            outputs = F.relu(linear(outputs))
            if dropout > 0:
                keep = torch.empty_like(outputs).bernoulli_(1.0 - dropout, generator=generator)
                outputs = outputs * keep / (1.0 - dropout)
        return outputs


class Postnet(nn.Module):
    """Five 1-D convs (tanh after all but the last) predicting a residual for the mel (§2.3)."""

    def __init__(self, n_mels: int, channels: int, kernel_size: int, n_layers: int, dropout: float = 0.5) -> None:
        super().__init__()
        if n_layers < 2:
            raise ValueError(f"Postnet: expected n_layers >= 2, found {n_layers}")
        sizes = [n_mels] + [channels] * (n_layers - 1) + [n_mels]
        gains = ["tanh"] * (n_layers - 1) + ["linear"]
        self.convolutions = nn.ModuleList(
            nn.Sequential(ConvNorm(sizes[i], sizes[i + 1], kernel_size, w_init_gain=gains[i]),
                          nn.BatchNorm1d(sizes[i + 1]))
            for i in range(n_layers))
        self.dropout = dropout

    def forward(self, mel: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """mel (batch, n_mels, n_frames), mask (batch, n_frames) → residual of the same shape."""
        frame_mask = None if mask is None else mask.unsqueeze(1).to(mel.dtype)  # (batch, 1, n_frames)
        outputs = mel
        for index, block in enumerate(self.convolutions):
            if frame_mask is not None:
                outputs = outputs * frame_mask
            outputs = block(outputs)
            if index < len(self.convolutions) - 1:
                outputs = torch.tanh(outputs)
            outputs = F.dropout(outputs, self.dropout, self.training)
        return outputs


class LocationLayer(nn.Module):
    """Location features: conv over [previous, cumulative] attention weights, then a projection."""

    def __init__(self, n_filters: int, kernel_size: int, attention_dim: int) -> None:
        super().__init__()
        self.location_conv = ConvNorm(2, n_filters, kernel_size, bias=False)
        self.location_dense = LinearNorm(n_filters, attention_dim, bias=False, w_init_gain="tanh")

    def forward(self, weights_cat: torch.Tensor) -> torch.Tensor:
        """(batch, 2, n_tokens) → (batch, n_tokens, attention_dim)."""
        return self.location_dense(self.location_conv(weights_cat).transpose(1, 2))


class LocationSensitiveAttention(nn.Module):
    """Additive attention with location features (Chorowski et al. 2015; Tacotron 2 §2.2)."""

    def __init__(self, query_dim: int, memory_dim: int, attention_dim: int, location_n_filters: int,
                 location_kernel_size: int) -> None:
        super().__init__()
        self.query_layer = LinearNorm(query_dim, attention_dim, bias=False, w_init_gain="tanh")
        self.memory_layer = LinearNorm(memory_dim, attention_dim, bias=False, w_init_gain="tanh")
        self.v = LinearNorm(attention_dim, 1, bias=False)
        self.location_layer = LocationLayer(location_n_filters, location_kernel_size, attention_dim)

    def forward(self, query: torch.Tensor, memory: torch.Tensor, processed_memory: torch.Tensor,
                weights_cat: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """query (batch, query_dim), memory (batch, n_tokens, memory_dim), processed_memory
        (batch, n_tokens, attention_dim), weights_cat (batch, 2, n_tokens), mask (batch, n_tokens)
        → context (batch, memory_dim), weights (batch, n_tokens)."""
        processed_query = self.query_layer(query.unsqueeze(1))  # (batch, 1, attention_dim)
        location = self.location_layer(weights_cat)
        energies = self.v(torch.tanh(processed_query + location + processed_memory)).squeeze(-1)
        if mask is not None:
            # NVIDIA fills -inf; the dtype's minimum gives the same softmax and survives fp16
            # (tacotron2#18).
            energies = energies.masked_fill(~mask, torch.finfo(energies.dtype).min)
        weights = F.softmax(energies, dim=1)
        context = torch.bmm(weights.unsqueeze(1), memory).squeeze(1)
        return context, weights


class Encoder(nn.Module):
    """Three conv + BatchNorm + ReLU blocks, then a bidirectional LSTM (Tacotron 2 §2.2)."""

    def __init__(self, embedding_dim: int, n_convolutions: int, kernel_size: int, dropout: float = 0.5) -> None:
        super().__init__()
        if embedding_dim % 2 != 0:
            raise ValueError(f"Encoder: expected an even embedding_dim (BiLSTM halves), found {embedding_dim}")
        self.convolutions = nn.ModuleList(
            nn.Sequential(ConvNorm(embedding_dim, embedding_dim, kernel_size, w_init_gain="relu"),
                          nn.BatchNorm1d(embedding_dim))
            for _ in range(n_convolutions))
        self.lstm = nn.LSTM(embedding_dim, embedding_dim // 2, 1, batch_first=True, bidirectional=True)
        self.dropout = dropout

    def forward(self, embedded: torch.Tensor, token_lengths: torch.Tensor | None = None) -> torch.Tensor:
        """embedded (batch, channels, n_tokens), token_lengths (batch,) or None (no padding)
        → memory (batch, n_tokens, channels); padded positions are zero."""
        token_mask = None
        if token_lengths is not None:
            token_mask = lengths_to_mask(token_lengths, embedded.size(2)).unsqueeze(1).to(embedded.dtype)
        outputs = embedded
        for block in self.convolutions:
            if token_mask is not None:
                outputs = outputs * token_mask
            outputs = F.dropout(F.relu(block(outputs)), self.dropout, self.training)
        outputs = outputs.transpose(1, 2)  # (batch, n_tokens, channels)
        if token_lengths is None:
            return self.lstm(outputs)[0]
        # Packing keeps the backward direction from reading padding; lengths must be on the CPU.
        packed = nn.utils.rnn.pack_padded_sequence(outputs, token_lengths.cpu(), batch_first=True,
                                                   enforce_sorted=False)
        memory, _ = self.lstm(packed)
        memory, _ = nn.utils.rnn.pad_packed_sequence(memory, batch_first=True, total_length=outputs.size(1))
        return memory


@dataclasses.dataclass
class DecoderState:
    """Everything one decoder step reads from the previous one (NVIDIA keeps these as attributes)."""

    attention_hidden: torch.Tensor  # (batch, attention_rnn_dim)
    attention_cell: torch.Tensor  # (batch, attention_rnn_dim)
    decoder_hidden: torch.Tensor  # (batch, decoder_rnn_dim)
    decoder_cell: torch.Tensor  # (batch, decoder_rnn_dim)
    attention_weights: torch.Tensor  # (batch, n_tokens)
    attention_weights_cum: torch.Tensor  # (batch, n_tokens)
    attention_context: torch.Tensor  # (batch, memory_dim)


class Decoder(nn.Module):
    """Tacotron 2's autoregressive decoder: prenet, attention LSTM, attention, decoder LSTM, and
    the frame and stop-gate projections (Tacotron 2 §2.3), emitting `frames_per_step` frames per
    step. As in NVIDIA's code the prenet sees the whole previous step (n_mels * r values), so r=1
    has NVIDIA's key shapes. `extra_input_dim` widens the attention-LSTM input for features the
    caller concatenates to the prenet output (Mellotron's F0).
    """

    def __init__(self, n_mels: int, frames_per_step: int, memory_dim: int, prenet_dim: int, prenet_n_layers: int,
                 attention_rnn_dim: int, attention_dim: int, location_n_filters: int, location_kernel_size: int,
                 decoder_rnn_dim: int, attention_dropout: float = 0.1, decoder_dropout: float = 0.1,
                 extra_input_dim: int = 0) -> None:
        super().__init__()
        self.n_mels = n_mels
        self.frames_per_step = frames_per_step
        self.attention_dropout = attention_dropout
        self.decoder_dropout = decoder_dropout
        self.prenet = Prenet(n_mels * frames_per_step, [prenet_dim] * prenet_n_layers)
        self.attention_rnn = nn.LSTMCell(prenet_dim + extra_input_dim + memory_dim, attention_rnn_dim)
        self.attention_layer = LocationSensitiveAttention(attention_rnn_dim, memory_dim, attention_dim,
                                                          location_n_filters, location_kernel_size)
        self.decoder_rnn = nn.LSTMCell(attention_rnn_dim + memory_dim, decoder_rnn_dim)
        self.linear_projection = LinearNorm(decoder_rnn_dim + memory_dim, n_mels * frames_per_step)
        self.gate_layer = LinearNorm(decoder_rnn_dim + memory_dim, 1, w_init_gain="sigmoid")

    def initial_state(self, memory: torch.Tensor) -> DecoderState:
        """All-zero RNN states, attention weights and context (NVIDIA's go state)."""
        batch, n_tokens, memory_dim = memory.shape
        attention_rnn_dim = self.attention_rnn.hidden_size
        decoder_rnn_dim = self.decoder_rnn.hidden_size
        return DecoderState(
            memory.new_zeros(batch, attention_rnn_dim), memory.new_zeros(batch, attention_rnn_dim),
            memory.new_zeros(batch, decoder_rnn_dim), memory.new_zeros(batch, decoder_rnn_dim),
            memory.new_zeros(batch, n_tokens), memory.new_zeros(batch, n_tokens),
            memory.new_zeros(batch, memory_dim))

    def step(self, features: torch.Tensor, state: DecoderState, memory: torch.Tensor,
             processed_memory: torch.Tensor, mask: torch.Tensor | None,
             attention_weights: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, torch.Tensor, DecoderState]:
        """One step in NVIDIA's order (`Decoder.decode`).

        features (batch, prenet_dim + extra_input_dim), memory (batch, n_tokens, memory_dim),
        processed_memory (batch, n_tokens, attention_dim), mask (batch, n_tokens) or None
        → frames (batch, n_mels * r), gate logit (batch,), the next state (its
        `attention_weights` are this step's alignment). Given `attention_weights` (batch, n_tokens),
        they replace the computed ones (Mellotron's `inference_noattention`: a forced rhythm).
        """
        cell_input = torch.cat((features, state.attention_context), dim=-1)
        attention_hidden, attention_cell = self.attention_rnn(
            cell_input, (state.attention_hidden, state.attention_cell))
        attention_hidden = F.dropout(attention_hidden, self.attention_dropout, self.training)
        weights_cat = torch.stack((state.attention_weights, state.attention_weights_cum), dim=1)
        if attention_weights is None:
            context, weights = self.attention_layer(attention_hidden, memory, processed_memory, weights_cat, mask)
        else:
            weights, context = attention_weights, torch.bmm(attention_weights.unsqueeze(1), memory).squeeze(1)
        decoder_hidden, decoder_cell = self.decoder_rnn(
            torch.cat((attention_hidden, context), dim=-1), (state.decoder_hidden, state.decoder_cell))
        decoder_hidden = F.dropout(decoder_hidden, self.decoder_dropout, self.training)
        projection_input = torch.cat((decoder_hidden, context), dim=1)
        frames = self.linear_projection(projection_input)
        gate_logit = self.gate_layer(projection_input).squeeze(1)
        state = DecoderState(attention_hidden, attention_cell, decoder_hidden, decoder_cell, weights,
                             state.attention_weights_cum + weights, context)
        return frames, gate_logit, state
