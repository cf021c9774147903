"""Griffin-Lim recovers audio whose mel matches the input mel (it has no weights to test)."""

from __future__ import annotations

import torch

from tts.audio import load_audio, mel_spectrogram
from vocoders.griffin_lim import GriffinLim


def test_griffin_lim_resynthesis_matches_the_mel(speech_wav, generator):
    mel = mel_spectrogram(load_audio(speech_wav))
    audio = GriffinLim(n_iters=32)(mel, generator=generator)
    assert audio.shape == ((mel.shape[1] - 1) * 256,)
    rebuilt = mel_spectrogram(audio)
    # Mean log-mel error of a real clip's resynthesis; random-phase audio scores about 0.6.
    assert (rebuilt - mel).abs().mean() < 0.2
    assert torch.corrcoef(torch.stack([rebuilt.flatten(), mel.flatten()]))[0, 1] > 0.98


def test_more_iterations_give_a_more_consistent_phase(speech_wav):
    mel = mel_spectrogram(load_audio(speech_wav))
    errors = []
    for n_iters in (0, 8, 32):
        audio = GriffinLim(n_iters=n_iters)(mel, generator=torch.Generator().manual_seed(0))
        errors.append((mel_spectrogram(audio) - mel).abs().mean().item())
    assert errors[0] > errors[1] > errors[2]


def test_griffin_lim_is_batched_and_seeded(speech_wav):
    mel = mel_spectrogram(load_audio(speech_wav))[:, :60]
    vocoder = GriffinLim(n_iters=4)
    batch = vocoder(torch.stack([mel, mel]), generator=torch.Generator().manual_seed(3))
    assert batch.shape == (2, 59 * 256)
    single = vocoder(mel, generator=torch.Generator().manual_seed(3))
    again = vocoder(mel, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(single, again)


def test_very_short_mels_still_vocode():
    mel = torch.full((80, 2), -5.0)
    assert GriffinLim(n_iters=4)(mel).shape == (256,)
    assert GriffinLim(n_iters=4)(torch.full((2, 80, 1), -5.0)).shape == (2, 0)
