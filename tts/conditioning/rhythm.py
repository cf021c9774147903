"""Rhythm: forced alignment of a recording to its transcript by teacher-forcing a Tacotron-family model.

Mellotron's rhythm transfer (nvidia-models.md §4.3) runs the model's teacher-forced `forward` over
the reference mel and keeps the attention: any model with Tacotron 2's `forward(tokens,
token_lengths, mel, mel_lengths, speaker_id=..., prenet_dropout=...)` works (Mellotron also gets
the reference's F0). The result feeds `Mellotron.infer(alignment=...)`.

- `align(model, tokens, mel, ...)` → `Alignment(attention (n_frames, n_tokens), durations (n_tokens,))`.
- `extract_rhythm(model, text, reference_audio, speaker=None)` → (n_frames, n_tokens) float32
  numpy (the design.md contract); text goes through the model's own text path.
- `durations_from_alignment(attention)`: frames per token (each frame counted for its argmax token).
- `alignment_from_durations(durations)`: the binary (n_frames, n_tokens) matrix (music scores).
- `is_monotonic(attention)`: the argmax token never moves back by more than `tolerance`.
"""

from __future__ import annotations

import dataclasses
import inspect
import random

import numpy as np
import torch

__all__ = ["Alignment", "align", "extract_rhythm", "durations_from_alignment", "alignment_from_durations",
           "is_monotonic"]


@dataclasses.dataclass
class Alignment:
    attention: torch.Tensor  # (n_frames, n_tokens), rows sum to 1
    durations: torch.Tensor  # (n_tokens,) int64 frames, summing to n_frames


def durations_from_alignment(attention: torch.Tensor) -> torch.Tensor:
    """(n_frames, n_tokens) → (n_tokens,) int64: how many frames attend most to each token."""
    return torch.bincount(attention.argmax(dim=1), minlength=attention.size(1))


def alignment_from_durations(durations, n_frames: int | None = None) -> torch.Tensor:
    """(n_tokens,) frames per token → binary (n_frames, n_tokens) float32, tokens in order; frames
    beyond the durations' sum (if `n_frames` is larger) stay on the last token."""
    durations = torch.as_tensor(durations, dtype=torch.long)
    owner = torch.repeat_interleave(torch.arange(len(durations)), durations)
    n_frames = int(durations.sum()) if n_frames is None else n_frames
    owner = torch.cat((owner, owner.new_full((max(0, n_frames - len(owner)),), len(durations) - 1)))[:n_frames]
    return torch.nn.functional.one_hot(owner, len(durations)).float()


def is_monotonic(attention: torch.Tensor, tolerance: int = 1) -> bool:
    """True when the attended token (argmax per frame) never steps back by more than `tolerance`."""
    steps = attention.argmax(dim=1).diff()
    return bool((steps >= -tolerance).all())


@torch.no_grad()
def align(model: torch.nn.Module, tokens: torch.Tensor, mel: torch.Tensor, speaker_id: int | None = None,
          f0: torch.Tensor | None = None, prenet_dropout: float | None = None,
          generator: torch.Generator | None = None) -> Alignment:
    """Teacher-forced attention of `model` over one recording.

    tokens (n_tokens,) or (1, n_tokens); mel (n_mels, n_frames) or (1, n_mels, n_frames); f0
    (n_frames,) Hz for models that take it (Mellotron; None there means zeros). `prenet_dropout`
    defaults to the model's config (NVIDIA aligns with its prenet dropout on)."""
    tokens, mel = tokens.reshape(1, -1), mel.reshape(1, *mel.shape[-2:])
    options = {"prenet_dropout": prenet_dropout, "generator": generator}
    if "f0" in inspect.signature(model.forward).parameters:
        options["f0"] = None if f0 is None else f0.reshape(1, -1)
    elif f0 is not None:
        raise ValueError(f"{type(model).__name__} takes no F0 input; pass f0=None")
    if getattr(model, "speaker_embedding", None) is not None:
        options["speaker_id"] = torch.tensor([speaker_id or 0], device=tokens.device)
    output = model(tokens, torch.tensor([tokens.size(1)], device=tokens.device), mel,
                   torch.tensor([mel.size(2)], device=mel.device), **options)
    attention = output.frame_alignment()[0]
    return Alignment(attention, durations_from_alignment(attention))


def extract_rhythm(model: torch.nn.Module, text: str, reference_audio, speaker: int | str | None = None,
                   sample_rate: int | None = None) -> np.ndarray:
    """The design.md contract: the alignment (n_frames, n_tokens) of `reference_audio` (a path or a
    float array at `sample_rate`, default the model's) to `text`, from a teacher-forced pass."""
    from text import text_to_sequence
    from tts.audio import load_audio, mel_spectrogram
    from tts.conditioning.f0 import extract_f0
    from tts.conditioning.style import speaker_index

    config = model.config
    audio = _audio(reference_audio, config.audio.sample_rate, sample_rate, load_audio)
    ids = text_to_sequence(text, list(config.text.cleaners), symbol_set=config.text.symbol_set,
                           p_arpabet=config.text.p_arpabet, rng=random.Random(0))
    device = next(model.parameters()).device
    mel = mel_spectrogram(audio, config.audio).to(device)
    f0 = None
    if hasattr(config, "pitch"):
        pitch = config.pitch
        f0 = torch.from_numpy(extract_f0(audio, config.audio.sample_rate, pitch.f0_min, pitch.f0_max,
                                         pitch.harm_thresh, pitch.method, hop=config.audio.hop_length)).to(device)
    speaker_id = None if speaker is None else speaker_index(model, speaker)
    result = align(model, torch.tensor(ids, device=device), mel, speaker_id, f0)
    return result.attention.float().cpu().numpy()


def _audio(audio, model_rate: int, given_rate: int | None, load_audio) -> np.ndarray:
    """A path → loaded at the model's rate; an array → resampled from `given_rate` if it differs."""
    if isinstance(audio, (str, bytes)) or hasattr(audio, "__fspath__"):
        return load_audio(audio, model_rate)
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if given_rate is not None and given_rate != model_rate:
        import librosa

        audio = librosa.resample(audio, orig_sr=given_rate, target_sr=model_rate)
    return audio
