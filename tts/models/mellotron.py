"""Mellotron (Valle et al. 2020): Tacotron 2 + GST + speaker embedding + an explicit F0 input.

A composition of Tacotron 2's blocks (`Tacotron2` is subclassed; its encoder, postnet, GST,
speaker embedding, memory layout and output masking are reused): the only new block is
`decoder.prenet_f0`, a bias-free 1×1 conv + ReLU over the F0 contour **in Hz**, whose output
is concatenated to each decoder step's prenet features (NVIDIA/mellotron `model.py`). Key names
are NVIDIA's, so `mellotron_libritts.pt` (136 tensors) loads strictly via `from_nvidia_state_dict`.

Shapes: tokens (batch, n_tokens); mel (batch, n_mels, n_frames); f0 (batch, n_frames) Hz, 0 =
unvoiced; alignment (batch, n_frames, n_tokens). With r = frames_per_step > 1 the decoder
reads the F0 of each step's first frame and a given alignment's rows every r frames.

- `forward(tokens, token_lengths, mel, mel_lengths, f0=...)`: teacher-forced (training, alignment).
- `infer(tokens, speaker_id=, style=, f0=, alignment=)`: f0=None feeds zeros, which lets the
  model choose the pitch (NVIDIA's plain inference: "Tacotron 2 + GST + speaker"); F0 frames past
  the contour are 0, as in NVIDIA's loop. `alignment` forces the attention and runs exactly its
  frame count with no stop gate (NVIDIA's `inference_noattention`, i.e. rhythm transfer).
  `pitch_shift` (semitones) and `pitch_scale` transform the contour.
- `align(...)` / `transfer(...)`: rhythm from a teacher-forced pass over a reference recording,
  then synthesis with rhythm, pitch and GST style each switchable.
"""

from __future__ import annotations

import dataclasses

import torch
from torch.nn import functional as F

from tts.config import Config, TextConfig
from tts.errors import ConfigError
from tts.models.layers import ConvNorm, Decoder, DecoderState, lengths_to_mask
from tts.models.tacotron2 import GSTConfig, Tacotron2, Tacotron2Config, Tacotron2Output

__all__ = ["PitchConfig", "MellotronConfig", "MellotronDecoder", "Mellotron", "MELLOTRON_PRESETS",
           "mellotron_preset", "looks_like_nvidia_mellotron", "LIBRITTS_SPEAKERS"]

# nvidia-models.md §4.3: positions in the string-sorted unique speaker ids of the LibriTTS
# training filelist (so "1069" → 0, "118" → 3, "887" → 122).
LIBRITTS_SPEAKERS: tuple[str, ...] = tuple("""
1069 1088 1116 118 1246 125 1263 1502 1578 1841 1867 196 1963 1970 200 2092 2136 2182 2196 2289 2416 2436 250 254
2836 2843 2911 2952 3240 3242 3259 3436 3486 3526 3664 374 3857 3879 3982 3983 40 4018 405 4051 4088 4160 4195 4267
4297 4362 4397 4406 446 460 4640 4680 4788 5022 5104 5322 5339 5393 5652 5678 5703 5750 5808 587 6019 6064 6078 6081
6147 6181 6209 6272 6367 6385 6415 6437 6454 6476 6529 669 6818 6836 6848 696 7059 7067 7078 7178 7190 7226 7278 730
7302 7367 7402 7447 7505 7511 7794 78 7800 8051 8088 8098 8108 8123 8238 83 831 8312 8324 8419 8468 8609 8629 87
8770 8838 887""".split())


def _check(condition: bool, what: str, expected: str, found: object) -> None:
    if not condition:
        raise ConfigError(f"{what}: expected {expected}, found {found!r}")


@dataclasses.dataclass(frozen=True)
class PitchConfig(Config):
    """Mellotron's F0 hparams: prenet_f0_dim / kernel and the YIN settings its features used."""

    prenet_dim: int = 1
    prenet_kernel_size: int = 1
    f0_min: float = 80.0
    f0_max: float = 880.0
    harm_thresh: float = 0.25
    method: str = "yin"  # "yin" (NVIDIA's features) or "pyin"
    # Training only: the chance that a clip's contour is replaced by zeros, so that the model also
    # learns to choose the pitch itself (inference with f0=None feeds zeros). NVIDIA's is 0.
    f0_dropout: float = 0.0

    def __post_init__(self) -> None:
        _check(self.prenet_dim > 0, "pitch.prenet_dim", "> 0", self.prenet_dim)
        _check(self.prenet_kernel_size % 2 == 1, "pitch.prenet_kernel_size", "an odd number", self.prenet_kernel_size)
        _check(0 < self.f0_min < self.f0_max, "pitch.f0_min / f0_max", "0 < f0_min < f0_max",
               (self.f0_min, self.f0_max))
        _check(self.method in ("yin", "pyin"), "pitch.method", "'yin' or 'pyin'", self.method)
        _check(0.0 <= self.f0_dropout <= 1.0, "pitch.f0_dropout", "a probability in [0, 1]", self.f0_dropout)


@dataclasses.dataclass(frozen=True)
class MellotronConfig(Tacotron2Config):
    """Tacotron 2's config with Mellotron's defaults (nvidia-models.md §4): 185 symbols with the
    word-level ARPAbet path, GST, 123 speakers × 128, and the F0 prenet."""

    text: TextConfig = dataclasses.field(default_factory=lambda: TextConfig(
        symbol_set="mellotron", cleaners=("english_cleaners",), p_arpabet=1.0))
    gst: GSTConfig | None = dataclasses.field(default_factory=GSTConfig)
    n_speakers: int = 123
    speaker_embedding_dim: int = 128
    pitch: PitchConfig = dataclasses.field(default_factory=PitchConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self.n_speakers > 0, "n_speakers", "> 0 (Mellotron always has a speaker embedding)", self.n_speakers)


def mellotron_preset(name: str) -> MellotronConfig:
    """"nvidia" (NVIDIA's hparams), "small" and "tiny": Tacotron 2's presets of that name + Mellotron's parts."""
    from tts.models.presets import tacotron2_preset

    base = tacotron2_preset(name)
    fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(Tacotron2Config)}
    fields.update(text=MellotronConfig().text, gst=GSTConfig(), n_speakers=123, speaker_embedding_dim=128)
    if name != "nvidia":
        fields.update(gst=GSTConfig(reference_filters=(32, 32, 64, 64), reference_gru_dim=64, token_dim=128),
                      speaker_embedding_dim=32 if name == "tiny" else 64)
    return MellotronConfig(**fields)


MELLOTRON_PRESETS = ("nvidia", "small", "tiny")


class MellotronDecoder(Decoder):
    """Tacotron 2's decoder plus `prenet_f0`; training also drops the LSTM *cell* states (NVIDIA's
    `decode` does, Tacotron 2's does not). Each cell state is only read by the next step, so
    dropping it after the parent's step is the same computation."""

    def __init__(self, *args, f0_dim: int = 1, f0_kernel_size: int = 1, **kwargs) -> None:
        super().__init__(*args, extra_input_dim=f0_dim, **kwargs)
        self.prenet_f0 = ConvNorm(1, f0_dim, f0_kernel_size, bias=False)

    def f0_features(self, f0: torch.Tensor) -> torch.Tensor:
        """f0 (batch, n_steps) Hz → (n_steps + 1, batch, f0_dim): NVIDIA appends one zero frame,
        then conv + ReLU."""
        features = F.relu(self.prenet_f0(F.pad(f0, (0, 1)).unsqueeze(1)))  # (batch, f0_dim, n_steps + 1)
        return features.permute(2, 0, 1)

    def step(self, features: torch.Tensor, state: DecoderState, memory: torch.Tensor,
             processed_memory: torch.Tensor, mask: torch.Tensor | None,
             attention_weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, DecoderState]:
        frames, gate_logit, state = super().step(features, state, memory, processed_memory, mask, attention_weights)
        if self.training:
            state = dataclasses.replace(
                state, attention_cell=F.dropout(state.attention_cell, self.attention_dropout, True),
                decoder_cell=F.dropout(state.decoder_cell, self.decoder_dropout, True))
        return frames, gate_logit, state


class Mellotron(Tacotron2):
    """Tacotron 2 + GST + speaker + F0 (see the module docstring for shapes and modes)."""

    config_class = MellotronConfig
    display_name = "Mellotron"
    nvidia_speaker_names: tuple[str, ...] = ()

    def __init__(self, config: MellotronConfig) -> None:
        super().__init__(config)
        attention, decoder = config.attention, config.decoder
        # replaces Tacotron 2's decoder: same blocks and key names, plus `prenet_f0`
        self.decoder = MellotronDecoder(
            config.audio.n_mels, decoder.frames_per_step, config.memory_dim, decoder.prenet_dim,
            decoder.prenet_n_layers, attention.rnn_dim, attention.attention_dim, attention.location_n_filters,
            attention.location_kernel_size, decoder.rnn_dim, attention.dropout, decoder.dropout,
            f0_dim=config.pitch.prenet_dim, f0_kernel_size=config.pitch.prenet_kernel_size)

    def forward(self, tokens: torch.Tensor, token_lengths: torch.Tensor, mel: torch.Tensor,
                mel_lengths: torch.Tensor, f0: torch.Tensor | None = None, speaker_id: torch.Tensor | None = None,
                style_mel: torch.Tensor | None = None, prenet_dropout: float | None = None,
                generator: torch.Generator | None = None, refine: bool = False,
                reference_style: torch.Tensor | None = None) -> Tacotron2Output:
        """Teacher-forced pass: as `Tacotron2.forward`, plus f0 (batch, n_frames) Hz (None: zeros).
        Step t reads the F0 of the frame it predicts (NVIDIA: `f0s[len(mel_outputs)]`).
        `refine=True`: the refiner's training pass, both of its passes reading `f0`."""
        def f0_features(memory: torch.Tensor, n_steps: int | None) -> torch.Tensor:
            return self._f0_features(f0, memory, n_steps)

        if refine:
            return self._rehearse_and_refine(tokens, token_lengths, mel, mel_lengths, speaker_id, reference_style,
                                             generator, f0_features)
        return self._teacher_forced(tokens, token_lengths, mel, mel_lengths, speaker_id, style_mel, prenet_dropout,
                                    generator, f0_features)

    @torch.no_grad()
    def infer(self, tokens: torch.Tensor, token_lengths: torch.Tensor | None = None,
              speaker_id: torch.Tensor | int | None = None, style: torch.Tensor | int | None = None,
              f0: torch.Tensor | None = None, alignment: torch.Tensor | None = None, pitch_shift: float = 0.0,
              pitch_scale: float = 1.0, gate_threshold: float = 0.5, max_decoder_steps: int = 1000,
              prenet_dropout: float | None = None, generator: torch.Generator | None = None) -> Tacotron2Output:
        """Generation (call `eval()` first). f0 (batch or 1, n_frames) Hz or None (zeros: the model
        chooses pitch); alignment (batch or 1, n_frames, n_tokens) forces the rhythm; `style` as
        in `Tacotron2.infer`; the other knobs as there. Returns mel_lengths per item."""
        batch = tokens.size(0)
        memory = self._encode(tokens, token_lengths, speaker_id, self._inference_style(style, batch))
        token_mask = None if token_lengths is None else lengths_to_mask(token_lengths, tokens.size(1))
        if f0 is not None:
            f0 = f0.reshape(-1, f0.size(-1)).expand(batch, -1) * pitch_scale * 2.0 ** (pitch_shift / 12.0)
        forced = None
        if alignment is not None:  # (batch, n_frames, n_tokens) → step-major (n_steps, batch, n_tokens)
            forced = alignment.reshape(-1, *alignment.shape[-2:]).expand(batch, -1, -1)
            forced = forced[:, ::self.frames_per_step].transpose(0, 1).to(memory.dtype)
        dropout = self.config.decoder.prenet_dropout if prenet_dropout is None else prenet_dropout
        frames, gate_logits, steps_alignment, context, n_steps = self._decode_free(
            memory, token_mask, gate_threshold, max_decoder_steps, dropout, generator,
            self._f0_features(f0, memory, None), forced)
        if alignment is None:
            return self._refined(self._finish(frames, gate_logits, steps_alignment, n_steps * self.frames_per_step,
                                              None, context))
        n_frames = alignment.size(-2)
        return self._refined(self._finish(frames, gate_logits, steps_alignment, torch.full_like(n_steps, n_frames),
                                          n_frames, context))

    def rehearse(self, tokens: torch.Tensor, token_lengths: torch.Tensor, mel: torch.Tensor,
                 mel_lengths: torch.Tensor, speaker_id: torch.Tensor | None = None,
                 reference_style: torch.Tensor | None = None, generator: torch.Generator | None = None,
                 f0: torch.Tensor | None = None) -> Tacotron2Output:
        """`Tacotron2.rehearse`, both passes reading f0 (batch, n_frames) Hz (None: zeros)."""
        return self._rehearse(tokens, token_lengths, mel, mel_lengths, speaker_id, reference_style, generator,
                              lambda memory, n_steps: self._f0_features(f0, memory, n_steps))

    @torch.no_grad()
    def align(self, tokens: torch.Tensor, mel: torch.Tensor, f0: torch.Tensor | None = None,
              speaker_id: torch.Tensor | int | None = None, prenet_dropout: float | None = None,
              generator: torch.Generator | None = None) -> torch.Tensor:
        """Rhythm: the attention of a teacher-forced pass over a recording of `tokens` (NVIDIA uses
        the model as a forced aligner). tokens (1, n_tokens), mel (1, n_mels, n_frames), f0 (1,
        n_frames) → alignment (1, n_frames, n_tokens), each step's row repeated over its r frames."""
        if isinstance(speaker_id, int):
            speaker_id = torch.tensor([speaker_id], device=tokens.device)
        lengths = torch.tensor([tokens.size(1)], device=tokens.device)
        output = self(tokens, lengths, mel, torch.tensor([mel.size(2)], device=mel.device), f0=f0,
                      speaker_id=speaker_id, prenet_dropout=prenet_dropout, generator=generator)
        return output.frame_alignment()

    @torch.no_grad()
    def transfer(self, tokens: torch.Tensor, reference_mel: torch.Tensor, reference_f0: torch.Tensor | None,
                 speaker_id: int | torch.Tensor, reference_speaker_id: int | torch.Tensor | None = None,
                 rhythm: bool = True, pitch: bool = True, gst: bool = True, pitch_shift: float = 0.0,
                 pitch_scale: float = 1.0, **infer_options) -> Tacotron2Output:
        """Style transfer from a reference recording whose transcript is `tokens` (1, n_tokens):
        reference_mel (1, n_mels, n_frames), reference_f0 (1, n_frames) Hz. `rhythm`: the reference's
        teacher-forced alignment (the reference speaker only affects this pass, mellotron#74);
        `pitch`: its F0 (else zeros, the model's own); `gst`: its style (else equal token weights).
        `prenet_dropout` / `generator` in `infer_options` apply to the alignment pass too."""
        if pitch and reference_f0 is None:
            raise ValueError("transfer(pitch=True) needs reference_f0 (tts.conditioning.extract_f0)")
        aligner_speaker = speaker_id if reference_speaker_id is None else reference_speaker_id
        alignment = None if not rhythm else self.align(
            tokens, reference_mel, reference_f0, aligner_speaker, infer_options.get("prenet_dropout"),
            infer_options.get("generator"))
        return self.infer(tokens, speaker_id=speaker_id, style=reference_mel if gst else None,
                          f0=reference_f0 if pitch else None, alignment=alignment, pitch_shift=pitch_shift,
                          pitch_scale=pitch_scale, **infer_options)

    def tacotron2_state_dict(self, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A Tacotron 2 state dict of the same shapes made into this Mellotron's: the attention
        LSTM gets zero weights for the F0 features (its input is [prenet | f0 | context]) and
        `prenet_f0` keeps this model's initialisation, so the result computes exactly what the
        Tacotron 2 did until training teaches it to read F0. A Mellotron's dict is returned as is."""
        key = "decoder.attention_rnn.weight_ih"
        if "decoder.prenet_f0.conv.weight" in state_dict or key not in state_dict:
            return state_dict
        weight, prenet_dim = state_dict[key], self.config.decoder.prenet_dim
        f0_columns = weight.new_zeros(weight.size(0), self.config.pitch.prenet_dim)
        widened = torch.cat((weight[:, :prenet_dim], f0_columns, weight[:, prenet_dim:]), dim=1)
        own_f0 = self.decoder.prenet_f0.conv.weight.detach().to(weight.dtype)
        return {**state_dict, key: widened, "decoder.prenet_f0.conv.weight": own_f0.clone()}

    @classmethod
    def from_nvidia_state_dict(cls, state_dict: dict[str, torch.Tensor],
                               config: MellotronConfig | None = None) -> "Mellotron":
        """A model holding NVIDIA Mellotron weights, in eval mode; the config comes from the tensor
        shapes. With LibriTTS's 123 speakers, `nvidia_speaker_names` gives their ids in order."""
        from tts.models.presets import nvidia_config_from_state_dict, nvidia_state_dict_to_ours

        state_dict = nvidia_state_dict_to_ours(state_dict)
        if config is None:
            base = nvidia_config_from_state_dict(state_dict)
            f0_weight = state_dict["decoder.prenet_f0.conv.weight"]  # (f0_dim, 1, kernel)
            config = MellotronConfig(
                **{f.name: getattr(base, f.name) for f in dataclasses.fields(Tacotron2Config)},
                pitch=PitchConfig(prenet_dim=f0_weight.size(0), prenet_kernel_size=f0_weight.size(2)))
            config = config.replace(text=MellotronConfig().text)
        model = cls(config)
        model.load_state_dict(state_dict, strict=True)
        if config.n_speakers == len(LIBRITTS_SPEAKERS):
            model.nvidia_speaker_names = LIBRITTS_SPEAKERS
        return model.eval()

    def _f0_features(self, f0: torch.Tensor | None, memory: torch.Tensor, n_steps: int | None) -> torch.Tensor:
        """f0 (batch, n_frames) Hz or None → per-step features (n + 1, batch, f0_dim), n = n_steps
        (teacher forcing: contour padded / cut to the steps) or the contour's own step count."""
        batch = memory.size(0)
        if f0 is None:
            f0 = memory.new_zeros(batch, n_steps or 0)
        f0 = f0.to(memory.dtype)[:, ::self.frames_per_step]  # a step reads its first frame's F0
        if n_steps is not None:
            f0 = F.pad(f0, (0, max(0, n_steps - f0.size(1))))[:, :n_steps]
        return self.decoder.f0_features(f0)


def looks_like_nvidia_mellotron(state_dict: dict[str, torch.Tensor]) -> bool:
    """True for NVIDIA Mellotron tensor names (Tacotron 2's plus `decoder.prenet_f0`), any `module.` prefix."""
    from tts.models.presets import looks_like_nvidia_tacotron2

    keys = {key.removeprefix("module.") for key in state_dict}
    return looks_like_nvidia_tacotron2(state_dict) and "decoder.prenet_f0.conv.weight" in keys
