"""Tiny random-weight voices (Mellotron, Flowtron, Tacotron 2) for the demo's tests, and the page served
on a free localhost port. The voices' audio is noise; the tests check that the page works."""

from __future__ import annotations

import os
import socket

import pytest
import torch

from tts import Synthesizer
from tts.loading import save_model

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.fixture(scope="session")
def tiny_voices(tmp_path_factory) -> dict[str, Synthesizer]:
    from tts.models.flowtron import Flowtron, flowtron_preset
    from tts.models.mellotron import Mellotron, mellotron_preset
    from tts.models.presets import tacotron2_preset
    from tts.models.tacotron2 import Tacotron2

    folder = tmp_path_factory.mktemp("voices")
    torch.manual_seed(0)
    models = {"mellotron": Mellotron(mellotron_preset("tiny").replace(n_speakers=2)),
              "flowtron": Flowtron(flowtron_preset("tiny").replace(n_speakers=2)),
              "tacotron2": Tacotron2(tacotron2_preset("tiny"))}
    speakers = {"mellotron": ("rms", "slt"), "flowtron": ("rms", "slt"), "tacotron2": ()}
    return {name: Synthesizer.from_pretrained(save_model(folder / f"{name}.safetensors", model,
                                                         speakers=speakers[name]))
            for name, model in models.items()}


@pytest.fixture(scope="session")
def test_limits():
    from demo.handlers import Limits

    # Random weights never stop decoding: cap the frames so each request takes well under a second.
    return Limits(max_decoder_steps=20)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def served_app(tiny_voices, test_limits):
    """The page with the tiny voices, served from a thread; yields its URL."""
    from demo.app import build_app, launch

    torch.set_num_threads(1)
    app = build_app(tiny_voices, test_limits)
    port = _free_port()
    launch(app, port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    app.close()
