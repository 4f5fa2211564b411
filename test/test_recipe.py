"""actial_ros.recipe: what a checkpoint records of its training, read back by evaluation and the node."""

from __future__ import annotations

from pathlib import Path

import pytest

from actial_ros.errors import ConfigError
from actial_ros.questions import DEFAULT_SYSTEM_PROMPT
from actial_ros.recipe import RECIPE_FILE, CheckpointRecipe, read_recipe, resolve_system_prompt, write_recipe


def test_a_recipe_round_trips_and_decides_the_system_prompt(tmp_path: Path) -> None:
    recipe = CheckpointRecipe(
        stage='sft',
        system_prompt='',
        max_pixels=3136,
        max_image_width=960,
        max_image_height=540,
        base_model='out/base',
        data=('out/data/train',),
        steps=800,
    )
    assert write_recipe(recipe, tmp_path) == tmp_path / RECIPE_FILE
    assert read_recipe(tmp_path) == recipe
    assert not list(tmp_path.glob('*.partial'))
    # no flag: the checkpoint's own prompt, even when it is "none"; a flag (also '') wins
    assert resolve_system_prompt(None, tmp_path) == ''
    assert resolve_system_prompt('Answer briefly.', tmp_path) == 'Answer briefly.'
    write_recipe(CheckpointRecipe(stage='grpo', system_prompt='Be Actial.'), tmp_path)
    assert resolve_system_prompt(None, tmp_path) == 'Be Actial.'
    assert resolve_system_prompt('', tmp_path) == ''
    # no recipe (an older checkpoint, a hub id): the package default
    assert read_recipe(tmp_path / 'elsewhere') is None
    assert resolve_system_prompt(None, 'Qwen/Qwen2.5-VL-7B-Instruct') == DEFAULT_SYSTEM_PROMPT
    assert resolve_system_prompt(None, None) == DEFAULT_SYSTEM_PROMPT  # a model behind an endpoint
    assert read_recipe(None) is None and read_recipe('') is None


@pytest.mark.parametrize('text', ['not json', '[1, 2]', '{"stage": "sft"}', '{"stage": "sft", "system_prompt": 3}'])
def test_a_broken_recipe_is_a_clear_error(tmp_path: Path, text: str) -> None:
    (tmp_path / RECIPE_FILE).write_text(text)
    with pytest.raises(ConfigError):
        read_recipe(tmp_path)
    with pytest.raises(ConfigError):
        resolve_system_prompt(None, tmp_path)
