"""GRPO after a short SFT warm start on the tiny model: non-zero rewards, weights change; the schedule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip('trl')  # the train extra (torch, transformers, trl, peft)
pytest.importorskip('PIL')
import torch
from actial_ros.training.cli import main as cli_main
from actial_ros.training.fine_tuning.grpo import GrpoSettings, schedule, train
from safetensors.torch import load_file
from tiny_data import write_sat_array

from actial_ros.errors import ConfigError


def _settings(model: Path, sat: Path, viewpoint: Path, out: Path, **overrides: Any) -> GrpoSettings:
    values: dict[str, Any] = {
        'model': str(model),
        'sat_data': [str(sat)],
        'viewpoint_data': [str(viewpoint)],
        'viewpoint_ratio': 0.5,
        'output_dir': str(out),
        'num_generations': 4,
        'rollout_batch_prompts': 2,
        'mini_batch_prompts': 2,
        'rollout_steps': 4,
        'per_device_batch_size': 4,
        'max_completion_length': 16,
        'learning_rate': 1e-3,
        'weight_decay': 0.0,
        'save_steps': 1000,
        'gradient_checkpointing': False,
    }
    values.update(overrides)
    return GrpoSettings(**values)


@pytest.fixture(scope='module')
def sat_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp('sat')
    write_sat_array(root / 'SAT_train.parquet')
    return root


def test_grpo_after_sft_warm_start(sft_full: Any, sat_dir: Path, viewpoint_dir: Path, tmp_path: Path) -> None:
    result = train(_settings(sft_full.output_dir, sat_dir, viewpoint_dir, tmp_path / 'grpo'))
    logs = [r for r in result.log_history if 'reward' in r]
    assert result.global_step == 4 and len(logs) == 4
    assert result.num_prompts == 12  # 6 SAT prompts + as many viewpoint prompts (ratio 0.5)
    mean_reward = sum(r['reward'] for r in logs) / len(logs)
    assert mean_reward > 0.0
    assert max(r['rewards/format_reward/mean'] for r in logs) > 0.0
    assert any(r['reward_std'] > 0 for r in logs)  # some group had an advantage signal
    for r in logs:  # total = 0.5 format + 0.5 accuracy
        assert r['reward'] == pytest.approx(
            0.5 * r['rewards/format_reward/mean'] + 0.5 * r['rewards/accuracy_reward/mean'], abs=1e-6
        )
    before = load_file(str(sft_full.output_dir / 'model.safetensors'))
    after = load_file(str(tmp_path / 'grpo' / 'model.safetensors'))
    assert any(not torch.equal(value, after[name]) for name, value in before.items())
    assert (tmp_path / 'grpo' / 'chat_template.jinja').is_file()


def test_grpo_on_viewpoint_rows_alone(sft_full: Any, viewpoint_dir: Path, tmp_path: Path) -> None:
    """A robot owner has bags, not SAT: every prompt is a viewpoint question of the robot's own data."""
    settings = _settings(sft_full.output_dir, viewpoint_dir, viewpoint_dir, tmp_path / 'g', rollout_steps=2)
    settings.sat_data = []
    result = train(settings)
    assert result.global_step == 2
    assert result.num_prompts == 12  # every train row of the viewpoint set once
    logs = [r for r in result.log_history if 'reward' in r]
    assert len(logs) == 2 and max(r['rewards/format_reward/mean'] for r in logs) > 0.0
    state = (tmp_path / 'g' / 'trainer_state.json').read_text()
    assert 'rewards/accuracy_reward/mean' in state  # the reward log is kept beside the model


def test_random_model_gets_no_reward_but_runs(
    tiny_model: Path, sat_dir: Path, viewpoint_dir: Path, tmp_path: Path
) -> None:
    result = train(
        _settings(
            tiny_model,
            sat_dir,
            viewpoint_dir,
            tmp_path / 'g',
            rollout_steps=1,
            finetuning='lora',
            lora_rank=4,
            viewpoint_ratio=0.0,
        )
    )
    assert result.global_step == 1 and result.num_prompts == 6
    assert [r['reward'] for r in result.log_history if 'reward' in r] == [0.0]
    assert (tmp_path / 'g' / 'adapter_config.json').is_file()


def test_schedule_arithmetic() -> None:
    paper = GrpoSettings(model='m')
    assert schedule(paper, processes=8) == {
        'gradient_accumulation_steps': 64,
        'steps_per_generation': 256,
        'max_steps': 600,
    }
    assert schedule(paper, processes=64) == {
        'gradient_accumulation_steps': 8,
        'steps_per_generation': 32,
        'max_steps': 600,
    }
    with pytest.raises(ConfigError):
        schedule(GrpoSettings(model='m', mini_batch_prompts=300), processes=8)
    with pytest.raises(ConfigError):
        schedule(GrpoSettings(model='m', num_generations=1), processes=1)
    with pytest.raises(ConfigError):
        schedule(GrpoSettings(model='m', per_device_batch_size=3), processes=1)


def test_cli_grpo_errors(tmp_path: Path) -> None:
    assert cli_main(['grpo', '--model', str(tmp_path), '--output-dir', str(tmp_path / 'o')]) == 2  # no prompts
    assert cli_main(['grpo', '--model', str(tmp_path), '--sat-data', str(tmp_path / 'none.parquet')]) == 2
