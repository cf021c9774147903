"""Config dataclasses: strict JSON round trip and `--set` overrides."""

from __future__ import annotations

import dataclasses

import pytest

from tts.audio import AudioConfig
from tts.config import Config, TextConfig, apply_overrides
from tts.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class _Model(Config):
    audio: AudioConfig = AudioConfig()
    text: TextConfig = TextConfig()
    channels: int = 8
    dropout: float = 0.1
    kernel_sizes: tuple[int, ...] = (3, 5)
    speakers: tuple[str, ...] = ()
    gst: AudioConfig | None = None


def test_round_trip_through_json_with_nesting_and_optionals():
    config = _Model(channels=4, speakers=("slt", "rms"), gst=AudioConfig(n_mels=40))
    assert _Model.from_json(config.to_json()) == config
    assert _Model.from_dict(_Model().to_dict()) == _Model()


def test_unknown_keys_and_wrong_types_name_the_dotted_path():
    with pytest.raises(ConfigError, match="unknown config key audio.hop"):
        _Model.from_dict({"audio": {"hop": 256}})
    with pytest.raises(ConfigError, match="channels: expected int, found str"):
        _Model.from_dict({"channels": "eight"})
    with pytest.raises(ConfigError, match=r"kernel_sizes\[1\]: expected int"):
        _Model.from_dict({"kernel_sizes": [3, 2.5]})
    with pytest.raises(ConfigError, match="expected int, found bool"):
        _Model.from_dict({"channels": True})


def test_ints_are_accepted_where_floats_are_expected():
    assert _Model.from_dict({"dropout": 0}).dropout == 0.0


def test_overrides_are_type_checked_like_json():
    config = apply_overrides(_Model(), ["channels=16", "audio.n_mels=40", "text.symbol_set=flowtron",
                                        "kernel_sizes=[1,2,3]"])
    assert (config.channels, config.audio.n_mels, config.text.symbol_set) == (16, 40, "flowtron")
    assert config.kernel_sizes == (1, 2, 3)
    with pytest.raises(ConfigError, match="unknown config key audio.nmels"):
        apply_overrides(_Model(), ["audio.nmels=40"])
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides(_Model(), ["channels"])
    with pytest.raises(ConfigError, match="expected int"):
        apply_overrides(_Model(), ["channels=wide"])


def test_text_config_validates_its_values():
    with pytest.raises(ConfigError, match="symbol_set"):
        TextConfig(symbol_set="klingon")
    with pytest.raises(ConfigError, match="p_arpabet"):
        TextConfig(p_arpabet=1.5)
