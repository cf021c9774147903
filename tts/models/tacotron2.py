"""Tacotron 2 (Shen et al. 2018) with optional Global Style Tokens and a speaker embedding.

Parameter names follow NVIDIA/tacotron2 (`embedding`, `encoder`, `decoder`, `postnet`), so
`tacotron2_statedict.pt` loads strictly (see `nvidia_state_dict_to_ours`); the GST and speaker
parts use Mellotron's names (`gst.*`, `speaker_embedding`). The memory the decoder attends to is
[text encoding, style, speaker] along channels, Mellotron's order.

- `forward(tokens, token_lengths, mel, mel_lengths, ...)`: teacher-forced pass → `Tacotron2Output`
  with mel / mel_postnet (batch, n_mels, n_frames), gate_logits (batch, n_steps) and alignment
  (batch, n_steps, n_tokens); n_steps = ceil(n_frames / r), r = `decoder.frames_per_step`.
  Padded frames are 0 and padded gate logits 1e3 ("stop"), as NVIDIA's `parse_output` does.
- `infer(tokens, ...)`: batched free-running decoding with per-item stopping; same output, plus
  `mel_lengths`.
- `tacotron2_loss`: masked MSE or L1 (mel and postnet; `mel_loss`), masked BCE gate, optional guided attention.
- With a `refiner` (config.refiner, `tts.models.refiner`), `infer`'s mel_postnet is the refiner's mel,
  and `forward(..., refine=True)` is the refiner's training pass (`rehearse`, then `refine`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import warnings
from typing import Callable, Iterator

import torch
from torch import nn
from torch.nn import functional as F

from tts.audio import AudioConfig
from tts.config import Config, TextConfig
from tts.errors import ConfigError
from tts.models.gst import GST
from tts.models.layers import Decoder, Encoder, Postnet, lengths_to_mask
from tts.models.losses import MEL_LOSSES, guided_attention_loss, tacotron2_loss
from tts.models.refiner import Refiner, RefinerConfig

__all__ = ["EncoderConfig", "AttentionConfig", "DecoderConfig", "PostnetConfig", "GSTConfig",
           "GuidedAttentionConfig", "RefinerConfig", "Tacotron2Config", "Tacotron2Output", "Tacotron2",
           "tacotron2_loss", "guided_attention_loss", "self_feedback_schedule"]

_GATE_PADDING = 1e3  # NVIDIA's logit for padded steps: sigmoid(1e3) = 1, "already stopped"


def _check(condition: bool, what: str, expected: str, found: object) -> None:
    if not condition:
        raise ConfigError(f"{what}: expected {expected}, found {found!r}")


def _check_dropout(what: str, value: float) -> None:
    _check(0.0 <= value < 1.0, what, "a probability in [0, 1)", value)


def self_feedback_schedule(share: float, mean_run: float, n_steps: int, batch: int, device: torch.device,
                           generator: torch.Generator | None = None) -> torch.Tensor:
    """Which decoder steps read the decoder's own previous output → bool (n_steps, batch).

    Step 0 always reads the go frame (False). `mean_run` 0: each later step is drawn on its own with
    chance `share`. Otherwise a two-state Markov chain per item, started in its stationary
    distribution: a run of own steps ends with chance 1 / mean_run at each step, and a run of
    recorded steps ends with the chance that keeps the long-run share of own steps at `share`.
    """
    draws = torch.rand(n_steps, batch, device=device, generator=generator)
    if mean_run == 0 or share in (0.0, 1.0):
        own = draws < share
    else:
        leave = 1.0 / mean_run
        enter = share * leave / (1.0 - share)
        own = torch.empty(n_steps, batch, dtype=torch.bool, device=device)
        own[0] = draws[0] < share
        for step in range(1, n_steps):
            own[step] = torch.where(own[step - 1], draws[step] >= leave, draws[step] < enter)
    own[0] = False
    return own


@dataclasses.dataclass(frozen=True)
class EncoderConfig(Config):
    embedding_dim: int = 512  # NVIDIA's symbols_embedding_dim = encoder_embedding_dim
    n_convolutions: int = 3
    kernel_size: int = 5
    dropout: float = 0.5

    def __post_init__(self) -> None:
        _check(self.embedding_dim > 0 and self.embedding_dim % 2 == 0, "encoder.embedding_dim",
               "a positive even number (the BiLSTM halves it)", self.embedding_dim)
        _check(self.n_convolutions >= 0, "encoder.n_convolutions", ">= 0", self.n_convolutions)
        _check(self.kernel_size % 2 == 1, "encoder.kernel_size", "an odd number", self.kernel_size)
        _check_dropout("encoder.dropout", self.dropout)


@dataclasses.dataclass(frozen=True)
class AttentionConfig(Config):
    rnn_dim: int = 1024
    attention_dim: int = 128
    location_n_filters: int = 32
    location_kernel_size: int = 31
    dropout: float = 0.1  # on the attention LSTM's hidden state, training only

    def __post_init__(self) -> None:
        for name in ("rnn_dim", "attention_dim", "location_n_filters"):
            _check(getattr(self, name) > 0, f"attention.{name}", "> 0", getattr(self, name))
        _check(self.location_kernel_size % 2 == 1, "attention.location_kernel_size", "an odd number",
               self.location_kernel_size)
        _check_dropout("attention.dropout", self.dropout)


@dataclasses.dataclass(frozen=True)
class DecoderConfig(Config):
    rnn_dim: int = 1024
    prenet_dim: int = 256
    prenet_n_layers: int = 2
    prenet_dropout: float = 0.5  # on in training and inference (NVIDIA); infer() can override
    dropout: float = 0.1  # on the decoder LSTM's hidden state, training only
    frames_per_step: int = 1  # r; NVIDIA's published model uses 1
    # Training only: the chance, per item and decoder step, that the prenet reads the decoder's own
    # previous output (detached) instead of the recorded frames (scheduled sampling, Bengio et al.
    # 2015). A model that is good teacher-forced but drifts when it runs on its own predictions
    # learns to continue from them. NVIDIA's is 0.
    self_feedback: float = 0.0
    # Mean length, in decoder steps, of a run of steps on the decoder's own output (a Markov switch
    # per item, whose share of own steps stays `self_feedback`). At inference the decoder reads its
    # own frames many steps in a row, so errors compound; independent draws (0, the default) seldom
    # feed it more than one or two in a row. Must be >= 1 and >= self_feedback / (1 - self_feedback).
    self_feedback_run: float = 0.0

    def __post_init__(self) -> None:
        for name in ("rnn_dim", "prenet_dim", "prenet_n_layers"):
            _check(getattr(self, name) > 0, f"decoder.{name}", "> 0", getattr(self, name))
        _check(self.frames_per_step >= 1, "decoder.frames_per_step", ">= 1", self.frames_per_step)
        _check_dropout("decoder.prenet_dropout", self.prenet_dropout)
        _check_dropout("decoder.dropout", self.dropout)
        _check(0.0 <= self.self_feedback <= 1.0, "decoder.self_feedback", "a probability in [0, 1]",
               self.self_feedback)
        if self.self_feedback_run != 0 and self.self_feedback < 1:
            shortest = max(1.0, self.self_feedback / (1 - self.self_feedback))
            _check(self.self_feedback_run >= shortest, "decoder.self_feedback_run",
                   f"0 (independent draws) or >= {shortest:g} steps for self_feedback {self.self_feedback:g}",
                   self.self_feedback_run)


@dataclasses.dataclass(frozen=True)
class PostnetConfig(Config):
    channels: int = 512
    kernel_size: int = 5
    n_convolutions: int = 5
    dropout: float = 0.5

    def __post_init__(self) -> None:
        _check(self.channels > 0, "postnet.channels", "> 0", self.channels)
        _check(self.kernel_size % 2 == 1, "postnet.kernel_size", "an odd number", self.kernel_size)
        _check(self.n_convolutions >= 2, "postnet.n_convolutions", ">= 2", self.n_convolutions)
        _check_dropout("postnet.dropout", self.dropout)


@dataclasses.dataclass(frozen=True)
class GSTConfig(Config):
    """Mellotron's GST hparams: ref_enc_filters, ref_enc_gru_size, token_num, token_embedding_size, num_heads."""

    reference_filters: tuple[int, ...] = (32, 32, 64, 64, 128, 128)
    reference_gru_dim: int = 128
    n_tokens: int = 10
    token_dim: int = 256
    n_heads: int = 8
    mellotron_reshape: bool = True  # see gst.ReferenceEncoder

    def __post_init__(self) -> None:
        _check(len(self.reference_filters) > 0 and all(f > 0 for f in self.reference_filters),
               "gst.reference_filters", "a non-empty list of positive channel counts", self.reference_filters)
        _check(self.reference_gru_dim > 0 and self.n_tokens > 0, "gst.reference_gru_dim / gst.n_tokens", "> 0",
               (self.reference_gru_dim, self.n_tokens))
        _check(self.n_heads > 0 and self.token_dim % self.n_heads == 0, "gst.token_dim",
               f"a multiple of n_heads ({self.n_heads})", self.token_dim)


@dataclasses.dataclass(frozen=True)
class GuidedAttentionConfig(Config):
    """Guided attention loss (Tachibana et al. 2017, §4.1): weight 0 turns it off."""

    weight: float = 0.0
    sigma: float = 0.2

    def __post_init__(self) -> None:
        _check(self.weight >= 0, "guided_attention.weight", ">= 0", self.weight)
        _check(self.sigma > 0, "guided_attention.sigma", "> 0", self.sigma)


@dataclasses.dataclass(frozen=True)
class Tacotron2Config(Config):
    audio: AudioConfig = dataclasses.field(default_factory=AudioConfig)
    text: TextConfig = dataclasses.field(default_factory=TextConfig)
    encoder: EncoderConfig = dataclasses.field(default_factory=EncoderConfig)
    attention: AttentionConfig = dataclasses.field(default_factory=AttentionConfig)
    decoder: DecoderConfig = dataclasses.field(default_factory=DecoderConfig)
    postnet: PostnetConfig = dataclasses.field(default_factory=PostnetConfig)
    gst: GSTConfig | None = None
    n_speakers: int = 0  # 0: no speaker embedding
    speaker_embedding_dim: int = 0
    guided_attention: GuidedAttentionConfig = dataclasses.field(default_factory=GuidedAttentionConfig)
    mel_loss: str = "mse"  # NVIDIA's; "l1" predicts the median frame, less blurred (tacotron2_loss)
    refiner: RefinerConfig | None = None  # voxflow's; None: NVIDIA's model

    def __post_init__(self) -> None:
        _check(self.mel_loss in MEL_LOSSES, "mel_loss", f"one of {MEL_LOSSES}", self.mel_loss)
        _check(self.n_speakers >= 0 and self.speaker_embedding_dim >= 0, "n_speakers / speaker_embedding_dim",
               ">= 0", (self.n_speakers, self.speaker_embedding_dim))
        _check((self.n_speakers == 0) == (self.speaker_embedding_dim == 0), "n_speakers / speaker_embedding_dim",
               "both 0 (no speaker embedding) or both > 0", (self.n_speakers, self.speaker_embedding_dim))

    @property
    def n_symbols(self) -> int:
        return self.text.n_symbols

    @property
    def memory_dim(self) -> int:
        """Channels of the memory the decoder attends to: text + style + speaker."""
        return self.encoder.embedding_dim + (self.gst.token_dim if self.gst else 0) + self.speaker_embedding_dim


@dataclasses.dataclass
class Tacotron2Output:
    mel: torch.Tensor  # (batch, n_mels, n_frames), before the postnet
    mel_postnet: torch.Tensor  # (batch, n_mels, n_frames)
    gate_logits: torch.Tensor  # (batch, n_steps); n_steps = n_frames / r
    alignment: torch.Tensor  # (batch, n_steps, n_tokens)
    mel_lengths: torch.Tensor  # (batch,) frames per item
    frames_per_step: int = 1  # r: how many mel frames each alignment row (decoder step) covers
    # (batch, n_steps, memory_dim): the attention context each step read; free-running passes only
    context: torch.Tensor | None = None

    def frame_alignment(self) -> torch.Tensor:
        """The attention per mel frame: (batch, n_frames, n_tokens), each step's row repeated over its r frames."""
        return self._per_frame(self.alignment)

    def frame_context(self) -> torch.Tensor:
        """The attention context per mel frame: (batch, n_frames, memory_dim)."""
        if self.context is None:
            raise ValueError("this output has no attention contexts: only free-running passes (infer, rehearse) "
                             "keep them")
        return self._per_frame(self.context)

    def _per_frame(self, steps: torch.Tensor) -> torch.Tensor:
        return steps.repeat_interleave(self.frames_per_step, dim=1)[:, :self.mel.size(2)]


class Tacotron2(nn.Module):
    """Tacotron 2 (+ GST, + speaker embedding); see the module docstring for shapes."""

    config_class = Tacotron2Config
    display_name = "Tacotron 2"

    def __init__(self, config: Tacotron2Config) -> None:
        super().__init__()
        self.config = config
        n_symbols, channels = config.n_symbols, config.encoder.embedding_dim
        self.embedding = nn.Embedding(n_symbols, channels)
        bound = math.sqrt(3.0) * math.sqrt(2.0 / (n_symbols + channels))  # NVIDIA's uniform init
        nn.init.uniform_(self.embedding.weight, -bound, bound)
        self.encoder = Encoder(channels, config.encoder.n_convolutions, config.encoder.kernel_size,
                               config.encoder.dropout)
        attention, decoder = config.attention, config.decoder
        self.decoder = Decoder(config.audio.n_mels, decoder.frames_per_step, config.memory_dim, decoder.prenet_dim,
                               decoder.prenet_n_layers, attention.rnn_dim, attention.attention_dim,
                               attention.location_n_filters, attention.location_kernel_size, decoder.rnn_dim,
                               attention.dropout, decoder.dropout)
        self.postnet = Postnet(config.audio.n_mels, config.postnet.channels, config.postnet.kernel_size,
                               config.postnet.n_convolutions, config.postnet.dropout)
        gst = config.gst
        self.gst = None if gst is None else GST(config.audio.n_mels, gst.reference_filters, gst.reference_gru_dim,
                                                gst.n_tokens, gst.token_dim, gst.n_heads, gst.mellotron_reshape)
        self.speaker_embedding = (nn.Embedding(config.n_speakers, config.speaker_embedding_dim)
                                  if config.n_speakers else None)
        self.refiner = None if config.refiner is None else Refiner(config.audio.n_mels, config.memory_dim,
                                                                   config.refiner)

    @property
    def frames_per_step(self) -> int:
        return self.config.decoder.frames_per_step

    def forward(self, tokens: torch.Tensor, token_lengths: torch.Tensor, mel: torch.Tensor,
                mel_lengths: torch.Tensor, speaker_id: torch.Tensor | None = None,
                style_mel: torch.Tensor | None = None, prenet_dropout: float | None = None,
                generator: torch.Generator | None = None, refine: bool = False,
                reference_style: torch.Tensor | None = None) -> Tacotron2Output:
        """Teacher-forced pass. tokens (batch, n_tokens) int64, token_lengths (batch,), mel
        (batch, n_mels, n_frames) zero-padded, mel_lengths (batch,), speaker_id (batch,) when the
        model has speakers; the GST style comes from `style_mel` or, by default, the target mel.
        `prenet_dropout` defaults to the config's (on even in eval mode, as in NVIDIA's code).
        `refine=True`: the refiner's training pass instead (`rehearse`, then `refine` into
        mel_postnet; only the refiner gets gradients)."""
        if refine:
            return self._rehearse_and_refine(tokens, token_lengths, mel, mel_lengths, speaker_id, reference_style,
                                             generator)
        return self._teacher_forced(tokens, token_lengths, mel, mel_lengths, speaker_id, style_mel, prenet_dropout,
                                    generator)

    @torch.no_grad()
    def infer(self, tokens: torch.Tensor, token_lengths: torch.Tensor | None = None,
              speaker_id: torch.Tensor | int | None = None, style: torch.Tensor | int | None = None,
              gate_threshold: float = 0.5, max_decoder_steps: int = 1000, prenet_dropout: float | None = None,
              generator: torch.Generator | None = None) -> Tacotron2Output:
        """Free-running decoding of a batch; call `eval()` first. A model with a refiner returns its
        mel as mel_postnet.

        Each item stops at the first step whose sigmoid(gate) > `gate_threshold` (that step's
        frames are kept, as in NVIDIA's loop); later frames of a stopped item are masked to 0.
        `speaker_id`: ids (batch,), one id, or float speaker vectors (batch, speaker_embedding_dim).
        `style` (GST models only): a reference mel (batch or 1, n_mels, n_frames), token
        weights (batch or 1, n_tokens), a token index, `gst.StyleVectors`, or None for equal
        token weights.
        `prenet_dropout` defaults to the config's (NVIDIA: 0.5 at inference; 0 is
        deterministic); its masks come from `generator`, which must live on the model's device.
        """
        batch = tokens.size(0)
        memory = self._encode(tokens, token_lengths, speaker_id, self._inference_style(style, batch))
        token_mask = None if token_lengths is None else lengths_to_mask(token_lengths, tokens.size(1))
        dropout = self.config.decoder.prenet_dropout if prenet_dropout is None else prenet_dropout
        frames, gate_logits, alignment, context, n_steps = self._decode_free(
            memory, token_mask, gate_threshold, max_decoder_steps, dropout, generator)
        return self._refined(self._finish(frames, gate_logits, alignment, n_steps * self.frames_per_step, None,
                                          context))

    def refine(self, output: Tacotron2Output) -> torch.Tensor:
        """The refiner's mel (batch, n_mels, n_frames) for a free-running output (infer, rehearse)."""
        if self.refiner is None:
            raise ValueError(f"this {self.display_name} has no refiner (config.refiner is None)")
        mask = lengths_to_mask(output.mel_lengths, output.mel.size(2))
        return self.refiner(output.mel, output.frame_context().transpose(1, 2), mask)

    def rehearse(self, tokens: torch.Tensor, token_lengths: torch.Tensor, mel: torch.Tensor,
                 mel_lengths: torch.Tensor, speaker_id: torch.Tensor | None = None,
                 reference_style: torch.Tensor | None = None,
                 generator: torch.Generator | None = None) -> Tacotron2Output:
        """What inference makes of a recorded clip's text, frame for frame beside the recording: the
        decoder runs free on its own output (prenet dropout on, everything else as in eval mode),
        its attention forced to that of a teacher-forced pass over `mel`, so item i has exactly
        mel_lengths[i] frames. Shapes as `forward`; mel_postnet is the postnet's (not refined).
        `reference_style` (batch,) bool: items that decode with their own GST style (the others
        with the style inference takes without a reference; default: all their own)."""
        return self._rehearse(tokens, token_lengths, mel, mel_lengths, speaker_id, reference_style, generator)

    @torch.no_grad()
    def _rehearse(self, tokens: torch.Tensor, token_lengths: torch.Tensor, mel: torch.Tensor,
                  mel_lengths: torch.Tensor, speaker_id: torch.Tensor | None, reference_style: torch.Tensor | None,
                  generator: torch.Generator | None,
                  step_features: Callable[[torch.Tensor, int | None], torch.Tensor] | None = None
                  ) -> Tacotron2Output:
        """`rehearse`'s body; `step_features(memory, n_steps or None)`: Mellotron's F0 features."""
        batch = tokens.size(0)
        with self._frozen_as_at_inference():
            aligned = self._teacher_forced(tokens, token_lengths, mel, mel_lengths, speaker_id, None, None,
                                           generator, step_features)
            style = None
            if self.gst is not None:
                style = self.gst(mel)
                if reference_style is not None:
                    style = torch.where(reference_style.unsqueeze(1), style, self.gst.style(None, batch))
            memory = self._encode(tokens, token_lengths, speaker_id, style)
            forced = aligned.alignment.transpose(0, 1)  # (n_steps, batch, n_tokens); padded steps are 0
            extras = None if step_features is None else step_features(memory, None)
            frames, gate_logits, alignment, context, _ = self._decode_free(
                memory, lengths_to_mask(token_lengths, tokens.size(1)), 0.5, forced.size(0),
                self.config.decoder.prenet_dropout, generator, extras, forced)
            return self._finish(frames, gate_logits, alignment, mel_lengths, mel.size(2), context)

    @contextlib.contextmanager
    def _frozen_as_at_inference(self) -> Iterator[None]:
        """Eval mode inside (no LSTM dropout, BatchNorm's running statistics used, not updated)."""
        was_training = self.training
        self.eval()
        try:
            yield
        finally:
            self.train(was_training)

    def _rehearse_and_refine(self, tokens: torch.Tensor, token_lengths: torch.Tensor, mel: torch.Tensor,
                             mel_lengths: torch.Tensor, speaker_id: torch.Tensor | None,
                             reference_style: torch.Tensor | None, generator: torch.Generator | None,
                             step_features: Callable[[torch.Tensor, int | None], torch.Tensor] | None = None
                             ) -> Tacotron2Output:
        if self.refiner is None:
            raise ValueError(f"forward(refine=True) needs a refiner; this {self.display_name} has none")
        output = self._rehearse(tokens, token_lengths, mel, mel_lengths, speaker_id, reference_style, generator,
                                step_features)
        output.mel_postnet = self.refine(output)
        return output

    def _refined(self, output: Tacotron2Output) -> Tacotron2Output:
        if self.refiner is not None:
            output.mel_postnet = self.refine(output)
        return output

    @classmethod
    def from_nvidia_state_dict(cls, state_dict: dict[str, torch.Tensor],
                               config: Tacotron2Config | None = None) -> "Tacotron2":
        """A model holding NVIDIA (or DeepLearningExamples) Tacotron 2 weights, in eval mode;
        the config is read from the tensor shapes when not given."""
        from tts.models.presets import nvidia_config_from_state_dict, nvidia_state_dict_to_ours

        state_dict = nvidia_state_dict_to_ours(state_dict)
        model = cls(config or nvidia_config_from_state_dict(state_dict))
        model.load_state_dict(state_dict, strict=True)
        return model.eval()

    def _encode(self, tokens: torch.Tensor, token_lengths: torch.Tensor | None,
                speaker_id: torch.Tensor | int | None, style: torch.Tensor | None) -> torch.Tensor:
        """→ memory (batch, n_tokens, memory_dim): [text, style, speaker] along channels."""
        memory = self.encoder(self.embedding(tokens).transpose(1, 2), token_lengths)
        batch, n_tokens, _ = memory.shape
        extras = [] if style is None else [style]
        if self.speaker_embedding is None:
            if speaker_id is not None:
                raise ValueError("this Tacotron 2 has no speaker embedding (n_speakers=0); pass speaker_id=None")
        else:
            if speaker_id is None:
                raise ValueError(f"this Tacotron 2 has {self.config.n_speakers} speakers; pass speaker_id")
            if isinstance(speaker_id, int):
                speaker_id = torch.full((batch,), speaker_id, dtype=torch.long, device=tokens.device)
            # float rows are speaker vectors (points between speakers), as Flowtron takes them
            extras.append(speaker_id.to(memory.dtype) if speaker_id.is_floating_point()
                          else self.speaker_embedding(speaker_id))
        if not extras:
            return memory
        extras = [extra.expand(batch, -1).unsqueeze(1).expand(-1, n_tokens, -1) for extra in extras]
        return torch.cat([memory, *extras], dim=2)

    def _teacher_forced(self, tokens: torch.Tensor, token_lengths: torch.Tensor, mel: torch.Tensor,
                        mel_lengths: torch.Tensor, speaker_id: torch.Tensor | None, style_mel: torch.Tensor | None,
                        prenet_dropout: float | None, generator: torch.Generator | None,
                        extra_features=None) -> Tacotron2Output:
        """`forward`'s body; `extra_features(memory, n_steps)` → (≥ n_steps, batch, dim) step inputs."""
        r, (batch, n_mels, n_frames) = self.frames_per_step, mel.shape
        n_steps = -(-n_frames // r)
        style = None if self.gst is None else self.gst(mel if style_mel is None else style_mel)
        memory = self._encode(tokens, token_lengths, speaker_id, style)
        token_mask = lengths_to_mask(token_lengths, tokens.size(1))
        padded = F.pad(mel, (0, n_steps * r - n_frames))  # pad targets to a multiple of r
        # (batch, n_mels, n_steps * r) → (n_steps, batch, n_mels * r): a step's r frames side by side
        targets = padded.transpose(1, 2).reshape(batch, n_steps, n_mels * r).transpose(0, 1)
        inputs = torch.cat((targets.new_zeros(1, batch, n_mels * r), targets[:-1]))  # go frame, then step t-1
        dropout = self.config.decoder.prenet_dropout if prenet_dropout is None else prenet_dropout
        features = self.decoder.prenet(inputs, dropout, generator)
        # Mellotron: per-step F0 features beside the prenet's
        extras = None if extra_features is None else extra_features(memory, n_steps)[:n_steps]
        feedback = self.config.decoder.self_feedback if self.training else 0.0
        own = None if feedback == 0 else self_feedback_schedule(
            feedback, self.config.decoder.self_feedback_run, n_steps, batch, mel.device, generator).unsqueeze(2)
        state = self.decoder.initial_state(memory)
        processed_memory = self.decoder.attention_layer.memory_layer(memory)
        frames, gate_logits, alignment = [], [], []
        for step in range(n_steps):
            step_features = features[step]
            if own is not None and bool(own[step].any()):
                own_features = self.decoder.prenet(frames[-1].detach(), dropout, generator)
                step_features = torch.where(own[step], own_features, step_features)
            if extras is not None:
                step_features = torch.cat((step_features, extras[step]), dim=1)
            step_frames, gate_logit, state = self.decoder.step(step_features, state, memory, processed_memory,
                                                               token_mask)
            frames.append(step_frames)
            gate_logits.append(gate_logit)
            alignment.append(state.attention_weights)
        return self._finish(torch.stack(frames), torch.stack(gate_logits), torch.stack(alignment), mel_lengths,
                            n_frames)

    def _inference_style(self, style: torch.Tensor | int | None, batch: int) -> torch.Tensor | None:
        if self.gst is None:
            if style is not None:
                raise ValueError("this Tacotron 2 has no GST (config.gst is None); pass style=None")
            return None
        return self.gst.style(style, batch)

    def _decode_free(self, memory: torch.Tensor, token_mask: torch.Tensor | None, gate_threshold: float,
                     max_steps: int, dropout: float, generator: torch.Generator | None,
                     extra_features: torch.Tensor | None = None, forced: torch.Tensor | None = None):
        """The inference loop → frames (n_steps, batch, n_mels * r), gate logits (n_steps, batch),
        alignment (n_steps, batch, n_tokens), attention contexts (n_steps, batch, memory_dim), steps
        per item (batch,). Buffers are allocated once;
        on GPU the all-stopped test (a device sync) runs only every 16 steps. Mellotron adds
        `extra_features` (steps, batch, dim) beside the prenet's (zeros past their end) and
        `forced` attention (n_steps, batch, n_tokens): exactly n_steps, no stop gate."""
        max_steps = max_steps if forced is None else forced.size(0)
        batch, n_tokens, _ = memory.shape
        frames = memory.new_zeros(max_steps, batch, self.decoder.linear_projection.linear_layer.out_features)
        gate_logits = memory.new_zeros(max_steps, batch)
        alignment = memory.new_zeros(max_steps, batch, n_tokens)
        context = memory.new_zeros(max_steps, batch, memory.size(2))
        n_steps = torch.full((batch,), max_steps, dtype=torch.long, device=memory.device)
        stopped = torch.zeros(batch, dtype=torch.bool, device=memory.device)
        check_every = 1 if memory.device.type == "cpu" else 16
        state = self.decoder.initial_state(memory)
        processed_memory = self.decoder.attention_layer.memory_layer(memory)
        previous = frames.new_zeros(batch, frames.size(2))  # the go frame
        no_extra = None if extra_features is None else torch.zeros_like(extra_features[0])
        for step in range(max_steps):
            features = self.decoder.prenet(previous, dropout, generator)
            if extra_features is not None:
                features = torch.cat((features, extra_features[step] if step < len(extra_features) else no_extra), 1)
            previous, gate_logit, state = self.decoder.step(features, state, memory, processed_memory, token_mask,
                                                            None if forced is None else forced[step])
            frames[step], gate_logits[step], alignment[step] = previous, gate_logit, state.attention_weights
            context[step] = state.attention_context
            if forced is None:
                stopping = (torch.sigmoid(gate_logit) > gate_threshold) & ~stopped
                n_steps.masked_fill_(stopping, step + 1)
                stopped |= stopping
                if (step + 1) % check_every == 0 and bool(stopped.all()):
                    break
        if forced is None and not bool(stopped.all()):
            warnings.warn(f"{self.display_name} reached max_decoder_steps={max_steps} before "
                          f"{int((~stopped).sum())} of {batch} item(s) predicted a stop; their audio may be cut off",
                          stacklevel=4)
        total = int(n_steps.max())
        return frames[:total], gate_logits[:total], alignment[:total], context[:total], n_steps

    def _finish(self, frames: torch.Tensor, gate_logits: torch.Tensor, alignment: torch.Tensor,
                mel_lengths: torch.Tensor, n_frames: int | None,
                context: torch.Tensor | None = None) -> Tacotron2Output:
        """Step-major decoder outputs → batch-first, masked outputs with the postnet applied."""
        r, (n_steps, batch, _) = self.frames_per_step, frames.shape
        # (n_steps, batch, n_mels * r) → (batch, n_mels, n_steps * r)
        mel = frames.transpose(0, 1).reshape(batch, n_steps * r, -1).transpose(1, 2)
        mel = mel[:, :, :n_frames] if n_frames is not None else mel
        frame_mask = lengths_to_mask(mel_lengths, mel.size(2))
        step_mask = lengths_to_mask(-(-mel_lengths // r), n_steps)
        mel = mel.masked_fill(~frame_mask.unsqueeze(1), 0.0)
        mel_postnet = (mel + self.postnet(mel, frame_mask)).masked_fill(~frame_mask.unsqueeze(1), 0.0)
        gate_logits = gate_logits.transpose(0, 1).masked_fill(~step_mask, _GATE_PADDING)
        alignment = alignment.transpose(0, 1).masked_fill(~step_mask.unsqueeze(2), 0.0)
        if context is not None:
            context = context.transpose(0, 1).masked_fill(~step_mask.unsqueeze(2), 0.0)
        return Tacotron2Output(mel, mel_postnet, gate_logits, alignment, mel_lengths, r, context)
