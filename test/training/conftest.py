"""Fixtures of the training tests: the tiny local Qwen2.5-VL (built once per session) and tiny data files.

Everything is made here: no hub access. The viewpoint parquet files follow training/dataset/schema.py exactly
(``schema.features()``), as the dataset builder writes them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from tiny_data import sft_settings, viewpoint_rows, write_viewpoint

os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('HF_DATASETS_OFFLINE', '1')
os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')
os.environ.setdefault('WANDB_DISABLED', 'true')


@pytest.fixture(scope='session')
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Qwen2.5-VL checkpoint directory (built once per test session)."""
    from actial_ros.training.fine_tuning.tiny_model import build_tiny_qwen25vl

    return Path(build_tiny_qwen25vl(tmp_path_factory.mktemp('tiny_qwen25vl') / 'model', seed=0))


@pytest.fixture(scope='session')
def viewpoint_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A viewpoint dataset directory: a train shard (12 rows, half with CoT) and a test shard (6 rows)."""
    root = tmp_path_factory.mktemp('viewpoint')
    write_viewpoint(root / 'train-00000.parquet', viewpoint_rows(12, split='train'))
    write_viewpoint(root / 'test-00000.parquet', viewpoint_rows(6, split='test', seed=1, cot_every=0))
    return root


@pytest.fixture(scope='session')
def sft_full(tiny_model: Path, viewpoint_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A full fine-tuning SFT run that overfits the tiny train split (the GRPO warm start too)."""
    from actial_ros.training.fine_tuning.sft import train

    out = tmp_path_factory.mktemp('sft_full') / 'run'
    return train(sft_settings(tiny_model, viewpoint_dir, out))


@pytest.fixture(scope='session')
def sft_lora(tiny_model: Path, viewpoint_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A short LoRA SFT run (its output directory is a peft adapter)."""
    from actial_ros.training.fine_tuning.sft import train

    out = tmp_path_factory.mktemp('sft_lora') / 'run'
    return train(
        sft_settings(
            tiny_model,
            viewpoint_dir,
            out,
            finetuning='lora',
            max_steps=6,
            learning_rate=5e-2,
            lora_rank=8,
            lora_alpha=16,
            lora_dropout=0.0,
            logging_steps=1,
        )
    )
