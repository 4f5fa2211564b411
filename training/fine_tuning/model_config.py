"""The settings SFT and GRPO share, declared once (as TRL keeps its ``*_config.py`` dataclasses apart from the
trainers, with one shared ``ModelConfig``).

:class:`ModelConfig` is the model and how it is fine-tuned; :class:`TrainingConfig` adds what every run has
(output folder, optimiser basics, logging, checkpoints, resume, seed, extra TRL options). ``SftSettings``
(:mod:`actial_ros.training.fine_tuning.sft`) and ``GrpoSettings`` (:mod:`actial_ros.training.fine_tuning.grpo`)
extend it with their own settings and restate only the defaults that differ (a redeclared field keeps its
place). Every field is a flag and a YAML key (:mod:`actial_ros.training.config`: defaults < ``--config`` YAML <
flags). The fields whose names TRL's configs also have go to them by name (:func:`trl_arguments`), not copied by
hand.

Defaults are the paper's SFT (../shared/notes/ACTIAL.md); GRPO restates its own.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from actial_ros.errors import ConfigError
from actial_ros.imaging import MAX_MODEL_HEIGHT, MAX_MODEL_WIDTH
from actial_ros.questions import DEFAULT_SYSTEM_PROMPT

__all__ = [
    'LANGUAGE_LORA_TARGETS',
    'NOT_FOR_TRL',
    'ModelConfig',
    'TrainingConfig',
    'help_text',
    'trl_arguments',
    'trl_config',
]

LANGUAGE_LORA_TARGETS = r'.*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)'
"""Default LoRA target (a regular expression peft full-matches against module names): every attention and MLP
projection of the language model, none of the vision tower (whose MLP uses the same projection names)."""

NOT_FOR_TRL = frozenset({'gradient_checkpointing', 'resume_from_checkpoint', 'trl'})
"""Settings named like a TRL option that must not reach it by name: ``gradient_checkpointing`` is resolved first
(``None``: on with CUDA) and given as ``activation_checkpointing``; ``resume_from_checkpoint`` goes to
``Trainer.train`` after :func:`actial_ros.training.fine_tuning.runtime.resume_argument`; ``trl`` is the extra
options themselves."""


def help_text(text: str) -> dict[str, str]:
    """A settings field's metadata: its flag's help."""
    return {'help': text}


@dataclass
class ModelConfig:
    """The model and how it is fine-tuned.

    Attributes: one per flag (``--field-name``); each field's help says what it is.
    """

    model: str = field(metadata=help_text('checkpoint to start from: local directory or hub id'))
    processor: str | None = field(default=None, metadata=help_text('processor source (default: model)'))
    system_prompt: str = field(default=DEFAULT_SYSTEM_PROMPT, metadata=help_text("system prompt ('' for none)"))
    finetuning: str = field(default='full', metadata=help_text('full or lora'))
    freeze_vision: bool = field(default=True, metadata=help_text('freeze the vision tower (full fine-tuning)'))
    lora_rank: int = field(default=64, metadata=help_text('LoRA rank'))
    lora_alpha: int = field(default=128, metadata=help_text('LoRA alpha'))
    lora_dropout: float = field(default=0.05, metadata=help_text('LoRA dropout'))
    lora_target_modules: str = field(default=LANGUAGE_LORA_TARGETS, metadata=help_text('LoRA target regex'))
    dtype: str = field(default='auto', metadata=help_text('auto, bfloat16, float16 or float32'))
    attn_implementation: str | None = field(default=None, metadata=help_text('sdpa, flash_attention_2 or eager'))
    gradient_checkpointing: bool | None = field(default=None, metadata=help_text('default: on when CUDA is available'))
    max_image_width: int = field(default=MAX_MODEL_WIDTH, metadata=help_text('downscale larger images (pixels)'))
    max_image_height: int = field(default=MAX_MODEL_HEIGHT, metadata=help_text('downscale larger images (pixels)'))
    max_pixels: int | None = field(default=None, metadata=help_text("image processor's max_pixels override"))


@dataclass
class TrainingConfig(ModelConfig):
    """A training run: :class:`ModelConfig` plus outputs, optimiser basics, logging, checkpoints and seed."""

    output_dir: str = field(default='runs/train', metadata=help_text('where checkpoints and the final model go'))
    num_samples: int | None = field(default=None, metadata=help_text('size of the training set (default: all)'))
    learning_rate: float = field(default=5e-6, metadata=help_text('peak learning rate (paper: 5e-6)'))
    lr_scheduler_type: str = field(default='cosine', metadata=help_text('learning-rate schedule after warm-up'))
    warmup_steps: int = field(default=50, metadata=help_text('warm-up steps (paper: 50)'))
    weight_decay: float = field(default=0.0, metadata=help_text('AdamW weight decay'))
    per_device_batch_size: int = field(default=1, metadata=help_text('samples per device per forward pass'))
    logging_steps: int = field(default=10, metadata=help_text('log every N steps'))
    save_steps: int = field(default=500, metadata=help_text('checkpoint every N steps'))
    save_total_limit: int | None = field(default=3, metadata=help_text('checkpoints kept'))
    resume_from_checkpoint: str | None = field(default=None, metadata=help_text("'latest' or a checkpoint directory"))
    report_to: list[str] = field(default_factory=lambda: ['none'], metadata=help_text('tensorboard, wandb, none'))
    seed: int = field(default=42, metadata=help_text('seed of mixing, shuffling and initialisation'))
    trl: dict[str, Any] = field(default_factory=dict, metadata=help_text('extra TRL config options'))

    def row_options(self) -> dict[str, Any]:
        """What every training set is built with (keyword arguments of
        :func:`~actial_ros.training.fine_tuning.data.build_sft_dataset` and ``build_grpo_dataset``): the system
        prompt, the set's size (``total``), the mixing seed and the image limits (pixels)."""
        return {
            'system_prompt': self.system_prompt,
            'total': self.num_samples,
            'seed': self.seed,
            'max_image_width': self.max_image_width,
            'max_image_height': self.max_image_height,
        }


def trl_arguments(settings: Any, config_cls: type[Any]) -> dict[str, Any]:
    """The settings that TRL's ``config_cls`` (``SFTConfig``, ``GRPOConfig``) names too, by name and with the
    same meaning (``learning_rate``, ``seed``, ``num_generations``, ``vllm_mode``...), except :data:`NOT_FOR_TRL`.
    What differs in name or must be computed (batch arithmetic, precision) the caller passes itself."""
    accepted = {f.name for f in dataclasses.fields(config_cls)}
    return {
        f.name: getattr(settings, f.name)
        for f in dataclasses.fields(settings)
        if f.name in accepted and f.name not in NOT_FOR_TRL
    }


def trl_config(config_cls: type[Any], settings: TrainingConfig, **computed: Any) -> Any:
    """TRL's ``config_cls`` for a run: the settings it names too (:func:`trl_arguments`), then the run's extra
    ``trl`` options (which win over a setting of the same name, e.g. ``trl: {use_vllm: true}``), then what the
    run computes itself (``computed``: batch arithmetic, precision, processes).

    Raises:
        ConfigError: a ``trl`` option names one of ``computed`` (the run sets it: change the setting it comes
            from instead).
    """
    clash = sorted(set(settings.trl) & set(computed))
    if clash:
        raise ConfigError(f'trl option(s) {clash} are computed by the run; set the settings they come from instead')
    return config_cls(**{**trl_arguments(settings, config_cls), **settings.trl, **computed})
