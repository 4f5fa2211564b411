"""``actial-ros-train sft``: knowledge injection by supervised fine-tuning with the hybrid cold start.

TRL's ``SFTTrainer`` on a Qwen2.5-VL checkpoint (local path or hub id), conversational samples
``[system, user(image, image, question), assistant(target)]`` with the loss on the assistant turn only
(TRL's ``assistant_only_loss`` with the Qwen2.5-VL training template's ``{% generation %}`` markers), full
fine-tuning or LoRA (peft). The training set is the hybrid cold start of the paper
(../shared/notes/ACTIAL.md): the viewpoint dataset's multiple-choice rows mixed with its CoT rows at
``cot_ratio`` (0.1, i.e. 0.9 : 0.1), see :func:`actial_ros.training.fine_tuning.data.build_sft_dataset`.

Defaults are the paper's (``config/training/sft.yaml``): 2 epochs, learning rate 5e-6, global batch 128
reached through gradient accumulation (``global_batch_size / (per_device_batch_size * processes)``), 50
warm-up steps. Every setting is a flag too (``--learning-rate 1e-5``); ``--resume-from-checkpoint latest``
resumes from the newest checkpoint in ``output_dir``.

Examples::

    actial-ros-train sft --config config/training/sft.yaml --model Qwen/Qwen2.5-VL-7B-Instruct \\
        --data data/viewpoint --output-dir runs/sft
    accelerate launch --config_file config/accelerate/multi_gpu_zero3.yaml -m actial_ros.training.fine_tuning.sft \\
        --config config/training/sft.yaml --model /models/Qwen2.5-VL-7B-Instruct --data data/viewpoint
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from actial_ros.training import config as settings_io
from actial_ros.training.fine_tuning.prompts import DEFAULT_MC_TARGET

# Relative: mypy checks training/ as the package 'training' and cannot see 'actial_ros.training' (setup.py's
# package_dir), so an absolute import would make the base class Any to it.
from .model_config import TrainingConfig, trl_config
from .model_config import help_text as _h
from .runtime import SettingsCommand

__all__ = ['SftResult', 'SftSettings', 'build_trainer', 'configure_parser', 'main', 'run', 'train']

_LOG = logging.getLogger(__name__)


@dataclass
class SftSettings(TrainingConfig):
    """Settings of an SFT run (YAML keys = field names; flags ``--field-name``). Defaults: the paper's. The model
    and run settings are :class:`~actial_ros.training.fine_tuning.model_config.TrainingConfig`'s; SFT's own follow."""

    model: str = field(metadata=_h('base checkpoint: local directory or hub id'))
    output_dir: str = field(default='runs/sft', metadata=_h('where checkpoints and the final model go'))
    num_samples: int | None = field(default=None, metadata=_h('mix size (default: all MC rows + CoT share)'))
    trl: dict[str, Any] = field(default_factory=dict, metadata=_h('extra SFTConfig options'))
    data: list[str] = field(default_factory=list, metadata=_h('viewpoint dataset parquet files/dirs/globs'))
    cot_data: list[str] | None = field(default=None, metadata=_h('CoT rows source (default: data)'))
    split: str | None = field(default='train', metadata=_h("viewpoint split to train on ('' for all rows)"))
    cot_ratio: float = field(default=0.1, metadata=_h('share of CoT samples in the mix (paper: 0.1)'))
    mc_target_template: str = field(default=DEFAULT_MC_TARGET, metadata=_h('target of MC rows ({letter})'))
    assistant_only_loss: bool = field(
        default=True, metadata=_h('loss on the assistant reply only; false: on every token (from-scratch runs)')
    )
    num_train_epochs: float = field(default=2.0, metadata=_h('epochs (paper: 2)'))
    max_steps: int = field(default=-1, metadata=_h('stop after this many optimizer steps (-1: epochs)'))
    global_batch_size: int = field(default=128, metadata=_h('samples per optimizer step (paper: 128)'))
    max_length: int | None = field(default=4096, metadata=_h('truncate samples to this many tokens'))
    row_trace: str | None = field(
        default=None, metadata=_h('write the row ids each process trains on to DIR/rows_rank{R}.jsonl (checks)')
    )
    dataloader_num_workers: int = field(default=0, metadata=_h('data loader worker processes'))


@dataclass(frozen=True)
class SftResult:
    """What :func:`train` produced.

    Attributes:
        output_dir: the final model (full weights, or the LoRA adapter) with the processor files.
        global_step: optimizer steps done (including those before a resume).
        log_history: the trainer's log records (``loss``, ``learning_rate``, ... per logging step).
        num_samples: size of the training mix; num_cot: CoT samples in it.
    """

    output_dir: Path
    global_step: int
    log_history: list[dict[str, Any]]
    num_samples: int
    num_cot: int


def _dataset(settings: SftSettings) -> Any:
    from actial_ros.training.fine_tuning.data import build_sft_dataset, load_viewpoint

    if not settings.data:
        from actial_ros.errors import ConfigError

        raise ConfigError('sft needs viewpoint data (--data PATH ... or data: in the YAML)')
    split = settings.split or None
    mc = load_viewpoint(settings.data, split=split)
    cot = load_viewpoint(settings.cot_data, split=split) if settings.cot_data else None
    return build_sft_dataset(
        mc,
        cot,
        cot_ratio=settings.cot_ratio,
        mc_target_template=settings.mc_target_template,
        **settings.row_options(),
    )


def build_trainer(settings: SftSettings, train_dataset: Any | None = None) -> Any:
    """The configured ``trl.SFTTrainer`` (model loaded, LoRA applied, data mixed), not yet trained.

    Raises:
        actial_ros.errors.ConfigError: invalid settings (batch arithmetic, fine-tuning mode, missing data).
    """
    from actial_ros.training.fine_tuning.runtime import gradient_accumulation, prepare_model
    from trl import SFTConfig, SFTTrainer  # type: ignore[attr-defined]

    dataset = _dataset(settings) if train_dataset is None else train_dataset
    prepared = prepare_model(settings)
    traced: dict[str, Any] = {'remove_unused_columns': False} if settings.row_trace else {}  # the trace reads ids
    args = trl_config(  # output_dir, epochs, steps, optimiser, logging, saving, seed... by name
        SFTConfig,
        settings,
        per_device_train_batch_size=settings.per_device_batch_size,
        gradient_accumulation_steps=gradient_accumulation(settings.global_batch_size, settings.per_device_batch_size),
        activation_checkpointing=prepared.activation_checkpointing,
        **traced,
        **prepared.precision,
        **prepared.distributed,
    )
    trainer = SFTTrainer(
        model=prepared.model,
        args=args,
        train_dataset=dataset,
        processing_class=prepared.processor,
        peft_config=prepared.peft_config,
    )
    if settings.row_trace:
        from actial_ros.training.fine_tuning.runtime import trace_rows

        trace_rows(trainer, settings.row_trace)
    return trainer


def train(settings: SftSettings, train_dataset: Any | None = None) -> SftResult:
    """Run SFT and save the final model (or LoRA adapter) with its processor in ``settings.output_dir``.

    Args:
        settings: the run's settings.
        train_dataset: a prepared dataset (``messages``, ``images``) instead of the viewpoint mix.

    Raises:
        actial_ros.errors.ConfigError: see :func:`build_trainer`; a resume path that does not exist.
    """
    from actial_ros.training.fine_tuning.runtime import train_and_save

    trainer = build_trainer(settings, train_dataset)
    out = train_and_save(trainer, settings, settings_io.describe(settings), 'sft')
    dataset = trainer.train_dataset
    kinds = dataset['kind'] if 'kind' in dataset.column_names else []
    return SftResult(
        output_dir=out,
        global_step=int(trainer.state.global_step),
        log_history=list(trainer.state.log_history),
        num_samples=len(dataset),
        num_cot=sum(1 for k in kinds if k == 'cot'),
    )


def _summary(result: SftResult) -> str:
    losses = [r['loss'] for r in result.log_history if 'loss' in r]
    loss = f'first/last loss {losses[0]:.4f}/{losses[-1]:.4f}' if losses else 'no loss logged'
    return (
        f'SFT done: {result.global_step} steps on {result.num_samples} samples ({result.num_cot} CoT); '
        f'{loss}; model in {result.output_dir}'
    )


_COMMAND = SettingsCommand(SftSettings, train, _summary, 'actial_ros.training.fine_tuning.sft', _LOG)
# actial-ros-train sft (configure_parser, run) and python -m (main): SettingsCommand's methods
configure_parser, run, main = _COMMAND.configure_parser, _COMMAND.run, _COMMAND.main


if __name__ == '__main__':
    raise SystemExit(main())
