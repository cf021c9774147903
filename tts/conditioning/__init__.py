"""Conditioning shared by the mel generators: pitch (F0), rhythm (alignment), style (GST), speaker.

    f0 = tts.conditioning.extract_f0(audio, sample_rate=22050)          # Hz per mel frame, 0 = unvoiced
    rhythm = tts.conditioning.extract_rhythm(model, "the transcript", "reference.wav")  # (n_frames, n_tokens)
    style = tts.conditioning.style_embedding(model, audio="reference.wav")  # (1, token_dim)

- `f0`: Mellotron's YIN (vectorised, exact), pYIN, voicing, per-speaker log-F0 statistics,
  semitone shifts, resampling to a frame count.
- `rhythm`: forced alignment by teacher-forcing any Tacotron-family model, durations per token.
- `style`: GST embeddings and speaker lookup by id or name.
- `metrics`: GPE, VDE and FFE between two contours.
"""

from tts.conditioning.f0 import (F0Statistics, extract_f0, f0_statistics, match_speaker, normalize_f0, resample_f0,
                                 shift_pitch, voiced, yin)
from tts.conditioning.metrics import (PitchErrors, f0_frame_error, gross_pitch_error, pitch_errors,
                                      voicing_decision_error)
from tts.conditioning.rhythm import (Alignment, align, alignment_from_durations, durations_from_alignment,
                                     extract_rhythm, is_monotonic)
from tts.conditioning.style import reference_mel, speaker_embedding, speaker_index, speaker_names, style_embedding

__all__ = ["F0Statistics", "extract_f0", "f0_statistics", "match_speaker", "normalize_f0", "resample_f0",
           "shift_pitch", "voiced", "yin", "PitchErrors", "f0_frame_error", "gross_pitch_error", "pitch_errors",
           "voicing_decision_error", "Alignment", "align", "alignment_from_durations", "durations_from_alignment",
           "extract_rhythm", "is_monotonic", "reference_mel", "speaker_embedding", "speaker_index", "speaker_names",
           "style_embedding"]
