"""Style and speaker conditioning: thin wrappers over a model's GST and speaker-embedding blocks.

- `style_embedding(model, audio=None, weights=None, token=None)` → GST style (1, token_dim) from
  reference audio (a path or a float array), token weights (n_tokens,) / (1, n_tokens), or one
  token index; `reference_mel(model, audio)` → the (1, n_mels, n_frames) mel that `infer(style=...)`
  takes directly.
- `speaker_names(model)`, `speaker_index(model, speaker, names=())` → the embedding row for an id
  or a name (names: the checkpoint's `speakers`, or NVIDIA's LibriTTS order for
  `mellotron_libritts.pt`), and `speaker_embedding(model, speaker)` → (1, speaker_embedding_dim).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["reference_mel", "style_embedding", "speaker_names", "speaker_index", "speaker_embedding"]


def reference_mel(model: torch.nn.Module, audio, sample_rate: int | None = None) -> torch.Tensor:
    """Reference audio (path or float array at `sample_rate`, default the model's) → (1, n_mels, n_frames)."""
    from tts.audio import load_audio, mel_spectrogram
    from tts.conditioning.rhythm import _audio

    config = model.config.audio
    samples = _audio(audio, config.sample_rate, sample_rate, load_audio)
    return mel_spectrogram(samples, config).unsqueeze(0).to(next(model.parameters()).device)


@torch.no_grad()
def style_embedding(model: torch.nn.Module, audio=None, weights=None, token: int | None = None,
                    sample_rate: int | None = None) -> torch.Tensor:
    """GST style (1, token_dim) from exactly one of: reference audio, token weights, a token index."""
    gst = getattr(model, "gst", None)
    if gst is None:
        raise ValueError(f"{type(model).__name__} has no GST (config.gst is None)")
    given = [name for name, value in (("audio", audio), ("weights", weights), ("token", token)) if value is not None]
    if len(given) != 1:
        raise ValueError(f"style_embedding: expected exactly one of audio, weights, token; found {given or 'none'}")
    if audio is not None:
        return gst(reference_mel(model, audio, sample_rate))
    if weights is not None:
        weights = torch.as_tensor(np.asarray(weights, dtype=np.float32)).reshape(1, -1)
        return gst.from_weights(weights.to(gst.stl.embed.device))
    return gst.from_token(int(token))


def speaker_names(model: torch.nn.Module, names: Sequence[str] = ()) -> tuple[str, ...]:
    """The names for the model's speaker ids: `names` if given, else NVIDIA's (LibriTTS) if known."""
    return tuple(names) or tuple(getattr(model, "nvidia_speaker_names", ()))


def speaker_index(model: torch.nn.Module, speaker: int | str, names: Sequence[str] = ()) -> int:
    """An embedding row for an int id (checked) or a name (looked up in `speaker_names`); a digit
    string that is not a known name is taken as an id."""
    embedding = getattr(model, "speaker_embedding", None)
    if embedding is None:
        raise ValueError(f"{type(model).__name__} has no speaker embedding; pass speaker=None")
    count, known = embedding.num_embeddings, speaker_names(model, names)
    if isinstance(speaker, str) and speaker in known:
        return known.index(speaker)
    if isinstance(speaker, str) and not speaker.isdigit():
        shown = ", ".join(known[:12]) + (" ..." if len(known) > 12 else "")
        raise ValueError(f"unknown speaker {speaker!r}; known speakers: {shown or '(no names: pass an id)'}")
    index = int(speaker)
    if not 0 <= index < count:
        raise ValueError(f"speaker id {index} out of range: the model has {count} speakers")
    return index


@torch.no_grad()
def speaker_embedding(model: torch.nn.Module, speaker: int | str, names: Sequence[str] = ()) -> torch.Tensor:
    """(1, speaker_embedding_dim) row for an id or a name."""
    embedding = model.speaker_embedding
    index = torch.tensor([speaker_index(model, speaker, names)], device=embedding.weight.device)
    return embedding(index)
