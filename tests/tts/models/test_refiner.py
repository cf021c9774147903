"""The refiner (tts.models.refiner): what it reads, the rehearsal it trains on, that training it through
`voxflow train` touches nothing else, and that on the bundled voice it brings free-running mels
closer to the recordings than the postnet does."""

from __future__ import annotations

import csv

import pytest
import torch

from tts.audio import AudioConfig, load_audio, mel_spectrogram
from tts.config import TextConfig
from tts.errors import ConfigError
from tts.models.mellotron import Mellotron, MellotronConfig
from tts.models.refiner import Refiner, RefinerConfig
from tts.models.tacotron2 import AttentionConfig, DecoderConfig, EncoderConfig, GSTConfig, PostnetConfig


def _tiny(refiner: RefinerConfig | None = RefinerConfig(channels=16, n_layers=2), frames_per_step: int = 2,
          prenet_dropout: float = 0.5) -> Mellotron:
    torch.manual_seed(0)
    config = MellotronConfig(
        audio=AudioConfig(n_mels=20), text=TextConfig(symbol_set="mellotron", p_arpabet=0.0),
        encoder=EncoderConfig(embedding_dim=16, n_convolutions=1),
        attention=AttentionConfig(rnn_dim=16, attention_dim=8, location_n_filters=4, location_kernel_size=5),
        decoder=DecoderConfig(rnn_dim=16, prenet_dim=8, frames_per_step=frames_per_step,
                              prenet_dropout=prenet_dropout),
        postnet=PostnetConfig(channels=8, n_convolutions=2),
        gst=GSTConfig(reference_filters=(4, 4), reference_gru_dim=8, n_tokens=4, token_dim=8, n_heads=2),
        n_speakers=3, speaker_embedding_dim=4, refiner=refiner)
    return Mellotron(config).eval()


def test_a_real_frame_is_refined_the_same_whatever_padding_follows(generator):
    refiner = Refiner(20, 12, RefinerConfig(channels=16, n_layers=3)).eval()
    mel, context = torch.randn(1, 20, 10, generator=generator), torch.randn(1, 12, 10, generator=generator)
    alone = refiner(mel, context, torch.ones(1, 10, dtype=torch.bool))
    garbage = torch.randn(1, 20, 6, generator=generator) * 100
    padded_mel, padded_context = torch.cat((mel, garbage), 2), torch.cat((context, garbage[:, :12]), 2)
    mask = torch.arange(16).unsqueeze(0) < 10
    padded = refiner(padded_mel, padded_context, mask)
    torch.testing.assert_close(padded[..., :10], alone)
    assert torch.equal(padded[..., 10:], torch.zeros(1, 20, 6))
    for bad in (dict(kernel_size=4), dict(channels=0), dict(reference_style=1.5)):
        with pytest.raises(ConfigError, match="refiner"):
            RefinerConfig(**bad)


def test_infer_refines_with_the_context_each_frame_attended(generator):
    model = _tiny(frames_per_step=3)
    tokens = torch.randint(1, 60, (2, 7), generator=generator)
    lengths = torch.tensor([7, 5])
    output = model.infer(tokens, lengths, speaker_id=torch.tensor([0, 2]), max_decoder_steps=6, generator=generator)
    memory = model._encode(tokens, lengths, torch.tensor([0, 2]), model.gst.style(None, 2))
    # the context a decoder step read is its attention over the memory (text, style, speaker)
    expected = output.frame_alignment() @ memory
    frames = output.mel.size(2)
    assert output.frame_context().shape == (2, frames, model.config.memory_dim)
    for item in range(2):
        n_frames = int(output.mel_lengths[item])
        torch.testing.assert_close(output.frame_context()[item, :n_frames], expected[item, :n_frames])
    unrefined = output.mel + model.postnet(output.mel, torch.arange(frames) < output.mel_lengths.unsqueeze(1))
    assert not torch.allclose(output.mel_postnet, unrefined, atol=1e-3)  # the refiner's mel, not the postnet's
    torch.testing.assert_close(output.mel_postnet, model.refine(output))
    with pytest.raises(ValueError, match="only free-running"):
        model(tokens, lengths, torch.zeros(2, 20, 9), torch.tensor([9, 6]), speaker_id=torch.tensor([0, 2])
              ).frame_context()


def test_rehearsal_lines_up_with_the_recording_and_leaves_the_model_as_it_was(generator):
    """Teacher-forced attention drives the free-running pass: exactly the recording's frames per
    item, the same attention, no BatchNorm statistics touched, the training mode kept."""
    model = _tiny(prenet_dropout=0.0)  # a deterministic teacher-forced pass to compare with
    tokens = torch.randint(1, 60, (2, 8), generator=generator)
    token_lengths, mel_lengths = torch.tensor([8, 6]), torch.tensor([15, 11])
    mel = torch.randn(2, 20, 15, generator=generator) * (torch.arange(15) < mel_lengths.unsqueeze(1)).unsqueeze(1)
    speakers, f0 = torch.tensor([1, 2]), torch.full((2, 15), 140.0)
    forced = model(tokens, token_lengths, mel, mel_lengths, f0=f0, speaker_id=speakers)
    model.train()
    statistics = {name: buffer.clone() for name, buffer in model.named_buffers()}
    output = model(tokens, token_lengths, mel, mel_lengths, f0=f0, speaker_id=speakers, refine=True,
                   reference_style=torch.tensor([True, False]))
    assert model.training
    for name, buffer in model.named_buffers():
        assert torch.equal(buffer, statistics[name]), name
    assert output.mel_postnet.shape == mel.shape and torch.equal(output.mel_lengths, mel_lengths)
    torch.testing.assert_close(output.alignment, forced.alignment)
    assert output.mel_postnet.requires_grad and not output.mel.requires_grad  # gradients reach the refiner only
    assert torch.equal(output.mel_postnet[1, :, 11:], torch.zeros(20, 4))
    own_style = model.rehearse(tokens, token_lengths, mel, mel_lengths, speakers, f0=f0)
    assert torch.allclose(own_style.mel[0], output.mel[0], atol=1e-5)  # item 0 took its own style both times
    assert not torch.allclose(own_style.mel[1, :, :11], output.mel[1, :, :11], atol=1e-4)
    with pytest.raises(ValueError, match="needs a refiner"):
        _tiny(refiner=None)(tokens, token_lengths, mel, mel_lengths, speaker_id=speakers, refine=True)


def test_warm_start_gives_a_model_its_first_refiner_and_refuses_one_of_another_size_unless_ignored():
    from tts.errors import TrainingError
    from tts.train.mellotron_task import MellotronTask
    from tts.train.warm_start import warm_start

    without = {key: value + 1 for key, value in _tiny(refiner=None).state_dict().items()}  # unlike any init
    small = _tiny(refiner=RefinerConfig(channels=16, n_layers=2))
    task = MellotronTask(small.config)
    fresh = {key: value.clone() for key, value in small.state_dict().items()}
    warm_start(small, task.adapt_warm_start(small, without))
    for key, value in small.state_dict().items():  # the refiner stays as initialised, the rest is loaded
        assert torch.equal(value, fresh[key] if key.startswith("refiner.") else without[key]), key
    wide = _tiny(refiner=RefinerConfig(channels=32, n_layers=2))
    with pytest.raises(TrainingError, match="refiner.*--ignore-layers"):
        warm_start(wide, task.adapt_warm_start(wide, small.state_dict()))
    loaded = warm_start(wide, task.adapt_warm_start(wide, small.state_dict()), ignore_layers=["refiner"])
    assert loaded and not any(key.startswith("refiner.") for key in loaded)


def test_a_trained_refiner_deepens_into_a_deeper_one_that_refines_the_same_and_can_learn(generator):
    from tts.train.mellotron_task import MellotronTask
    from tts.train.warm_start import warm_start

    shallow = _tiny(refiner=RefinerConfig(channels=16, n_layers=2))
    with torch.no_grad():  # a trained refiner: every weight unlike its initialisation
        for parameter in shallow.refiner.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.1)
    deep = _tiny(refiner=RefinerConfig(channels=16, n_layers=4))
    warm_start(deep, MellotronTask(deep.config).adapt_warm_start(deep, shallow.state_dict()))
    mel = torch.randn(2, 20, 30, generator=generator)
    context = torch.randn(2, shallow.refiner.input.in_channels - 20, 30, generator=generator)
    mask = torch.arange(30) < torch.tensor([[30], [21]])
    torch.testing.assert_close(deep.refiner(mel, context, mask), shallow.refiner(mel, context, mask))
    assert torch.equal(deep.refiner.blocks[1].conv.weight, shallow.refiner.blocks[1].conv.weight)
    # the new blocks start as identities but are not dead: their LayerNorm scale gets a gradient
    deep.refiner(mel, context, mask).square().sum().backward()
    assert deep.refiner.blocks[3].norm.weight.grad.abs().sum() > 0


@pytest.mark.slow
def test_training_a_refiner_changes_only_the_refiner_and_the_voice_loads(small_corpus, tmp_path):
    """60 steps on the small corpus, L1 plus a small adversarial weight: the L1 falls, the critic
    trains, and only the refiner's weights change in the model, which then speaks."""
    from tts import Synthesizer
    from tts.loading import read_model, save_model
    from tts.train.config import TrainConfig
    from tts.train.engine import Trainer
    from tts.train.mellotron_task import MellotronTask

    base = _tiny(refiner=None, frames_per_step=3)
    base = Mellotron(base.config.replace(audio=AudioConfig(), n_speakers=2)).eval()
    base_file = save_model(tmp_path / "base.safetensors", base, speakers=("rms", "slt"))
    # with a small adversarial weight: a critic trains beside the refiner, in the training state only
    config = base.config.replace(refiner=RefinerConfig(channels=32, n_layers=2, adversarial=0.05, critic_channels=4))
    train = TrainConfig(batch_size=8, learning_rate=3e-3, max_steps=60, checkpoint_every=1000, validate_every=1000,
                        val_size=0, seed=0, log_every=10)
    trainer = Trainer(MellotronTask(config), train, tmp_path / "run", small_corpus, progress_bar=False,
                      warm_start_from=base_file)
    losses = []
    original = trainer.task.compute_loss

    def recorded(model, batch):
        loss, parts = original(model, batch)
        losses.append(float(parts["refiner"]))
        return loss, parts

    trainer.task.compute_loss = recorded
    critic = [parameter.detach().clone() for parameter in trainer.critic.parameters()]
    trainer.fit()
    assert sum(losses[-10:]) < 0.6 * sum(losses[:10])  # the refined mel approaches the recordings
    assert all(not torch.equal(before, after) for before, after in zip(critic, trainer.critic.parameters()))
    trained = read_model(tmp_path / "run" / "model.safetensors")
    assert trained.model.config.refiner == config.refiner
    assert not any("critic" in key for key in trained.model.state_dict())
    changed = {key for key, value in trained.model.state_dict().items()
               if key not in base.state_dict() or not torch.equal(value, base.state_dict()[key])}
    assert changed and all(key.startswith("refiner.") for key in changed)
    result = Synthesizer.from_pretrained(tmp_path / "run" / "model.safetensors").synthesize(
        "A short test.", speaker="slt", seed=0, max_decoder_steps=20)
    assert result.audio.size > 0


def _clips(corpus, voice):
    rows = list(csv.reader(open(corpus / "metadata.csv", encoding="utf-8"), delimiter="|"))
    clips = []
    for clip_id, _, text, speaker in rows:
        mel = mel_spectrogram(load_audio(corpus / "wavs" / f"{clip_id}.wav", 22050))
        clips.append((torch.tensor(voice.tokens(text)), mel, voice.speaker_id(speaker)))
    return clips


def _batch(clips):
    tokens = torch.nn.utils.rnn.pad_sequence([tokens for tokens, _, _ in clips], batch_first=True)
    n_frames = max(mel.size(1) for _, mel, _ in clips)
    mel = torch.stack([torch.nn.functional.pad(mel, (0, n_frames - mel.size(1))) for _, mel, _ in clips])
    return (tokens, torch.tensor([len(t) for t, _, _ in clips]), mel, torch.tensor([m.size(1) for _, m, _ in clips]),
            torch.tensor([speaker for _, _, speaker in clips]))


@pytest.mark.slow
def test_a_refiner_on_the_bundled_voice_brings_free_running_mels_closer_to_the_recordings(tmp_path):
    """A small refiner trained on 64 fresh clips of the voice's four teachers, measured on 16
    others: its mel is nearer the recording (mean absolute log-mel error) than the postnet's, on
    the same rehearsed decoder output."""
    from tts import Synthesizer
    from tts.corpus import build_corpus
    from tts.models.losses import mel_error
    from tts.train.tacotron2_task import Tacotron2Task

    corpus = build_corpus(tmp_path / "corpus", voices=("slt", "rms", "awb", "kal16"), n_sentences=80, seed=7,
                          max_words=10, progress=False)
    voice = Synthesizer.from_pretrained().voice
    bundled = voice.model
    torch.manual_seed(0)
    model = Mellotron(bundled.config.replace(refiner=RefinerConfig(channels=64, n_layers=3)))
    own = {key: value.float() for key, value in bundled.state_dict().items() if not key.startswith("refiner.")}
    missing, unexpected = model.load_state_dict(own, strict=False)
    assert not unexpected and all(key.startswith("refiner.") for key in missing)
    Tacotron2Task(model.config).refiner_alone(model)
    clips = _clips(corpus, voice)
    # the decoder is frozen, so its rehearsals are made once (two prenet-dropout draws) and reused
    batches = []
    for first in range(0, 64, 16):
        tokens, token_lengths, mel, mel_lengths, speakers = _batch(clips[first:first + 16])
        for seed in range(2):
            batches.append((model.rehearse(tokens, token_lengths, mel, mel_lengths, speakers,
                                           generator=torch.Generator().manual_seed(seed)), mel, mel_lengths))
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=2e-3)
    for step in range(200):
        rehearsed, mel, mel_lengths = batches[step % len(batches)]
        loss = mel_error(model.refine(rehearsed), mel, mel_lengths, "l1")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    tokens, token_lengths, mel, mel_lengths, speakers = _batch(clips[64:])
    with torch.no_grad():
        rehearsed = model.rehearse(tokens, token_lengths, mel, mel_lengths, speakers,
                                   generator=torch.Generator().manual_seed(2))
        refined = model.refine(rehearsed)
    postnet_error = float(mel_error(rehearsed.mel_postnet, mel, mel_lengths, "l1"))
    refined_error = float(mel_error(refined, mel, mel_lengths, "l1"))
    assert refined_error < 0.95 * postnet_error  # 0.78 against 0.85 when written
