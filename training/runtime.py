"""What SFT and GRPO share: batch arithmetic, precision, LoRA, freezing, resuming, entry points.

Distribution is accelerate's (``accelerate launch --config_file config/accelerate/...``): nothing here
starts processes; the world size is read from the ``WORLD_SIZE`` variable accelerate/torchrun set.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from actial_ros.errors import ConfigError

__all__ = [
    'LANGUAGE_LORA_TARGETS',
    'freeze_vision_tower',
    'gradient_accumulation',
    'lora_config',
    'module_main',
    'precision_flags',
    'resume_argument',
    'save_settings',
    'world_size',
]

_LOG = logging.getLogger(__name__)

LANGUAGE_LORA_TARGETS = r'.*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)'
"""Default LoRA target (a regular expression peft full-matches against module names): every attention and MLP
projection of the language model, none of the vision tower (whose MLP uses the same projection names)."""


def world_size() -> int:
    """Number of training processes (``WORLD_SIZE`` set by accelerate/torchrun; 1 when unset)."""
    return max(1, int(os.environ.get('WORLD_SIZE', '1')))


def gradient_accumulation(global_batch: int, per_device: int, processes: int | None = None) -> int:
    """Accumulation steps so that ``per_device * processes * steps == global_batch``.

    Raises:
        ConfigError: ``global_batch`` is not a positive multiple of ``per_device * processes``.
    """
    processes = world_size() if processes is None else processes
    step = per_device * processes
    if global_batch < 1 or per_device < 1 or global_batch % step != 0:
        raise ConfigError(
            f'global batch {global_batch} must be a positive multiple of per-device batch {per_device} x '
            f'{processes} process(es)'
        )
    return global_batch // step


def precision_flags(dtype: Any) -> dict[str, bool]:
    """``bf16``/``fp16`` TrainingArguments flags matching the model's parameter dtype."""
    import torch

    return {'bf16': dtype == torch.bfloat16, 'fp16': dtype == torch.float16}


def lora_config(*, rank: int, alpha: int, dropout: float, target_modules: str | list[str]) -> Any:
    """A ``peft.LoraConfig`` for causal LM fine-tuning of the language model."""
    from peft import LoraConfig

    return LoraConfig(
        r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=target_modules, task_type='CAUSAL_LM'
    )


def freeze_vision_tower(model: Any) -> int:
    """Freeze the vision encoder (``model.model.visual``, patch merger included); returns parameters frozen.

    Raises:
        ConfigError: the model has no vision tower under ``model.visual`` or ``model.model.visual``.
    """
    visual = getattr(getattr(model, 'model', None), 'visual', None) or getattr(model, 'visual', None)
    if visual is None:
        raise ConfigError('freeze_vision: the model has no vision tower (model.visual)')
    frozen = 0
    for parameter in visual.parameters():
        parameter.requires_grad_(False)
        frozen += parameter.numel()
    return frozen


def resume_argument(value: str | bool | None, output_dir: str | Path) -> str | bool | None:
    """``resume_from_checkpoint`` for ``Trainer.train``: a checkpoint path, ``True`` (the latest) or ``None``.

    ``'latest'``/``'true'``/``True`` resume from the newest ``checkpoint-*`` in ``output_dir`` (``None`` when there
    is none yet, so a first run starts from scratch); ``'false'``/``''``/``None`` start fresh; anything else is a path.

    Raises:
        ConfigError: a path that does not exist.
    """
    if value is None or value is False or (isinstance(value, str) and value.lower() in ('', 'false', 'no', 'none')):
        return None
    if value is True or (isinstance(value, str) and value.lower() in ('latest', 'true', 'yes', 'auto')):
        from transformers.trainer_utils import get_last_checkpoint

        out = Path(output_dir)
        return True if out.is_dir() and get_last_checkpoint(str(out)) else None  # type: ignore[no-untyped-call]
    path = Path(str(value))
    if not path.is_dir():
        raise ConfigError(f'resume_from_checkpoint: no checkpoint directory {path}')
    return str(path)


def save_settings(settings: dict[str, Any], path: str | Path) -> None:
    """Write the resolved settings of a run as YAML next to its outputs."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(yaml.safe_dump(settings, sort_keys=False), encoding='utf-8')


def module_main(
    configure: Callable[[argparse.ArgumentParser], None],
    run: Callable[[argparse.Namespace], int],
    prog: str,
    argv: Sequence[str] | None = None,
) -> int:
    """``python -m actial_ros.training.<command>`` (also under ``accelerate launch -m``)."""
    parser = argparse.ArgumentParser(prog=prog)
    configure(parser)
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    return int(run(args))
