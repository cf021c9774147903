"""Flowtron's building blocks (Valle et al. 2020, NVIDIA/flowtron `flowtron.py`).

Submodule names follow NVIDIA's, because state-dict keys are part of the file format:
`flowtron_ljs.pt` loads into these blocks unchanged. Everything here is batch first.

- `FlowtronEncoder`: embedded tokens (batch, channels, n_tokens) → (batch, n_tokens, channels);
  conv + instance norm (over each item's real tokens) + ReLU, then a BiLSTM.
- `FlowtronAttention`: Tacotron-1-style additive attention, content only. queries (batch,
  n_frames, query_dim), memory (batch, n_tokens, memory_dim) → context (batch, n_frames,
  attention_dim), weights and log-probabilities (batch, n_frames, n_tokens).
- `ARStep`: one autoregressive affine-coupling flow over time (§2.1 of the paper).
  `forward`: mel (batch, n_frames, n_mels) → z, log_s of the same shape (teacher forced: frame t
  is conditioned on frames < t). `inverse`: z → mel, one frame at a time.
- `BackwardStep`: the same flow run backwards in time (NVIDIA's `AR_Back_Step`, the step under
  `.ar_step`). Each item's real frames are reversed and its padding stays at the end.
- `beta_binomial_prior`: the near-diagonal attention prior of NVIDIA's training data.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn
from torch.nn import functional as F

from tts.models.layers import ConvNorm, LinearNorm, lengths_to_mask

__all__ = ["FlowtronEncoder", "FlowtronAttention", "AttentionConditioning", "ARStep", "BackwardStep",
           "FlowStepOutput", "reverse_each", "masked_instance_norm", "beta_binomial_prior"]


def masked_instance_norm(inputs: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                         eps: float = 1e-5) -> torch.Tensor:
    """Instance norm of (batch, channels, n) over each item's real positions (mask (batch, 1, n)),
    NVIDIA's `MaskedInstanceNorm1d` (biased variance, affine)."""
    mask = mask.to(inputs.dtype)
    count = mask.sum(2, keepdim=True)
    mean = (inputs * mask).sum(2, keepdim=True) / count
    variance = (((inputs - mean) * mask) ** 2).sum(2, keepdim=True) / count
    return (inputs - mean) / torch.sqrt(variance + eps) * weight[:, None] + bias[:, None]


def reverse_each(sequence: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """Reverse each item's first `lengths[b]` steps and, separately, its padding, along dim 1.

    This is NVIDIA's flip-then-roll (and, undone, roll-then-flip) of `AR_Back_Step`; it is its
    own inverse. sequence (batch, n_frames, ...), lengths (batch,) or None (all full length).
    """
    if lengths is None:
        return torch.flip(sequence, (1,))
    n_frames = sequence.size(1)
    steps = torch.arange(n_frames, device=sequence.device).unsqueeze(0)
    lengths = lengths.to(sequence.device).unsqueeze(1)
    index = torch.where(steps < lengths, lengths - 1 - steps, n_frames - 1 + lengths - steps)  # (batch, n_frames)
    index = index.view(*index.shape, *([1] * (sequence.dim() - 2))).expand_as(sequence)
    return torch.gather(sequence, 1, index)


def beta_binomial_prior(token_lengths: torch.Tensor, mel_lengths: torch.Tensor, scaling: float = 1.0,
                        threshold: float = 0.0) -> torch.Tensor:
    """NVIDIA's attention prior (`data.py`): frame i of M attends to token k of P with probability
    BetaBinomial(k; P − 1, a = s·i, b = s·(M + 1 − i)), i = 1..M. → (batch, n_frames, n_tokens),
    0 outside each item's lengths and where below `threshold`."""
    n_frames, n_tokens = int(mel_lengths.max()), int(token_lengths.max())
    k = torch.arange(n_tokens, dtype=torch.float64).view(1, 1, -1)
    i = torch.arange(1, n_frames + 1, dtype=torch.float64).view(1, -1, 1)
    n = (token_lengths.double().cpu() - 1).view(-1, 1, 1)
    m = mel_lengths.double().cpu().view(-1, 1, 1)
    a, b = scaling * i, scaling * (m + 1 - i)

    def log_beta(x, y):
        return torch.lgamma(x) + torch.lgamma(y) - torch.lgamma(x + y)

    k_valid = torch.minimum(k, n.clamp(min=0))  # keeps lgamma finite; masked below
    log_pmf = (torch.lgamma(n + 1) - torch.lgamma(k_valid + 1) - torch.lgamma(n - k_valid + 1)
               + log_beta(k_valid + a, n - k_valid + b.clamp(min=1e-9)) - log_beta(a, b.clamp(min=1e-9)))
    valid = (k <= n) & (i <= m)
    prior = torch.where(valid, log_pmf.exp(), torch.zeros(()))
    if threshold > 0:
        prior = prior.masked_fill(prior < threshold, 0.0)
    return prior.float().to(mel_lengths.device)


def _run_lstm(lstm: nn.LSTM, inputs: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """A batch-first LSTM over padded sequences; padded outputs are 0 (NVIDIA packs them too)."""
    if lengths is None:
        return lstm(inputs)[0]
    packed = nn.utils.rnn.pack_padded_sequence(inputs, lengths.cpu(), batch_first=True, enforce_sorted=False)
    outputs, _ = nn.utils.rnn.pad_packed_sequence(lstm(packed)[0], batch_first=True, total_length=inputs.size(1))
    return outputs


class FlowtronEncoder(nn.Module):
    """Text encoder: n × [ConvNorm, InstanceNorm1d(affine)] with ReLU and dropout, then a BiLSTM."""

    def __init__(self, embedding_dim: int, n_convolutions: int, kernel_size: int, dropout: float = 0.5) -> None:
        super().__init__()
        self.convolutions = nn.ModuleList(
            nn.Sequential(ConvNorm(embedding_dim, embedding_dim, kernel_size, w_init_gain="relu"),
                          nn.InstanceNorm1d(embedding_dim, affine=True))
            for _ in range(n_convolutions))
        self.lstm = nn.LSTM(embedding_dim, embedding_dim // 2, 1, batch_first=True, bidirectional=True)
        self.dropout = dropout

    def forward(self, embedded: torch.Tensor, token_lengths: torch.Tensor | None = None) -> torch.Tensor:
        """embedded (batch, channels, n_tokens) → (batch, n_tokens, channels); padding is 0."""
        n_tokens = embedded.size(2)
        mask = (torch.ones_like(embedded[:, :1], dtype=torch.bool) if token_lengths is None
                else lengths_to_mask(token_lengths, n_tokens).unsqueeze(1))  # (batch, 1, n_tokens)
        outputs = embedded
        for conv, norm in self.convolutions:
            outputs = conv(outputs.masked_fill(~mask, 0.0))
            outputs = masked_instance_norm(outputs, mask, norm.weight, norm.bias, norm.eps)
            outputs = F.dropout(F.relu(outputs), self.dropout, self.training)
        return _run_lstm(self.lstm, outputs.transpose(1, 2), token_lengths)


class FlowtronAttention(nn.Module):
    """energies = v·tanh(W_q q + W_k k) / temperature; context = softmax(energies) · W_v memory."""

    def __init__(self, query_dim: int, memory_dim: int, attention_dim: int) -> None:
        super().__init__()
        self.query = LinearNorm(query_dim, attention_dim, bias=False, w_init_gain="tanh")
        self.key = LinearNorm(memory_dim, attention_dim, bias=False, w_init_gain="tanh")
        self.value = LinearNorm(memory_dim, attention_dim, bias=False, w_init_gain="tanh")
        self.v = LinearNorm(attention_dim, 1, bias=False, w_init_gain="tanh")

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor | None,
                prior: torch.Tensor | None = None, temperature: float = 1.0
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """queries (batch, n_frames, query_dim); keys, values: projected memory (batch, n_tokens,
        attention_dim); mask (batch, n_tokens) True on real tokens; prior (batch, n_frames,
        n_tokens) → context, weights, log-probabilities (the CTC loss reads these).

        With a prior, weights = softmax(log attention + log prior), NVIDIA's posterior (ε 1e-20)."""
        processed = self.query(queries)  # (batch, n_frames, attention_dim)
        energies = self.v(torch.tanh(processed.unsqueeze(2) + keys.unsqueeze(1))).squeeze(-1) / temperature
        fill = torch.finfo(energies.dtype).min  # NVIDIA fills -inf; same softmax, no inf arithmetic
        if mask is not None:
            energies = energies.masked_fill(~mask.unsqueeze(1), fill)
        weights = F.softmax(energies, dim=2)
        if prior is None:
            log_probs = torch.log(weights + 1e-8)
        else:
            log_probs = torch.log(weights + 1e-20) + torch.log(prior + 1e-20)
            posterior = log_probs if mask is None else log_probs.masked_fill(~mask.unsqueeze(1), fill)
            weights = F.softmax(posterior, dim=2)
        return torch.bmm(weights, values), weights, log_probs


class AttentionConditioning(nn.Module):
    """Cumulative-attention features (NVIDIA's `AttentionConditioningLayer`): convs over the
    [cumulative, previous] weights (batch, 2, n_tokens) → sigmoid gains (batch, n_tokens, channels)
    for the keys. Its convs are registered twice (`location_conv_*` and `conv_layers.*`), as NVIDIA's."""

    def __init__(self, channels: int, n_filters: int = 32, kernel_sizes: tuple[int, int] = (5, 3)) -> None:
        super().__init__()
        self.location_conv_hidden = ConvNorm(2, n_filters, kernel_sizes[0], w_init_gain="relu")
        self.location_conv_out = ConvNorm(n_filters, channels, kernel_sizes[1], w_init_gain="sigmoid")
        self.conv_layers = nn.Sequential(self.location_conv_hidden, nn.ReLU(), self.location_conv_out, nn.Sigmoid())

    def forward(self, weights_cat: torch.Tensor) -> torch.Tensor:
        return self.conv_layers(weights_cat).transpose(1, 2)


class DenseLayer(nn.Module):
    """Linear + tanh layers (NVIDIA's `DenseLayer`)."""

    def __init__(self, in_dim: int, sizes: list[int]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(LinearNorm(i, o) for i, o in zip([in_dim, *sizes[:-1]], sizes))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        for linear in self.layers:
            inputs = torch.tanh(linear(inputs))
        return inputs


@dataclasses.dataclass
class FlowStepOutput:
    """One flow step, in its processing order (for a backward step: reversed, see `BackwardStep`)."""

    output: torch.Tensor  # (batch, n_frames, n_mels): z (forward) or mel (inverse)
    log_s: torch.Tensor | None  # (batch, n_frames, n_mels), forward only
    gate_logits: torch.Tensor | None  # (batch, n_frames), gated step only
    attention: torch.Tensor  # (batch, n_frames, n_tokens)
    attention_log_probs: torch.Tensor | None  # (batch, n_frames, n_tokens), forward only
    lengths: torch.Tensor | None  # (batch,) frames per item (inverse: after the gate stopped it)


@dataclasses.dataclass
class FlowStepState:
    """What inverse step t + 1 reads from step t (NVIDIA keeps these in loop variables)."""

    previous: torch.Tensor  # (batch, 1, n_mels): the last output frame (zeros first)
    attention_lstm: tuple[torch.Tensor, torch.Tensor] | None
    lstm: tuple[torch.Tensor, torch.Tensor] | None
    cumulative: torch.Tensor  # (batch, n_tokens): summed attention (cumulative attention only)
    weights: torch.Tensor  # (batch, n_tokens): the last attention weights


class ARStep(nn.Module):
    """mel_t → z_t = exp(log_s_t) · mel_t + b_t, with (log_s_t, b_t) from mel_<t and the text.

    attention LSTM over the previous frame → attention over memory → LSTM stack over [hidden,
    context] → dense layers → 1×1 conv (zero-initialised: the flow starts as the identity).
    The gate (stop) layer reads [attention hidden, context] and exists on the last flow only.
    """

    def __init__(self, n_mels: int, memory_dim: int, hidden_dim: int, attention_dim: int, n_lstm_layers: int,
                 gate: bool, cumulative_attention: bool) -> None:
        super().__init__()
        self.conv = nn.Conv1d(hidden_dim, 2 * n_mels, 1)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)
        self.lstm = nn.LSTM(hidden_dim + attention_dim, hidden_dim, n_lstm_layers, batch_first=True)
        self.attention_lstm = nn.LSTM(n_mels, hidden_dim, batch_first=True)
        self.attention_layer = FlowtronAttention(hidden_dim, memory_dim, attention_dim)
        self.attn_cond_layer = AttentionConditioning(memory_dim) if cumulative_attention else None
        self.dense_layer = DenseLayer(hidden_dim, [hidden_dim, hidden_dim])
        self.gate_layer = LinearNorm(hidden_dim + attention_dim, 1, w_init_gain="sigmoid") if gate else None

    def _coupling(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(batch, n_frames, hidden_dim) → log_s, b (batch, n_frames, n_mels)."""
        out = self.conv(self.dense_layer(hidden).transpose(1, 2)).transpose(1, 2)  # (batch, n_frames, 2 n_mels)
        return out.chunk(2, dim=2)

    def _attend(self, hidden: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor | None,
                state: FlowStepState | None, prior: torch.Tensor | None, temperature: float):
        """Attention for frames `hidden` (batch, n, hidden_dim); cumulative attention runs one
        frame at a time, conditioning the keys on [cumulative, previous] weights."""
        values = self.attention_layer.value(memory)
        if self.attn_cond_layer is None:
            return self.attention_layer(hidden, self.attention_layer.key(memory), values, mask, prior, temperature)
        contexts, weights_all, log_probs_all = [], [], []
        for t in range(hidden.size(1)):
            gains = self.attn_cond_layer(torch.stack((state.cumulative, state.weights), dim=1))
            # NVIDIA's cumulative path passes no prior in the teacher-forced pass; kept for parity.
            context, weights, log_probs = self.attention_layer(
                hidden[:, t:t + 1], self.attention_layer.key(memory * gains), values, mask, None, temperature)
            state.weights = weights[:, 0]
            state.cumulative = state.cumulative + state.weights
            contexts.append(context), weights_all.append(weights), log_probs_all.append(log_probs)
        return torch.cat(contexts, 1), torch.cat(weights_all, 1), torch.cat(log_probs_all, 1)

    def forward(self, mel: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor | None,
                lengths: torch.Tensor | None, prior: torch.Tensor | None = None) -> FlowStepOutput:
        """mel (batch, n_frames, n_mels), memory (batch, n_tokens, memory_dim) → z (teacher forced)."""
        previous = torch.cat((mel.new_zeros(mel.size(0), 1, mel.size(2)), mel[:, :-1]), dim=1)
        attention_hidden = _run_lstm(self.attention_lstm, previous, lengths)
        context, weights, log_probs = self._attend(attention_hidden, memory, mask, self._initial_state(mel, memory),
                                                   prior, 1.0)
        decoder_input = torch.cat((attention_hidden, context), dim=2)
        gate_logits = None if self.gate_layer is None else self.gate_layer(decoder_input).squeeze(2)
        log_s, bias = self._coupling(_run_lstm(self.lstm, decoder_input, lengths))
        return FlowStepOutput(torch.exp(log_s) * mel + bias, log_s, gate_logits, weights, log_probs, lengths)

    def _initial_state(self, reference: torch.Tensor, memory: torch.Tensor) -> FlowStepState:
        batch, n_tokens = memory.shape[:2]
        return FlowStepState(reference.new_zeros(batch, 1, reference.size(2)), None, None,
                             memory.new_zeros(batch, n_tokens), memory.new_zeros(batch, n_tokens))

    def inverse(self, z: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor | None,
                lengths: torch.Tensor | None, gate_threshold: float | None = None,
                temperature: float = 1.0) -> FlowStepOutput:
        """z (batch, n_frames, n_mels) → mel, frame by frame: mel_t = (z_t − b_t) / exp(log_s_t).

        With a gate and `gate_threshold`, an item stops after the first frame whose
        sigmoid(gate) exceeds it (that frame is kept, NVIDIA's rule); the loop ends when all have."""
        batch, n_frames, _ = z.shape
        lengths = torch.full((batch,), n_frames, device=z.device) if lengths is None else lengths.to(z.device)
        stopped = torch.zeros(batch, dtype=torch.bool, device=z.device)
        gating = self.gate_layer is not None and gate_threshold is not None
        state = self._initial_state(z, memory)
        keys, values = self.attention_layer.key(memory), self.attention_layer.value(memory)
        frames, weights_all, gates = [], [], []
        for t in range(n_frames):
            hidden, state.attention_lstm = self.attention_lstm(state.previous, state.attention_lstm)
            if self.attn_cond_layer is None:
                context, weights, _ = self.attention_layer(hidden, keys, values, mask, None, temperature)
            else:
                context, weights, _ = self._attend(hidden, memory, mask, state, None, temperature)
            decoder_input = torch.cat((hidden, context), dim=2)
            lstm_hidden, state.lstm = self.lstm(decoder_input, state.lstm)
            log_s, bias = self._coupling(lstm_hidden)
            state.previous = (z[:, t:t + 1] - bias) / torch.exp(log_s)
            frames.append(state.previous), weights_all.append(weights)
            if self.gate_layer is not None:
                gates.append(self.gate_layer(decoder_input)[:, 0, 0])
            if gating:
                stopping = (torch.sigmoid(gates[-1]) > gate_threshold) & ~stopped & (t < lengths)
                lengths = torch.where(stopping, torch.full_like(lengths, t + 1), lengths)
                stopped |= stopping
                if bool((stopped | (lengths <= t + 1)).all()):
                    break
        n_out = int(lengths.max())
        mel = torch.cat(frames, 1)[:, :n_out]
        mel = mel.masked_fill(~lengths_to_mask(lengths, n_out).unsqueeze(2), 0.0)
        gate_logits = torch.stack(gates, 1)[:, :n_out] if gates else None
        return FlowStepOutput(mel, None, gate_logits, torch.cat(weights_all, 1)[:, :n_out], None, lengths)


class BackwardStep(nn.Module):
    """An `ARStep` over time-reversed frames (NVIDIA's `AR_Back_Step`). Inputs and outputs are in
    mel time order except `gate_logits`, which stay in processing order (position t = the t-th
    frame generated at inference, so the stop target is the same as a forward step's)."""

    def __init__(self, ar_step: ARStep) -> None:
        super().__init__()
        self.ar_step = ar_step

    def forward(self, mel: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor | None,
                lengths: torch.Tensor | None, prior: torch.Tensor | None = None) -> FlowStepOutput:
        prior = None if prior is None else reverse_each(prior, lengths)
        out = self.ar_step(reverse_each(mel, lengths), memory, mask, lengths, prior)
        return FlowStepOutput(reverse_each(out.output, lengths), reverse_each(out.log_s, lengths), out.gate_logits,
                              reverse_each(out.attention, lengths), reverse_each(out.attention_log_probs, lengths),
                              lengths)

    def inverse(self, z: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor | None,
                lengths: torch.Tensor | None, gate_threshold: float | None = None,
                temperature: float = 1.0) -> FlowStepOutput:
        out = self.ar_step.inverse(reverse_each(z, lengths), memory, mask, lengths, gate_threshold, temperature)
        # The gate may have shortened items: un-reverse with the lengths it produced.
        return FlowStepOutput(reverse_each(out.output, out.lengths), None, out.gate_logits,
                              reverse_each(out.attention, out.lengths), None, out.lengths)
