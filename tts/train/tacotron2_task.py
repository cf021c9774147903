"""Training Tacotron 2 (+ GST, + speakers) with the shared engine.

Data: an LJSpeech folder or NVIDIA filelist → `TextMelDataset` (cached mels, the model's text
path). A multi-speaker model needs `model.n_speakers` equal to the speakers in the data; their
names are stored in every checkpoint (`speakers` metadata, in id order). Validation shows the
teacher-forced mel and alignment, a free-running mel, and its Griffin-Lim audio.

A config with a `refiner` trains the refiner alone, on top of a trained model (warm-start from
it; its missing refiner starts freshly initialised): every other weight is frozen, and the loss
is the refined free-running mel's error against the recording (`Tacotron2.rehearse`), plus, with
`refiner.adversarial` > 0, an adversarial loss from a critic that trains beside it
(`tts.models.critic`).
"""

from __future__ import annotations

import torch
from torch import nn

from tts.models.critic import MelCritic, adversarial_losses
from tts.models.grow import grow_state_dict
from tts.models.layers import lengths_to_mask
from tts.models.losses import mel_error
from tts.models.presets import tacotron2_preset
from tts.models.refiner import deepen_state_dict
from tts.models.tacotron2 import Tacotron2, Tacotron2Config, tacotron2_loss
from tts.train.config import TrainConfig
from tts.train.figures import plot_alignment, plot_mel
from tts.train.task import Examples
from tts.train.text_mel import TextMelTask

__all__ = ["Tacotron2Task", "TRAIN_PRESETS"]

# Training settings that suit each model size: NVIDIA's for "nvidia"; faster-moving, guided
# settings for the small CPU configs, which must align from little data in few steps.
TRAIN_PRESETS = {
    "nvidia": TrainConfig(batch_size=64, learning_rate=1e-3, weight_decay=1e-6, grad_clip=1.0,
                          decay_start=50_000, decay_half_life=25_000, max_steps=200_000),
    "small": TrainConfig(batch_size=16, learning_rate=1e-3, decay_start=20_000, decay_half_life=10_000,
                         max_steps=60_000, checkpoint_every=500, validate_every=500),
    "tiny": TrainConfig(batch_size=16, learning_rate=2e-3, warmup_steps=200, decay_start=5_000,
                        decay_half_life=5_000, max_steps=20_000, checkpoint_every=250, validate_every=250),
}


class Tacotron2Task(TextMelTask):
    kind = "tacotron2"
    config_class = Tacotron2Config

    @classmethod
    def preset(cls, name: str) -> tuple[Tacotron2Config, TrainConfig]:
        return tacotron2_preset(name), TRAIN_PRESETS[name]

    def adapt_warm_start(self, model: nn.Module, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        # a narrower model of the family grows into this one's LSTM and postnet widths, same output;
        # a shallower refiner deepens into this one's (same output); a refiner of another width is
        # left for warm_start to refuse or, with --ignore-layers, skip
        refiner = {key: value for key, value in state_dict.items() if key.startswith("refiner.")}
        state_dict = grow_state_dict(model, {key: value for key, value in state_dict.items() if key not in refiner})
        own_refiner = {key: value for key, value in model.state_dict().items() if key.startswith("refiner.")}
        if own_refiner and not refiner:
            # a model without a refiner gets one: the refiner keeps its fresh initialisation
            return {**state_dict, **own_refiner}
        if own_refiner:
            prefix = "refiner."
            deepened = deepen_state_dict(model.refiner, {key[len(prefix):]: value for key, value in refiner.items()})
            refiner = {prefix + key: value for key, value in deepened.items()}
        return {**state_dict, **refiner}

    def build_model(self) -> nn.Module:
        return self.refiner_alone(Tacotron2(self.model_config))

    def refiner_alone(self, model: nn.Module) -> nn.Module:
        """With a refiner in the config, only the refiner trains: every other weight is frozen."""
        if self.model_config.refiner is not None:
            for name, parameter in model.named_parameters():
                parameter.requires_grad_(name.startswith("refiner."))
        return model

    def build_critic(self) -> nn.Module | None:
        refiner = self.model_config.refiner
        if refiner is None or refiner.adversarial == 0:
            return None
        return MelCritic(self.model_config.audio.n_mels, refiner.critic_channels)

    def refiner_loss(self, model: nn.Module, batch, **inputs) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The refiner's training pass over a batch (`inputs`: the model's own, e.g. Mellotron's f0)."""
        config = self.model_config
        # which clips decode with their own GST style, the others with the style used without a reference
        reference_style = torch.rand(batch.tokens.size(0), device=batch.tokens.device) < config.refiner.reference_style
        output = model(batch.tokens, batch.token_lengths, batch.mel, batch.mel_lengths,
                       speaker_id=batch.speaker_ids if config.n_speakers else None, refine=True,
                       reference_style=reference_style, **inputs)
        loss = mel_error(output.mel_postnet, batch.mel, batch.mel_lengths, config.mel_loss)
        parts = {"refiner": loss.detach()}
        if self.critic is not None:
            frame_mask = lengths_to_mask(batch.mel_lengths, batch.mel.size(2))
            adversarial, critic_loss = adversarial_losses(self.critic, output.mel_postnet, batch.mel, frame_mask)
            loss = loss + config.refiner.adversarial * adversarial + critic_loss
            parts.update(adversarial=adversarial.detach(), critic=critic_loss.detach())
        return loss, parts

    def compute_loss(self, model: nn.Module, batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        config = self.model_config
        if config.refiner is not None:
            return self.refiner_loss(model, batch)
        speaker_ids = batch.speaker_ids if config.n_speakers else None
        output = model(batch.tokens, batch.token_lengths, batch.mel, batch.mel_lengths, speaker_id=speaker_ids)
        loss, parts = tacotron2_loss(output, batch.mel, batch.mel_lengths, batch.token_lengths,
                                     config.decoder.frames_per_step, config.guided_attention, config.mel_loss)
        return loss, {name: value for name, value in parts.items() if name != "total"}

    @torch.no_grad()
    def examples(self, model: nn.Module, batch) -> Examples:
        from vocoders.griffin_lim import GriffinLim

        config = self.model_config
        one = slice(0, 1)
        speaker_ids = batch.speaker_ids[one] if config.n_speakers else None
        n_tokens, n_frames = int(batch.token_lengths[0]), int(batch.mel_lengths[0])
        tokens, mel = batch.tokens[one, :n_tokens], batch.mel[one, :, :n_frames]
        forced = model(tokens, batch.token_lengths[one], mel, batch.mel_lengths[one], speaker_id=speaker_ids)
        free = model.infer(tokens, batch.token_lengths[one], speaker_id=speaker_ids,
                           style=mel if config.gst else None, prenet_dropout=0.0,
                           max_decoder_steps=2 * n_frames // config.decoder.frames_per_step + 10)
        free_mel = free.mel_postnet[0, :, :int(free.mel_lengths[0])].float().cpu()
        # An untrained gate may stop after a frame or two: too short to turn into audio.
        audio = {} if free_mel.size(1) < 8 else {
            "free_running": (GriffinLim(config.audio, n_iters=32)(free_mel).numpy(), config.audio.sample_rate)}
        return Examples(
            figures={"mel_target": plot_mel(mel[0].cpu().numpy(), "target"),
                     "mel_teacher_forced": plot_mel(forced.mel_postnet[0].float().cpu().numpy(), "teacher-forced"),
                     "alignment": plot_alignment(forced.alignment[0].float().cpu().numpy()),
                     "mel_free_running": plot_mel(free_mel.numpy(), "free-running")},
            audio=audio)
