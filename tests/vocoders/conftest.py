"""Fixtures for the vocoder kernel tests (shared by test_kernels.py and triton_kernel_checks.py)."""

from __future__ import annotations

import pytest
import torch

from tts.audio import AudioConfig
from vocoders.waveglow import WaveGlow, WaveGlowConfig


@pytest.fixture
def kernel_waveglow(generator):
    """A factory: the tiny preset (8 mels) with non-zero `end` layers (NVIDIA zero-initialises
    them, which makes every coupling the identity), perturbed biases and weight-norm gains."""
    def make(**changes) -> WaveGlow:
        torch.manual_seed(0)
        model = WaveGlow(WaveGlowConfig.preset("tiny", AudioConfig(n_mels=8)).replace(**changes))
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                if ".end." in name:
                    parameter.normal_(0.0, 0.05, generator=generator)
                elif name.endswith((".bias", "weight_g")):
                    parameter.add_(0.1 * torch.randn(parameter.shape, generator=generator))
        return model

    return make


@pytest.fixture
def waveglow_inputs(generator):
    """A factory: (model, batch, n_frames) → a random mel and the model's noise at sigma 0.6."""
    def make(model: WaveGlow, batch: int, n_frames: int) -> tuple[torch.Tensor, torch.Tensor]:
        mel = torch.randn(batch, 8, n_frames, generator=generator)
        return mel, 0.6 * model.draw_noise(mel, generator)

    return make
