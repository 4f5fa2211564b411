"""``actial-ros-train grpo``: generalisation by GRPO from the SFT checkpoint.

TRL's ``GRPOTrainer`` with the paper's two rewards (:mod:`actial_ros.training.fine_tuning.rewards`: format and accuracy,
weighted 0.5 / 0.5 through ``reward_weights``) on SAT read from local parquet files (``array/SAT`` or the
verl layout of ``INno0o/SAT``, see :mod:`actial_ros.training.fine_tuning.data`), optionally mixed with viewpoint
questions at ``viewpoint_ratio``; or, without SAT, on viewpoint questions alone (``--viewpoint-data``: a
robot owner's own bags built with ``build-viewpoint``).

Defaults follow the official run (../shared/notes/ACTIAL.md and warmsnow-sh/Actial's verl script): group
size 16, learning rate 1e-6, KL coefficient 0.01 with the low-variance (k3) estimator TRL uses, clip 0.2,
4096 completion tokens, 150 rollout steps of 1024 prompts each, updated in mini-batches of 256 prompts
(verl's ``ppo_mini_batch_size``), images at most 960x540. In TRL terms one rollout step is
``rollout_batch_prompts / mini_batch_prompts`` optimizer steps (``steps_per_generation``), so
``max_steps = rollout_steps * rollout_batch_prompts / mini_batch_prompts``.

Rollouts: plain ``generate`` by default (CPU, tests); ``--use-vllm`` with ``--vllm-mode colocate`` (vLLM
inside each training process, sharing the GPU: ``vllm_gpu_memory_utilization``) or ``--vllm-mode server``
(a separate ``trl vllm-serve --model CKPT`` process; ``--vllm-server-base-url``). See docs/training.md.
"""

from __future__ import annotations

import logging
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from actial_ros.training import config as settings_io
from actial_ros.training.fine_tuning.rewards import DEFAULT_REWARD_WEIGHTS

from actial_ros.errors import ConfigError

# Relative: mypy checks training/ as the package 'training' and cannot see 'actial_ros.training' (setup.py's
# package_dir), so an absolute import would make the base class Any to it.
from .model_config import TrainingConfig, trl_config
from .model_config import help_text as _h
from .runtime import SettingsCommand

__all__ = [
    'GrpoResult',
    'GrpoSettings',
    'build_trainer',
    'configure_parser',
    'main',
    'run',
    'schedule',
    'train',
]

_LOG = logging.getLogger(__name__)


@dataclass
class GrpoSettings(TrainingConfig):
    """Settings of a GRPO run (YAML keys = field names; flags ``--field-name``). Defaults: the paper's. The model
    and run settings are :class:`~actial_ros.training.fine_tuning.model_config.TrainingConfig`'s (GRPO restates
    the defaults that differ from SFT's); GRPO's own follow."""

    model: str = field(metadata=_h('SFT checkpoint: local directory or hub id'))
    freeze_vision: bool = field(default=False, metadata=_h('freeze the vision tower (full fine-tuning)'))
    output_dir: str = field(default='runs/grpo', metadata=_h('where checkpoints and the final model go'))
    num_samples: int | None = field(default=None, metadata=_h('prompt-set size (default: all SAT + share)'))
    learning_rate: float = field(default=1e-6, metadata=_h('learning rate (paper: 1e-6)'))
    lr_scheduler_type: str = field(default='constant', metadata=_h('learning-rate schedule'))
    warmup_steps: int = field(default=0, metadata=_h('warm-up optimizer steps'))
    weight_decay: float = field(default=0.01, metadata=_h('AdamW weight decay (verl default 0.01)'))
    per_device_batch_size: int = field(default=8, metadata=_h('completions per device per forward pass'))
    logging_steps: int = field(default=1, metadata=_h('log every N optimizer steps'))
    save_steps: int = field(default=20, metadata=_h('checkpoint every N optimizer steps'))
    seed: int = field(default=42, metadata=_h('seed of mixing, sampling and initialisation'))
    trl: dict[str, Any] = field(default_factory=dict, metadata=_h('extra GRPOConfig options'))
    sat_data: list[str] = field(default_factory=list, metadata=_h('SAT parquet files/dirs/globs'))
    sat_layout: str = field(default='auto', metadata=_h('auto, array, verl or flat'))
    viewpoint_data: list[str] | None = field(
        default=None, metadata=_h('viewpoint parquet: mixed in at viewpoint_ratio, or the only prompts without SAT')
    )
    viewpoint_split: str = field(default='train', metadata=_h('split of the viewpoint rows'))
    viewpoint_ratio: float = field(default=0.0, metadata=_h('share of viewpoint prompts (paper: 0, SAT only)'))
    reward_weights: list[float] = field(
        default_factory=lambda: list(DEFAULT_REWARD_WEIGHTS), metadata=_h('weights of format and accuracy')
    )
    num_generations: int = field(default=16, metadata=_h('group size (paper: 16)'))
    rollout_batch_prompts: int = field(default=1024, metadata=_h('prompts per rollout step (paper: 1024)'))
    mini_batch_prompts: int = field(default=256, metadata=_h('prompts per optimizer step (verl: 256)'))
    rollout_steps: int = field(default=150, metadata=_h('rollout steps (paper: 150)'))
    beta: float = field(default=0.01, metadata=_h('KL coefficient (paper: 0.01, low-variance KL)'))
    epsilon: float = field(default=0.2, metadata=_h('clip range (paper: 0.2)'))
    loss_type: str = field(default='dapo', metadata=_h("TRL loss aggregation ('dapo' = verl token-mean)"))
    scale_rewards: str = field(default='group', metadata=_h('advantage scaling: group, batch or none'))
    max_completion_length: int = field(default=4096, metadata=_h('generated tokens (paper: 4096)'))
    temperature: float = field(default=1.0, metadata=_h('rollout sampling temperature'))
    top_p: float = field(default=1.0, metadata=_h('rollout nucleus sampling'))
    use_vllm: bool = field(default=False, metadata=_h('generate rollouts with vLLM'))
    vllm_mode: str = field(default='colocate', metadata=_h('colocate or server'))
    vllm_server_base_url: str | None = field(default=None, metadata=_h('trl vllm-serve URL (server mode)'))
    vllm_gpu_memory_utilization: float = field(default=0.7, metadata=_h('colocate: GPU share (paper: 0.7)'))
    vllm_tensor_parallel_size: int = field(default=1, metadata=_h('colocate: tensor parallel size'))
    vllm_max_model_length: int | None = field(default=8192, metadata=_h('vLLM context (paper: 8192)'))
    log_completions: bool = field(default=False, metadata=_h('print sample completions at each log'))
    reward_trace: str | None = field(
        default=None,
        metadata=_h('write every reward call (rank, step, prompt ids, rewards) to DIR/rewards_rank{R}.jsonl (checks)'),
    )


@dataclass(frozen=True)
class GrpoResult:
    """What :func:`train` produced.

    Attributes:
        output_dir: the final model (or LoRA adapter) with the processor files.
        global_step: optimizer steps done.
        log_history: the trainer's log records (``reward``, ``rewards/format_reward/mean``, ``kl``, ...).
        num_prompts: size of the prompt set.
    """

    output_dir: Path
    global_step: int
    log_history: list[dict[str, Any]]
    num_prompts: int


def schedule(settings: GrpoSettings, processes: int | None = None) -> dict[str, int]:
    """TRL batch arguments for the paper's rollout/mini-batch schedule.

    One optimizer step sees ``mini_batch_prompts * num_generations`` completions; one rollout (generation
    batch) is ``rollout_batch_prompts`` prompts, i.e. ``rollout_batch_prompts / mini_batch_prompts`` steps.

    Returns:
        ``gradient_accumulation_steps``, ``steps_per_generation`` and ``max_steps``.

    Raises:
        ConfigError: the sizes do not divide.
    """
    from actial_ros.training.fine_tuning.runtime import gradient_accumulation

    if settings.num_generations < 2:
        raise ConfigError(f'num_generations must be >= 2, got {settings.num_generations}')
    if settings.rollout_batch_prompts % settings.mini_batch_prompts != 0:
        raise ConfigError(
            f'rollout_batch_prompts {settings.rollout_batch_prompts} must be a multiple of mini_batch_prompts '
            f'{settings.mini_batch_prompts}'
        )
    accumulation = gradient_accumulation(
        settings.mini_batch_prompts * settings.num_generations, settings.per_device_batch_size, processes
    )
    updates = settings.rollout_batch_prompts // settings.mini_batch_prompts
    return {
        'gradient_accumulation_steps': accumulation,
        'steps_per_generation': accumulation * updates,
        'max_steps': settings.rollout_steps * updates,
    }


def _dataset(settings: GrpoSettings) -> Any:
    from actial_ros.training.fine_tuning.data import SatLayout, build_grpo_dataset, load_sat, load_viewpoint

    if not settings.sat_data and not settings.viewpoint_data:
        raise ConfigError(
            "grpo needs prompts: SAT data (--sat-data), viewpoint data (--viewpoint-data: a robot's own bags "
            'built with build-viewpoint), or both with --viewpoint-ratio'
        )
    layouts: dict[str, SatLayout] = {name: name for name in typing.get_args(SatLayout)}
    if settings.sat_layout not in layouts:
        raise ConfigError(f'sat_layout must be auto, array, verl or flat, got {settings.sat_layout!r}')
    sat = None
    if settings.sat_data:
        sat = load_sat(
            settings.sat_data,
            layout=layouts[settings.sat_layout],
            seed=settings.seed,
            max_image_width=settings.max_image_width,
            max_image_height=settings.max_image_height,
        )
    viewpoint = None
    if settings.viewpoint_data and (sat is None or settings.viewpoint_ratio > 0):
        viewpoint = load_viewpoint(settings.viewpoint_data, split=settings.viewpoint_split or None)
    return build_grpo_dataset(
        sat,
        viewpoint,
        viewpoint_ratio=settings.viewpoint_ratio,
        **settings.row_options(),
    )


def build_trainer(settings: GrpoSettings, train_dataset: Any | None = None) -> Any:
    """The configured ``trl.GRPOTrainer`` (model, rewards, prompt set), not yet trained.

    Raises:
        ConfigError: invalid settings.
    """
    from actial_ros.training.fine_tuning.rewards import reward_functions
    from actial_ros.training.fine_tuning.runtime import prepare_model
    from trl import GRPOConfig, GRPOTrainer  # type: ignore[attr-defined]

    if settings.vllm_mode not in ('colocate', 'server'):
        raise ConfigError(f"vllm_mode must be 'colocate' or 'server', got {settings.vllm_mode!r}")
    if len(settings.reward_weights) != 2:
        raise ConfigError(f'reward_weights must be [format, accuracy], got {settings.reward_weights}')
    batches = schedule(settings)
    dataset = _dataset(settings) if train_dataset is None else train_dataset
    prepared = prepare_model(settings, padding_side='left')
    args = trl_config(  # output_dir, optimiser, sampling, rewards, vLLM, saving... by name
        GRPOConfig,
        settings,
        max_steps=batches['max_steps'],
        gradient_accumulation_steps=batches['gradient_accumulation_steps'],
        steps_per_generation=batches['steps_per_generation'],
        per_device_train_batch_size=settings.per_device_batch_size,
        activation_checkpointing=prepared.activation_checkpointing,
        **prepared.precision,
        **prepared.distributed,
    )
    rewards = reward_functions()
    if settings.reward_trace:
        from actial_ros.training.fine_tuning.runtime import trace_rewards

        rewards = trace_rewards(rewards, settings.reward_trace)
    return GRPOTrainer(
        model=prepared.model,
        reward_funcs=rewards,
        args=args,
        train_dataset=dataset,
        processing_class=prepared.processor,
        peft_config=prepared.peft_config,
    )


def train(settings: GrpoSettings, train_dataset: Any | None = None) -> GrpoResult:
    """Run GRPO and save the final model (or LoRA adapter) with its processor in ``settings.output_dir``.

    Args:
        settings: the run's settings.
        train_dataset: a prepared prompt set (``prompt``, ``images``, ``solution``) instead of SAT.

    Raises:
        ConfigError: see :func:`build_trainer`.
    """
    from actial_ros.training.fine_tuning.runtime import train_and_save

    trainer = build_trainer(settings, train_dataset)
    out = train_and_save(trainer, settings, settings_io.describe(settings), 'grpo')
    return GrpoResult(
        output_dir=out,
        global_step=int(trainer.state.global_step),
        log_history=list(trainer.state.log_history),
        num_prompts=len(trainer.train_dataset),
    )


def _summary(result: GrpoResult) -> str:
    rewards = [r['reward'] for r in result.log_history if 'reward' in r]
    reward = f'mean reward first/last {rewards[0]:.3f}/{rewards[-1]:.3f}' if rewards else 'no reward logged'
    return (
        f'GRPO done: {result.global_step} steps on {result.num_prompts} prompts; {reward}; model in {result.output_dir}'
    )


_COMMAND = SettingsCommand(GrpoSettings, train, _summary, 'actial_ros.training.fine_tuning.grpo', _LOG)
# actial-ros-train grpo (configure_parser, run) and python -m (main): SettingsCommand's methods
configure_parser, run, main = _COMMAND.configure_parser, _COMMAND.run, _COMMAND.main


if __name__ == '__main__':
    raise SystemExit(main())
