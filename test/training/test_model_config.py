"""The settings SFT and GRPO share (training/fine_tuning/model_config.py): declared once, handed to TRL's
configs by name."""

from __future__ import annotations

import pytest

pytest.importorskip('trl')
from actial_ros.training.fine_tuning.grpo import GrpoSettings
from actial_ros.training.fine_tuning.model_config import NOT_FOR_TRL, TrainingConfig, trl_arguments, trl_config
from actial_ros.training.fine_tuning.sft import SftSettings
from trl import GRPOConfig, SFTConfig  # type: ignore[attr-defined]

from actial_ros.errors import ConfigError


def test_both_commands_extend_the_one_declaration_and_restate_only_their_defaults() -> None:
    assert issubclass(SftSettings, TrainingConfig) and issubclass(GrpoSettings, TrainingConfig)
    sft, grpo = SftSettings(model='m'), GrpoSettings(model='m')
    assert (sft.freeze_vision, sft.learning_rate, sft.per_device_batch_size) == (True, 5e-6, 1)
    assert (grpo.freeze_vision, grpo.learning_rate, grpo.per_device_batch_size) == (False, 1e-6, 8)
    assert sft.lora_target_modules == grpo.lora_target_modules and sft.system_prompt == grpo.system_prompt


def test_settings_reach_trl_by_name_and_extra_options_win() -> None:
    settings = SftSettings(model='m', output_dir='out', learning_rate=1e-3, seed=7, trl={'seed': 9})
    mapped = trl_arguments(settings, SFTConfig)
    assert mapped['learning_rate'] == 1e-3 and mapped['output_dir'] == 'out' and mapped['max_length'] == 4096
    assert not set(mapped) & NOT_FOR_TRL and 'model' not in mapped
    config = trl_config(SFTConfig, settings, per_device_train_batch_size=2, bf16=False)  # precision: the run's
    assert config.seed == 9 and config.learning_rate == 1e-3 and config.per_device_train_batch_size == 2
    grpo = trl_arguments(GrpoSettings(model='m', num_generations=4, vllm_mode='server'), GRPOConfig)
    assert grpo['num_generations'] == 4 and grpo['vllm_mode'] == 'server' and grpo['beta'] == 0.01


def test_an_extra_option_cannot_override_what_the_run_computes() -> None:
    settings = SftSettings(model='m', trl={'gradient_accumulation_steps': 3})
    with pytest.raises(ConfigError, match='gradient_accumulation_steps'):
        trl_config(SFTConfig, settings, gradient_accumulation_steps=8)
