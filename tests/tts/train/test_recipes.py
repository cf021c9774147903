"""The default-voice recipe's configs resolve as the model kinds train.sh trains them with."""

import re
from pathlib import Path

import pytest

from tts.train.setup import resolve_configs
from tts.train.task import task_for

RECIPE = Path(__file__).resolve().parents[3] / "recipes" / "default_voice"
KIND_OF = {"tacotron2": "tacotron2", "mellotron": "mellotron", "mellotron_wide": "mellotron",
           "mellotron_polish": "mellotron", "mellotron_refiner": "mellotron",
           "mellotron_refiner_deep": "mellotron", "mellotron_refiner_gan": "mellotron", "flowtron": "flowtron"}


@pytest.mark.parametrize("config", sorted(RECIPE.glob("*.json")), ids=lambda path: path.stem)
def test_each_recipe_config_resolves_for_its_kind(config):
    assert config.stem in KIND_OF, f"{config.name}: add it to KIND_OF with the kind it trains"
    model_config, train_config = resolve_configs(task_for(KIND_OF[config.stem]), str(config))
    assert train_config.max_steps > 0 and model_config.to_dict()


def test_train_sh_names_only_configs_that_exist():
    named = set(re.findall(r"recipes/default_voice/(\w+\.json)", (RECIPE / "train.sh").read_text()))
    assert named and all((RECIPE / name).is_file() for name in named), named
