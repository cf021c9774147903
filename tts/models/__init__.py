"""Mel generators and their building blocks.

- `tacotron2`: Tacotron 2 with optional GST and speaker embedding (`Tacotron2`, `Tacotron2Config`).
- `layers`, `gst`: blocks shared by the Tacotron family (NVIDIA's / Mellotron's key names).
- `presets`: named configs ("nvidia", "small", "tiny") and NVIDIA state-dict reading.
"""

from tts.models.presets import (TACOTRON2_PRESETS, nvidia_config_from_state_dict, nvidia_state_dict_to_ours,
                                tacotron2_preset)
from tts.models.tacotron2 import (GSTConfig, Tacotron2, Tacotron2Config, Tacotron2Output, guided_attention_loss,
                                  tacotron2_loss)

__all__ = ["GSTConfig", "TACOTRON2_PRESETS", "Tacotron2", "Tacotron2Config", "Tacotron2Output",
           "guided_attention_loss", "nvidia_config_from_state_dict", "nvidia_state_dict_to_ours",
           "tacotron2_loss", "tacotron2_preset"]
