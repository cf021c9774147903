"""Flowtron (Valle et al. 2020): an autoregressive normalising flow from mel frames to Gaussian z.

Parameter names follow NVIDIA/flowtron (`embedding`, `speaker_embedding`, `encoder`, `flows.{k}`;
odd, backward flows hold their step under `.ar_step`), so `flowtron_ljs.pt` /
`flowtron_libritts.pt` state dicts (68 keys) and the pickled `flowtron_libritts2p3k.pt` (through
`tts.legacy`) load strictly with `Flowtron.from_nvidia_state_dict`.

- `forward(mel, speaker_ids, tokens, token_lengths, mel_lengths)`: mel (batch, n_mels, n_frames)
  → `FlowtronOutput`: z (batch, n_mels, n_frames), log_s per flow, gate logits (batch, n_frames)
  of the last (gated) flow, attention weights and log-probabilities per flow (batch, n_frames,
  n_tokens), all in mel time order except the gate logits (the gated flow's processing order).
- `inverse(z, speaker_ids, tokens, ...)`: z → mel, flows in reverse order, one frame at a time.
  Exactly what is inverted: each flow's frame t is an affine function of input frame t whose
  scale and shift depend only on the text, the speaker and the flow's *input* frames < t, which
  the inverse has already recovered; so inverse(forward(mel)) = mel up to float rounding, for
  any weights, as long as the gate does not stop the inverse early (gate_threshold=None).
- `infer(tokens, speaker_id, sigma, ...)`: z ~ N(z_mean, sigma²) → mel; `posterior_z` gives the
  style-transfer z mean of NVIDIA's notebook.
- `flowtron_loss`: NVIDIA's `FlowtronLoss` (Gaussian NLL with log-det, masked gate BCE);
  `attention_ctc_loss` and `beta_binomial_prior` (from `flowtron_layers`): the alignment aids of
  NVIDIA's current training.
"""

from __future__ import annotations

import dataclasses
import math
import re
import warnings
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from tts.audio import AudioConfig
from tts.config import Config, TextConfig
from tts.errors import ConfigError
from tts.models.flowtron_layers import ARStep, BackwardStep, FlowtronEncoder, beta_binomial_prior
from tts.models.layers import lengths_to_mask

__all__ = ["FlowtronEncoderConfig", "FlowConfig", "FlowtronLossConfig", "FlowtronConfig", "FLOWTRON_PRESETS",
           "flowtron_preset", "FlowtronOutput", "FlowtronInverseOutput", "Flowtron", "flowtron_loss",
           "attention_ctc_loss", "attention_target_loss", "beta_binomial_prior", "looks_like_nvidia_flowtron",
           "default_n_frames"]

FLOWTRON_TEXT = TextConfig(symbol_set="flowtron", cleaners=("flowtron_cleaners",), p_arpabet=0.5)
# Frames per text token for LJSpeech-like speech (~86 frames/s, ~14 tokens/s ≈ 6) times a margin
# of 2: the gate normally stops well before; NVIDIA's fixed 400 frames cut long sentences short.
_FRAMES_PER_TOKEN, _FRAMES_MARGIN, _MIN_FRAMES, _MAX_FRAMES = 6.0, 2.0, 64, 4000


def _check(condition: bool, what: str, expected: str, found: object) -> None:
    if not condition:
        raise ConfigError(f"{what}: expected {expected}, found {found!r}")


@dataclasses.dataclass(frozen=True)
class FlowtronEncoderConfig(Config):
    embedding_dim: int = 512  # NVIDIA's n_text_dim
    n_convolutions: int = 3
    kernel_size: int = 5
    dropout: float = 0.5

    def __post_init__(self) -> None:
        _check(self.embedding_dim > 0 and self.embedding_dim % 2 == 0, "encoder.embedding_dim",
               "a positive even number (the BiLSTM halves it)", self.embedding_dim)
        _check(self.kernel_size % 2 == 1, "encoder.kernel_size", "an odd number", self.kernel_size)
        _check(0.0 <= self.dropout < 1.0, "encoder.dropout", "a probability in [0, 1)", self.dropout)


@dataclasses.dataclass(frozen=True)
class FlowConfig(Config):
    n_flows: int = 2
    hidden_dim: int = 1024  # n_hidden
    attention_dim: int = 640  # n_attn_channels
    n_lstm_layers: int = 2
    use_gate: bool = True  # a gate (stop) layer on the last flow
    cumulative_attention: bool = False  # use_cumm_attention

    def __post_init__(self) -> None:
        for name in ("n_flows", "hidden_dim", "attention_dim", "n_lstm_layers"):
            _check(getattr(self, name) > 0, f"flows.{name}", "> 0", getattr(self, name))


@dataclasses.dataclass(frozen=True)
class FlowtronLossConfig(Config):
    """Training-only settings (NVIDIA's train/data config): NLL sigma, gate, prior, CTC."""

    sigma: float = 1.0
    gate_loss: bool = True
    attention_prior: bool = True  # use_attn_prior: turn off once the attention is good
    prior_scaling: float = 1.0  # betab_scaling_factor
    prior_threshold: float = 0.0  # attn_prior_threshold
    ctc_weight: float = 0.01  # 0 turns the CTC alignment loss off
    ctc_blank_logprob: float = -8.0
    ctc_start_step: int = 10_000
    # A trained Tacotron 2 / Mellotron file: its teacher-forced attention becomes each flow's
    # attention target (cross-entropy, `alignment_weight`), in place of the prior. "" = none.
    alignment_teacher: str = ""
    alignment_weight: float = 1.0

    def __post_init__(self) -> None:
        _check(self.alignment_weight >= 0, "loss.alignment_weight", ">= 0", self.alignment_weight)
        _check(self.sigma > 0 and self.prior_scaling > 0, "loss.sigma / loss.prior_scaling", "> 0",
               (self.sigma, self.prior_scaling))
        _check(self.ctc_weight >= 0 and self.ctc_start_step >= 0, "loss.ctc_weight / loss.ctc_start_step", ">= 0",
               (self.ctc_weight, self.ctc_start_step))


@dataclasses.dataclass(frozen=True)
class FlowtronConfig(Config):
    audio: AudioConfig = dataclasses.field(default_factory=AudioConfig)
    text: TextConfig = FLOWTRON_TEXT
    encoder: FlowtronEncoderConfig = dataclasses.field(default_factory=FlowtronEncoderConfig)
    flows: FlowConfig = dataclasses.field(default_factory=FlowConfig)
    n_speakers: int = 1
    speaker_embedding_dim: int = 128
    dummy_speaker_embedding: bool = False  # every speaker id is read as 0
    loss: FlowtronLossConfig = dataclasses.field(default_factory=FlowtronLossConfig)

    def __post_init__(self) -> None:
        _check(self.n_speakers > 0 and self.speaker_embedding_dim > 0, "n_speakers / speaker_embedding_dim",
               "both > 0 (Flowtron always has a speaker embedding)", (self.n_speakers, self.speaker_embedding_dim))

    @property
    def n_symbols(self) -> int:
        return self.text.n_symbols

    @property
    def memory_dim(self) -> int:
        return self.encoder.embedding_dim + self.speaker_embedding_dim


FLOWTRON_PRESETS: dict[str, FlowtronConfig] = {
    "nvidia": FlowtronConfig(),  # config.json at HEAD: 60 977 473 parameters with one speaker
    "small": FlowtronConfig(encoder=FlowtronEncoderConfig(embedding_dim=256), speaker_embedding_dim=64,
                            flows=FlowConfig(hidden_dim=512, attention_dim=320)),
    "tiny": FlowtronConfig(encoder=FlowtronEncoderConfig(embedding_dim=64), speaker_embedding_dim=16,
                           flows=FlowConfig(hidden_dim=128, attention_dim=80, n_lstm_layers=1),
                           loss=FlowtronLossConfig(ctc_start_step=0)),
}


def flowtron_preset(name: str) -> FlowtronConfig:
    if name not in FLOWTRON_PRESETS:
        raise ConfigError(f"flowtron preset: expected one of {sorted(FLOWTRON_PRESETS)}, found {name!r}")
    return FLOWTRON_PRESETS[name]


def default_n_frames(n_tokens: int) -> int:
    """Frames to sample when none are given: text length × frames per token × margin, bounded."""
    return int(min(max(math.ceil(n_tokens * _FRAMES_PER_TOKEN * _FRAMES_MARGIN), _MIN_FRAMES), _MAX_FRAMES))


@dataclasses.dataclass
class FlowtronOutput:
    z: torch.Tensor  # (batch, n_mels, n_frames)
    log_s: list[torch.Tensor]  # per flow, (batch, n_mels, n_frames)
    gate_logits: torch.Tensor | None  # (batch, n_frames), the gated flow's processing order
    attention: list[torch.Tensor]  # per flow, (batch, n_frames, n_tokens)
    attention_log_probs: list[torch.Tensor]  # per flow, (batch, n_frames, n_tokens)
    mel_lengths: torch.Tensor  # (batch,)


@dataclasses.dataclass
class FlowtronInverseOutput:
    mel: torch.Tensor  # (batch, n_mels, n_frames); frames past mel_lengths are 0
    mel_lengths: torch.Tensor  # (batch,)
    attention: list[torch.Tensor]  # per flow (flows[k] at index k), (batch, n_frames, n_tokens)
    gate_logits: torch.Tensor | None  # (batch, n_frames), the gated flow's processing order

    @property
    def alignment(self) -> torch.Tensor:
        """The first flow's attention (batch, n_frames, n_tokens): the one applied last."""
        return self.attention[0]


class Flowtron(nn.Module):
    """Flowtron; see the module docstring for shapes."""

    config_class = FlowtronConfig

    def __init__(self, config: FlowtronConfig) -> None:
        super().__init__()
        self.config = config
        flows = config.flows
        self.speaker_embedding = nn.Embedding(config.n_speakers, config.speaker_embedding_dim)
        self.embedding = nn.Embedding(config.n_symbols, config.encoder.embedding_dim)
        self.encoder = FlowtronEncoder(config.encoder.embedding_dim, config.encoder.n_convolutions,
                                       config.encoder.kernel_size, config.encoder.dropout)
        self.flows = nn.ModuleList()
        for index in range(flows.n_flows):
            step = ARStep(config.audio.n_mels, config.memory_dim, flows.hidden_dim, flows.attention_dim,
                          flows.n_lstm_layers, flows.use_gate and index == flows.n_flows - 1,
                          flows.cumulative_attention)
            self.flows.append(step if index % 2 == 0 else BackwardStep(step))  # alternate time direction

    def forward(self, mel: torch.Tensor, speaker_ids: torch.Tensor, tokens: torch.Tensor,
                token_lengths: torch.Tensor | None = None, mel_lengths: torch.Tensor | None = None,
                attention_prior: torch.Tensor | None = None) -> FlowtronOutput:
        """mel (batch, n_mels, n_frames) zero-padded, speaker_ids (batch,), tokens (batch, n_tokens),
        lengths (batch,) or None (no padding), attention_prior (batch, n_frames, n_tokens) → z."""
        memory = self._encode(speaker_ids, tokens, token_lengths)
        mask = None if token_lengths is None else lengths_to_mask(token_lengths, tokens.size(1))
        frames = mel.transpose(1, 2)  # (batch, n_frames, n_mels)
        log_s, attention, log_probs, gate_logits = [], [], [], None
        for flow in self.flows:
            out = flow(frames, memory, mask, mel_lengths, attention_prior)
            frames = out.output
            log_s.append(out.log_s.transpose(1, 2))
            attention.append(out.attention)
            log_probs.append(out.attention_log_probs)
            gate_logits = out.gate_logits
        if mel_lengths is None:
            mel_lengths = torch.full((mel.size(0),), mel.size(2), dtype=torch.long, device=mel.device)
        return FlowtronOutput(frames.transpose(1, 2), log_s, gate_logits, attention, log_probs, mel_lengths)

    def inverse(self, z: torch.Tensor, speaker_ids: torch.Tensor, tokens: torch.Tensor,
                token_lengths: torch.Tensor | None = None, z_lengths: torch.Tensor | None = None,
                gate_threshold: float | None = None, temperature: float = 1.0) -> FlowtronInverseOutput:
        """z (batch, n_mels, n_frames) → mel. `speaker_ids` (batch,) ids, or (batch, speaker_dim)
        float vectors (e.g. an interpolation of two speakers' embeddings). The last flow runs
        first and, with `gate_threshold`, stops each item at its gate; later flows see the
        shortened residual (NVIDIA's `infer`). `temperature` divides the attention energies."""
        memory = self._encode(speaker_ids, tokens, token_lengths)
        mask = None if token_lengths is None else lengths_to_mask(token_lengths, tokens.size(1))
        frames, lengths = z.transpose(1, 2), z_lengths
        attention: list[torch.Tensor] = [z.new_zeros(0)] * len(self.flows)
        gate_logits = None
        for index in reversed(range(len(self.flows))):
            out = self.flows[index].inverse(frames, memory, mask, lengths, gate_threshold, temperature)
            frames, lengths, attention[index] = out.output, out.lengths, out.attention
            gate_logits = out.gate_logits if out.gate_logits is not None else gate_logits
        return FlowtronInverseOutput(frames.transpose(1, 2), lengths, attention, gate_logits)

    @torch.no_grad()
    def infer(self, tokens: torch.Tensor, speaker_id: int | torch.Tensor = 0, sigma: float = 0.5,
              n_frames: int | None = None, gate_threshold: float | None = 0.5,
              generator: torch.Generator | None = None, z_mean: torch.Tensor | None = None,
              token_lengths: torch.Tensor | None = None, temperature: float = 1.0) -> FlowtronInverseOutput:
        """Sample z ~ N(z_mean, sigma²) of shape (batch, n_mels, n_frames) and invert it; call `eval()` first.

        tokens (batch, n_tokens). `n_frames` defaults to the z_mean's frames, else
        `default_n_frames` of the longest text. `z_mean` (1 or batch, n_mels, 1 or n_frames),
        e.g. from `posterior_z`; None is the N(0, sigma²) prior (NVIDIA's `inference.py`)."""
        batch, n_mels = tokens.size(0), self.config.audio.n_mels
        if n_frames is None:
            n_frames = z_mean.size(2) if z_mean is not None and z_mean.size(2) > 1 else default_n_frames(tokens.size(1))
        z = torch.randn(batch, n_mels, n_frames, generator=generator, device=tokens.device) * sigma
        if z_mean is not None:
            z = z + z_mean.to(z.dtype).expand(batch, n_mels, n_frames)
        if isinstance(speaker_id, int):
            speaker_id = torch.full((batch,), speaker_id, dtype=torch.long, device=tokens.device)
        out = self.inverse(z, speaker_id, tokens, token_lengths, None, gate_threshold, temperature)
        if gate_threshold is not None and self.config.flows.use_gate and int(out.mel_lengths.min()) >= n_frames:
            warnings.warn(f"Flowtron used all n_frames={n_frames} without the gate stopping; the speech may be "
                          "cut off (pass a larger n_frames)", stacklevel=3)
        return out

    @torch.no_grad()
    def posterior_z(self, mels: Sequence[torch.Tensor], tokens: Sequence[torch.Tensor],
                    speaker_id: int | Sequence[int] = 0, n_frames: int = 300, aggregation: str = "batch",
                    shrinkage: float = 1e-4) -> torch.Tensor:
        """The posterior mean of z given style samples (NVIDIA's `inference_style_transfer.ipynb`).

        mels: (n_mels, n_frames_i) each, tokens: (n_tokens_i,) each; each is run alone. "batch":
        each z is tiled in time to `n_frames` and averaged over samples → (1, n_mels, n_frames);
        "time_and_batch": averaged over time and samples → (1, n_mels, 1). Then the Gaussian
        shrinkage μ = ratio·z̄/(ratio + 1), ratio = n_samples / `shrinkage` (λ)."""
        if aggregation not in ("batch", "time_and_batch"):
            raise ValueError(f"aggregation: expected 'batch' or 'time_and_batch', found {aggregation!r}")
        if len(mels) != len(tokens) or not mels:
            raise ValueError(f"posterior_z: expected as many mels as texts (≥ 1), found {len(mels)} and {len(tokens)}")
        speakers = [speaker_id] * len(mels) if isinstance(speaker_id, int) else list(speaker_id)
        zs = []
        for mel, text, speaker in zip(mels, tokens, speakers):
            speaker_ids = torch.tensor([speaker], device=mel.device)
            z = self(mel[None], speaker_ids, text[None].to(mel.device)).z  # (1, n_mels, n_frames_i)
            if aggregation == "batch":
                z = z.repeat(1, 1, -(-n_frames // z.size(2)))[:, :, :n_frames]
            else:
                z = z.mean(dim=2, keepdim=True)
            zs.append(z)
        ratio = len(zs) / shrinkage
        return ratio * torch.cat(zs).mean(dim=0, keepdim=True) / (ratio + 1)

    def text_state_dict(self, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A Tacotron 2 / Mellotron state dict of matching text and speaker sizes made into a
        starting point for this Flowtron: its symbol embedding, encoder (convolutions, BiLSTM; the
        BatchNorm's scale and shift become the InstanceNorm's, its running statistics are dropped)
        and speaker embedding, with the flows keeping this model's initialisation. A trained
        encoder gives the flows' attention text keys that already separate the sounds, so it
        aligns sooner. A Flowtron's own dict (no `decoder.` keys) is returned as is."""
        if not any(key.startswith("decoder.") for key in state_dict):
            return state_dict
        own = self.state_dict()
        shared = {key: value for key, value in state_dict.items()
                  if key.startswith(("embedding.", "encoder.", "speaker_embedding."))
                  and not key.endswith(("running_mean", "running_var", "num_batches_tracked"))}
        return {**{key: value for key, value in own.items() if key.startswith("flows.")}, **shared}

    @classmethod
    def from_nvidia_state_dict(cls, state_dict: dict[str, torch.Tensor],
                               config: FlowtronConfig | None = None) -> "Flowtron":
        """A model holding NVIDIA Flowtron weights, in eval mode; the config comes from the shapes."""
        state_dict = {key.removeprefix("module."): value.float() if value.is_floating_point() else value
                      for key, value in state_dict.items()}
        model = cls(config or _config_from_state_dict(state_dict))
        model.load_state_dict(state_dict, strict=True)
        return model.eval()

    def _encode(self, speaker_ids: torch.Tensor, tokens: torch.Tensor,
                token_lengths: torch.Tensor | None) -> torch.Tensor:
        """→ memory (batch, n_tokens, text_dim + speaker_dim): [text encoding, speaker]."""
        if speaker_ids.is_floating_point():
            speakers = speaker_ids  # (batch, speaker_dim) vectors given directly
        else:
            speaker_ids = speaker_ids.reshape(-1)
            speakers = self.speaker_embedding(speaker_ids * 0 if self.config.dummy_speaker_embedding else speaker_ids)
        text = self.encoder(self.embedding(tokens).transpose(1, 2), token_lengths)  # (batch, n_tokens, text_dim)
        speakers = speakers.expand(text.size(0), -1).unsqueeze(1).expand(-1, text.size(1), -1)
        return torch.cat((text, speakers), dim=2)


def flowtron_loss(output: FlowtronOutput, sigma: float = 1.0, gate_loss: bool = True
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """NVIDIA's `FlowtronLoss` (fixed Gaussian): (NLL, gate BCE).

    NLL = [Σ mask·z²/(2σ²) − Σ_flows Σ mask·log_s] / (real frames · n_mels): the negative log
    likelihood per mel value, up to the constant ½·log(2πσ²). Gate: BCE with target 1 from each
    item's last real frame on, averaged over real frames."""
    z, mel_lengths = output.z, output.mel_lengths
    mask = lengths_to_mask(mel_lengths, z.size(2)).unsqueeze(1).to(z.dtype)  # (batch, 1, n_frames)
    count = mask.sum() * z.size(1)
    log_det = sum((log_s * mask).sum() for log_s in output.log_s)
    nll = ((z * mask) ** 2).sum() / (2 * sigma * sigma * count) - log_det / count
    if not gate_loss or output.gate_logits is None:
        return nll, nll.new_zeros(())
    steps = torch.arange(z.size(2), device=z.device).unsqueeze(0)
    target = (steps >= (mel_lengths - 1).unsqueeze(1)).to(z.dtype)
    bce = F.binary_cross_entropy_with_logits(output.gate_logits * mask[:, 0], target, reduction="none")
    return nll, (bce * mask[:, 0]).sum() / mask.sum()


def attention_ctc_loss(attention_log_probs: Sequence[torch.Tensor], token_lengths: torch.Tensor,
                       mel_lengths: torch.Tensor, blank_logprob: float = -8.0) -> torch.Tensor:
    """NVIDIA's `AttentionCTCLoss`, averaged over flows: every token must be visited in order.

    Each flow's log-probabilities (batch, n_frames, n_tokens) get a blank column (log-prob
    `blank_logprob`) in front and a log-softmax over [blank, real tokens]; CTC(zero_infinity) with
    targets 1..n_tokens, divided by the target length, averaged over items (NVIDIA loops over
    items; padded token columns get −1e4 here, which the softmax turns into exactly 0)."""
    ctc = nn.CTCLoss(zero_infinity=True, reduction="none")
    n_tokens = attention_log_probs[0].size(2)
    columns = lengths_to_mask(token_lengths + 1, n_tokens + 1).unsqueeze(1)  # (batch, 1, n_tokens + 1)
    targets = torch.arange(1, n_tokens + 1, device=token_lengths.device).expand(token_lengths.size(0), -1)
    total = 0.0
    for log_probs in attention_log_probs:
        padded = F.pad(log_probs, (1, 0), value=blank_logprob).masked_fill(~columns, -1e4)
        log_softmax = F.log_softmax(padded.float(), dim=2).transpose(0, 1)  # (n_frames, batch, n_tokens + 1)
        losses = ctc(log_softmax, targets, mel_lengths, token_lengths)
        total = total + (losses / token_lengths.to(losses.dtype)).mean()
    return total / len(attention_log_probs)


def looks_like_nvidia_flowtron(state_dict: dict[str, torch.Tensor]) -> bool:
    """True for NVIDIA Flowtron tensor names (with or without a `module.` prefix)."""
    keys = {key.removeprefix("module.") for key in state_dict}
    return {"embedding.weight", "speaker_embedding.weight", "flows.0.attention_lstm.weight_ih_l0"} <= keys


def _config_from_state_dict(state_dict: dict[str, torch.Tensor]) -> FlowtronConfig:
    """The config whose model has exactly these tensor shapes (NVIDIA key names)."""
    def shape(key: str) -> tuple[int, ...]:
        if key not in state_dict:
            raise ConfigError(f"not a Flowtron state dict: expected a tensor {key!r}, found none")
        return tuple(state_dict[key].shape)

    if any(key.startswith(("mel_encoder.", "gaussian_mixture.")) for key in state_dict):
        raise ConfigError("Flowtron with a Gaussian mixture prior (n_components > 1) is not supported")
    n_symbols, text_dim = shape("embedding.weight")
    _check(n_symbols == 185, "embedding.weight", "185 rows (Flowtron's symbol set)", n_symbols)
    n_speakers, speaker_dim = shape("speaker_embedding.weight")
    n_flows = len({int(m[1]) for key in state_dict if (m := re.match(r"flows\.(\d+)\.", key))})
    last = f"flows.{n_flows - 1}." + ("ar_step." if (n_flows - 1) % 2 else "")
    hidden_dim = shape("flows.0.attention_lstm.weight_hh_l0")[1]
    n_convolutions = len({key for key in state_dict if re.fullmatch(r"encoder\.convolutions\.\d+\.0\.conv\.weight", key)})
    return FlowtronConfig(
        audio=AudioConfig(n_mels=shape("flows.0.attention_lstm.weight_ih_l0")[1]),
        text=FLOWTRON_TEXT.replace(p_arpabet=1.0),  # NVIDIA's inference setting (flowtron#19)
        encoder=FlowtronEncoderConfig(embedding_dim=text_dim, n_convolutions=n_convolutions,
                                      kernel_size=shape("encoder.convolutions.0.0.conv.weight")[2]),
        flows=FlowConfig(n_flows=n_flows, hidden_dim=hidden_dim,
                         attention_dim=shape("flows.0.attention_layer.query.linear_layer.weight")[0],
                         n_lstm_layers=sum(1 for key in state_dict if re.fullmatch(r"flows\.0\.lstm\.weight_ih_l\d+", key)),
                         use_gate=last + "gate_layer.linear_layer.weight" in state_dict,
                         cumulative_attention="flows.0.attn_cond_layer.conv_layers.0.conv.weight" in state_dict),
        n_speakers=n_speakers, speaker_embedding_dim=speaker_dim)


def attention_target_loss(attention_log_probs: Sequence[torch.Tensor], target: torch.Tensor,
                          mel_lengths: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each flow's attention against a target alignment, averaged over flows.

    attention_log_probs: per flow (batch, n_frames, n_tokens), the log of the attention's own
    weights (computed with no prior); target (batch, n_frames, n_tokens), rows summing to 1 on real
    frames (e.g. a Tacotron's teacher-forced attention, `tts.conditioning.rhythm`). The loss is
    −Σ_k target·log p per real frame, averaged over frames: it reaches the target's entropy when
    the attention matches it."""
    frames = lengths_to_mask(mel_lengths, target.size(1)).to(target.dtype)  # (batch, n_frames)
    total = 0.0
    for log_probs in attention_log_probs:
        cross_entropy = -(target * log_probs.float()).sum(dim=2)
        total = total + (cross_entropy * frames).sum() / frames.sum()
    return total / len(attention_log_probs)
