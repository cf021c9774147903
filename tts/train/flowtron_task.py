"""Training Flowtron with the shared engine (`voxflow train flowtron`).

Loss per batch, as in NVIDIA/flowtron's current `train.py`:
- NLL + gate BCE (`flowtron_loss`, NVIDIA's `FlowtronLoss`);
- the beta-binomial attention prior (`model.loss.attention_prior`, on by default): each flow's
  attention is multiplied by a near-diagonal prior (`beta_binomial_prior`), computed from the
  batch's lengths on the fly (NVIDIA caches it per file);
- the CTC alignment loss, `model.loss.ctc_weight` (0.01) × `attention_ctc_loss`, from training
  step `model.loss.ctc_start_step` (NVIDIA: 10 000; the tiny preset: 0), read from the
  engine's step counter (`Task.step`), so it survives `--resume`;
- optionally, alignment from a teacher (`model.loss.alignment_teacher`: a trained Tacotron 2 or
  Mellotron voxflow file for the same corpus, symbols and mel settings): its teacher-forced
  attention over each batch becomes every flow's attention target (`attention_target_loss`,
  weight `model.loss.alignment_weight`), and the prior is left out so that the attention learns
  to align on its own, as it must at inference. The teacher runs on the batch as drawn (ARPAbet
  or letters, `text.p_arpabet`), so nothing is cached. On 2 CPU cores a one-flow Flowtron
  warm-started from the bundled Mellotron and taught by it attends sharply within a few hundred
  steps, where the prior and CTC alone had not aligned after 2300.

Recipe (NVIDIA README and maintainer, flowtron#43): grow the flows progressively, and drop the
prior once the model attends.

    # 1. one flow, with prior and CTC, until the attention is sharp and diagonal
    voxflow train flowtron --data DATA --out runs/ft1 --config small --set model.flows.n_flows=1
    # 2. two flows, warm-started from 1: flows.0 carries over; the new backward flow starts
    #    fresh, and the gate moves from flows.0 to flows.1 (the last flow)
    voxflow train flowtron --data DATA --out runs/ft2 --config small \\
        --warm-start runs/ft1/model.safetensors --ignore-layers flows.1,flows.0.gate_layer
    # 3. when both flows attend, continue without the prior (inference never uses it)
    voxflow train flowtron --data DATA --out runs/ft3 --config small --warm-start runs/ft2/model.safetensors \\
        --set model.loss.attention_prior=false

Step 1 may start from a trained Tacotron 2 or Mellotron whose embedding, encoder and speaker sizes
match (`--warm-start TACOTRON.safetensors`, `Flowtron.text_state_dict`): its text encoder and
speaker table carry over, the flows start fresh, and the attention has sound-separating keys to
align to from the first step.

A multi-speaker corpus needs `model.n_speakers` ≥ its speakers (ids: string-sorted names, stored
in every checkpoint). Validation shows each flow's teacher-forced attention, a z ~ N(0, 0.5²)
sample's mel, and its Griffin-Lim audio.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from torch import nn

from tts.data import SpeakerMap
from tts.errors import TrainingError
from tts.models.flowtron import (FlowtronConfig, Flowtron, attention_ctc_loss, attention_target_loss,
                                 beta_binomial_prior, flowtron_loss, flowtron_preset)
from tts.models.layers import lengths_to_mask
from tts.train.config import TrainConfig
from tts.train.figures import plot_alignment, plot_mel
from tts.train.task import Examples
from tts.train.text_mel import TextMelTask

__all__ = ["FlowtronTask", "TRAIN_PRESETS", "attention_sharpness"]

# NVIDIA: batch 6, lr 1e-3 (RAdam), weight decay 1e-6, gradient clip 1. The engine uses Adam.
TRAIN_PRESETS = {
    "nvidia": TrainConfig(batch_size=6, learning_rate=1e-3, weight_decay=1e-6, grad_clip=1.0,
                          decay_start=500_000, decay_half_life=200_000, max_steps=1_000_000),
    "small": TrainConfig(batch_size=8, learning_rate=1e-3, decay_start=50_000, decay_half_life=20_000,
                         max_steps=200_000, checkpoint_every=1000, validate_every=1000),
    "tiny": TrainConfig(batch_size=8, learning_rate=2e-3, warmup_steps=50, decay_start=5_000,
                        decay_half_life=5_000, max_steps=20_000, checkpoint_every=250, validate_every=250),
}


def attention_sharpness(attention: torch.Tensor, token_lengths: torch.Tensor, mel_lengths: torch.Tensor) -> torch.Tensor:
    """Mean over real frames of the largest attention weight (1 = one token per frame, 1/n = flat)."""
    del token_lengths  # padded tokens already have weight 0
    frame_mask = lengths_to_mask(mel_lengths, attention.size(1)).to(attention.dtype)
    return (attention.max(dim=2).values * frame_mask).sum() / frame_mask.sum()


class FlowtronTask(TextMelTask):
    kind = "flowtron"
    config_class = FlowtronConfig

    @classmethod
    def preset(cls, name: str) -> tuple[FlowtronConfig, TrainConfig]:
        return flowtron_preset(name), TRAIN_PRESETS[name]

    def __init__(self, model_config) -> None:
        super().__init__(model_config)
        self._teacher: tuple[nn.Module, torch.Tensor] | None = None  # (model, data id → teacher id)

    def build_model(self) -> nn.Module:
        return Flowtron(self.model_config)

    def fit_speakers(self, data: Path, speakers: SpeakerMap) -> None:
        # Flowtron always has a speaker table; it may be larger than the data's speakers.
        if len(speakers) > self.model_config.n_speakers:
            raise TrainingError(f"{data} has {len(speakers)} speakers but the model is configured for "
                                f"{self.model_config.n_speakers}; pass --set model.n_speakers={len(speakers)}")

    def adapt_warm_start(self, model: nn.Module, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        # a trained Tacotron 2 / Mellotron lends its text encoder and speaker table (the flows start fresh)
        return model.text_state_dict(state_dict)

    def compute_loss(self, model: nn.Module, batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        config = self.model_config.loss
        teacher = self._alignment_teacher(batch.tokens.device) if config.alignment_teacher else None
        prior = (beta_binomial_prior(batch.token_lengths, batch.mel_lengths, config.prior_scaling,
                                     config.prior_threshold) if config.attention_prior and teacher is None else None)
        output = model(batch.mel, batch.speaker_ids, batch.tokens, batch.token_lengths, batch.mel_lengths, prior)
        nll, gate = flowtron_loss(output, config.sigma, config.gate_loss)
        loss = nll + gate
        parts = {"nll": nll.detach(), "gate": gate.detach(),
                 "attention_sharpness": attention_sharpness(output.attention[0].detach(), batch.token_lengths,
                                                            batch.mel_lengths)}
        if config.ctc_weight > 0 and self.step >= config.ctc_start_step:
            ctc = attention_ctc_loss(output.attention_log_probs, batch.token_lengths, batch.mel_lengths,
                                     config.ctc_blank_logprob)
            loss = loss + config.ctc_weight * ctc
            parts["ctc"] = ctc.detach()
        if teacher is not None and config.alignment_weight > 0:
            target = self._teacher_alignment(teacher, batch)
            alignment = attention_target_loss(output.attention_log_probs, target, batch.mel_lengths)
            loss = loss + config.alignment_weight * alignment
            parts["alignment"] = alignment.detach()
        return loss, parts

    def _alignment_teacher(self, device: torch.device) -> tuple[nn.Module, torch.Tensor]:
        """The teacher model (loaded once, frozen) and the map from the data's speaker ids to its own."""
        if self._teacher is None:
            from tts.loading import read_model

            path = self.model_config.loss.alignment_teacher
            loaded = read_model(path, device)
            if loaded.kind not in ("tacotron2", "mellotron"):
                raise TrainingError(f"{path}: loss.alignment_teacher must be a Tacotron 2 or Mellotron, "
                                    f"found a {loaded.kind}")
            ours, theirs = self.model_config, loaded.model.config
            # p_arpabet only changes how the batch is drawn, not what its tokens mean
            pairs = {"text": (ours.text, dataclasses.replace(theirs.text, p_arpabet=ours.text.p_arpabet)),
                     "audio": (ours.audio, theirs.audio)}
            for name, (own, teachers) in pairs.items():
                if own != teachers:
                    raise TrainingError(f"{path}: the alignment teacher's {name} settings differ from this "
                                        f"Flowtron's ({teachers} vs {own}); its attention would not fit the batch")
            names = self.speakers.names if self.speakers else []
            if getattr(loaded.model, "speaker_embedding", None) is None:
                ids = torch.zeros(max(1, len(names)), dtype=torch.long)
            else:
                missing = [name for name in names if name not in loaded.speakers]
                if missing or not names:
                    raise TrainingError(f"{path}: the alignment teacher does not know the speaker(s) "
                                        f"{missing or ['(unnamed)']}; its speakers are {list(loaded.speakers)}")
                ids = torch.tensor([loaded.speakers.index(name) for name in names])
            for parameter in loaded.model.parameters():
                parameter.requires_grad_(False)
            self._teacher = (loaded.model, ids.to(device))
        return self._teacher

    @staticmethod
    @torch.no_grad()
    def _teacher_alignment(teacher: tuple[nn.Module, torch.Tensor], batch) -> torch.Tensor:
        """The teacher's teacher-forced attention over the batch, steps → frames: (batch, n_frames, n_tokens)."""
        model, speaker_ids = teacher
        options = {}
        if getattr(model, "speaker_embedding", None) is not None:
            options["speaker_id"] = speaker_ids[batch.speaker_ids]
        output = model(batch.tokens, batch.token_lengths, batch.mel, batch.mel_lengths, **options)
        # Mellotron reads zeros for F0 (trained with F0 dropout); the alignment needs no pitch
        return output.frame_alignment().float()

    @torch.no_grad()
    def examples(self, model: nn.Module, batch) -> Examples:
        from vocoders.griffin_lim import GriffinLim

        config = self.model_config
        one = slice(0, 1)
        n_tokens, n_frames = int(batch.token_lengths[0]), int(batch.mel_lengths[0])
        tokens, mel, speaker = batch.tokens[one, :n_tokens], batch.mel[one, :, :n_frames], batch.speaker_ids[one]
        forced = model(mel, speaker, tokens)
        sample = model.infer(tokens, speaker, sigma=0.5, n_frames=2 * n_frames + 10,
                             generator=torch.Generator(device=tokens.device).manual_seed(0))
        sample_mel = sample.mel[0, :, :int(sample.mel_lengths[0])].float().cpu()
        figures = {f"alignment_flow{k}": plot_alignment(a[0].float().cpu().numpy())
                   for k, a in enumerate(forced.attention)}
        figures.update(mel_target=plot_mel(mel[0].cpu().numpy(), "target"),
                       mel_sampled=plot_mel(sample_mel.numpy(), "sampled, sigma 0.5"))
        audio = {} if sample_mel.size(1) < 8 else {
            "sampled": (GriffinLim(config.audio, n_iters=32)(sample_mel).numpy(), config.audio.sample_rate)}
        return Examples(figures=figures, audio=audio)
