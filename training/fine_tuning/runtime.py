"""What SFT and GRPO share: model set-up, batch arithmetic, precision, LoRA, freezing, resuming, saving,
entry points.

Distribution is accelerate's (``accelerate launch --config_file config/accelerate/...``): nothing here
starts processes; the world size is read from the ``WORLD_SIZE`` variable accelerate/torchrun set.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml
from actial_ros.training import config as settings_io
from actial_ros.training.fine_tuning.model_config import LANGUAGE_LORA_TARGETS, TrainingConfig

from actial_ros.errors import ConfigError
from actial_ros.recipe import RECIPE_FILE, CheckpointRecipe, write_recipe

__all__ = [
    'LANGUAGE_LORA_TARGETS',
    'PreparedModel',
    'SettingsCommand',
    'Shard',
    'freeze_vision_tower',
    'gradient_accumulation',
    'last_complete_checkpoint',
    'lora_config',
    'module_main',
    'precision_flags',
    'prepare_model',
    'process_rank',
    'restore_weights_through_from_pretrained',
    'resume_argument',
    'run_command',
    'save_settings',
    'trace_rewards',
    'trace_rows',
    'train_and_save',
    'world_size',
]

_LOG = logging.getLogger(__name__)


def world_size() -> int:
    """Number of training processes (``WORLD_SIZE`` set by accelerate/torchrun; 1 when unset)."""
    return max(1, int(os.environ.get('WORLD_SIZE') or 1))


def process_rank() -> int:
    """This process's rank among them (``RANK`` set by accelerate/torchrun; 0 when unset)."""
    return int(os.environ.get('RANK') or 0)


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

    ``'latest'``/``'true'``/``True`` resume from the newest complete checkpoint in ``output_dir``
    (:func:`last_complete_checkpoint`; ``None`` when there is none yet, so a first run starts from scratch);
    ``'false'``/``''``/``None`` start fresh; anything else is a path.

    Raises:
        ConfigError: a path that does not exist.
    """
    if value is None or value is False or (isinstance(value, str) and value.lower() in ('', 'false', 'no', 'none')):
        return None
    if value is True or (isinstance(value, str) and value.lower() in ('latest', 'true', 'yes', 'auto')):
        latest = last_complete_checkpoint(output_dir)
        return None if latest is None else str(latest)
    path = Path(str(value))
    if not path.is_dir():
        raise ConfigError(f'resume_from_checkpoint: no checkpoint directory {path}')
    return str(path)


def last_complete_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest ``checkpoint-<step>`` folder of ``output_dir`` that the Trainer finished writing, or ``None``.

    A run killed while saving (SIGKILL, a lost node) leaves its last folder without ``trainer_state.json``, which
    ``transformers.Trainer._save_checkpoint`` writes last (after the weights, optimizer, scheduler and RNG states);
    ``transformers.trainer_utils.get_last_checkpoint`` would pick that folder and the resume would fail on it, so
    such folders are passed over (with a warning). Left open: with several processes, ``trainer_state.json`` is the
    main process's last write, while the other ranks write their ``rng_state_<rank>.pth`` without waiting for it; a
    kill in that window leaves a checkpoint that resumes with one rank's RNG state missing (transformers warns
    and that rank's data-independent randomness, e.g. dropout, differs from an uninterrupted run).
    """
    import logging

    out = Path(output_dir)
    if not out.is_dir():
        return None
    steps = []
    for folder in out.glob('checkpoint-*'):
        suffix = folder.name.removeprefix('checkpoint-')
        if folder.is_dir() and suffix.isdigit():
            steps.append((int(suffix), folder))
    for _, folder in sorted(steps, reverse=True):
        if (folder / 'trainer_state.json').is_file():
            return folder
        logging.getLogger(__name__).warning('passing over %s: incomplete (no trainer_state.json)', folder)
    return None


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


@dataclass(frozen=True)
class PreparedModel:
    """What a trainer is built from (see :func:`prepare_model`).

    Attributes:
        model: the Qwen2.5-VL model (``torch.nn.Module``), vision tower frozen when asked (full fine-tuning).
        processor: its processor (tokenizer + image processor + chat template).
        peft_config: a ``peft.LoraConfig`` for LoRA runs, else ``None`` (the trainer applies it).
        dtype: the parameter ``torch.dtype``; precision: the matching ``bf16``/``fp16`` flags.
        activation_checkpointing: the resolved flag (default: on when CUDA is available).
        distributed: ``TrainingArguments`` options of several processes without CUDA (:func:`distributed_on_cpu`).
    """

    model: Any
    processor: Any
    peft_config: Any
    dtype: Any
    precision: dict[str, bool]
    activation_checkpointing: bool
    distributed: dict[str, Any]


def distributed_on_cpu() -> dict[str, Any]:
    """Let several processes without CUDA train together over gloo; returns the ``TrainingArguments`` options that
    needs (``{}`` in one process or with CUDA).

    When a launcher started this process as one of several (``WORLD_SIZE`` > 1: ``accelerate launch`` with
    ``config/accelerate/cpu_2proc.yaml``, or ``torchrun``) and no CUDA device exists:

    * plain data parallel (the default): set ``ACCELERATE_USE_CPU`` (read by accelerate's ``AcceleratorState``: the
      trainer then initialises a MULTI_CPU gloo process group). Without it, accelerate's CPU launcher starts ONE
      process (it spawns several only through MPI), and a torchrun-started process without CUDA trains alone,
      each rank the whole data. An ``ACCELERATE_USE_CPU`` already set is left as it is.
    * DeepSpeed (``ACCELERATE_USE_DEEPSPEED``, a DEEPSPEED config): leave ``ACCELERATE_USE_CPU`` unset (with it,
      accelerate 1.16 drops DeepSpeed for DDP while transformers still sees the ZeRO-3 config, and TRL fails on the
      first step: ``'Parameter' object has no attribute 'ds_status'``) and return ``ddp_backend='gloo'`` (without a
      backend accelerate counts one process while DeepSpeed counts two, and DeepSpeed's batch check fails).
      Measured 2026-12-07 (deepspeed 0.19.8 on its CPU accelerator): real ZeRO-2 and ZeRO-3 with 2 processes, the
      losses equal to DDP's (test/training/test_multiprocess.py).
    * FSDP (``ACCELERATE_USE_FSDP``): cannot run on CPU with accelerate 1.16 (with ``ACCELERATE_USE_CPU`` it trains
      DDP, ``DistributedType.MULTI_CPU`` and ``DistributedDataParallel``; without, even with gloo, each rank trains
      alone, ``DistributedType.NO``); the ranks train as DDP and a warning says so.
    """
    import torch

    if world_size() <= 1 or torch.cuda.is_available():
        return {}
    if os.environ.get('ACCELERATE_USE_DEEPSPEED', '').lower() == 'true':
        return {'ddp_backend': 'gloo'}
    os.environ.setdefault('ACCELERATE_USE_CPU', 'true')
    if os.environ.get('ACCELERATE_USE_FSDP', '').lower() == 'true':
        _LOG.warning(
            'FSDP was asked for but there is no CUDA device, and accelerate runs FSDP on CUDA only: the ranks train '
            'as plain data-parallel copies (DDP over gloo; every rank holds the whole model and optimizer state). '
            'DeepSpeed ZeRO runs on the CPU (docs/training.md).'
        )
    return {}


def trace_rows(trainer: Any, folder: str | Path) -> None:
    """Record which rows each process trains on: wrap ``trainer.data_collator`` so that every batch it collates
    appends ``{"rank": R, "ids": [...]}`` to ``folder/rows_rank{R}.jsonl`` (the batch's ``id`` column; the trainer
    must keep that column: ``remove_unused_columns=False``). Made to check the sharding of rows across processes
    (each rank a distinct part of the epoch); the data loader may collate one batch beyond ``max_steps``. The file
    is appended to: give each run a folder of its own."""
    import json

    rank = int(trainer.accelerator.process_index)
    path = Path(folder) / f'rows_rank{rank}.jsonl'
    path.parent.mkdir(parents=True, exist_ok=True)
    collate = trainer.data_collator

    def traced(examples: Sequence[dict[str, Any]]) -> Any:
        with open(path, 'a', encoding='utf-8') as handle:
            handle.write(json.dumps({'rank': rank, 'ids': [str(example.get('id')) for example in examples]}) + '\n')
        return collate([{k: v for k, v in example.items() if k not in ('id', 'kind')} for example in examples])

    trainer.data_collator = traced


def trace_rewards(functions: Sequence[Any], folder: str | Path) -> list[Any]:
    """The reward functions, each wrapped to append every call to ``folder/rewards_rank{R}.jsonl``:
    ``{"rank", "function", "step", "prompt_ids", "rewards"}`` (``step``: the trainer's global step when the
    rollout was scored; ``prompt_ids``: the dataset's ``prompt_id`` of each completion). Made to check GRPO across
    processes: a prompt's ``num_generations`` completions are scored as one group whichever rank generated them.
    The file is appended to: give each run a folder of its own.
    The rank is torch.distributed's (``RANK``, 0 in one process); names are kept (TRL logs rewards by name)."""
    import functools
    import json

    rank = process_rank()
    path = Path(folder) / f'rewards_rank{rank}.jsonl'
    path.parent.mkdir(parents=True, exist_ok=True)

    def traced(function: Any) -> Any:
        @functools.wraps(function)
        def call(completions: Sequence[Any], **kwargs: Any) -> Any:
            rewards = function(completions, **kwargs)
            state = kwargs.get('trainer_state')
            record = {
                'rank': rank,
                'function': function.__name__,
                'step': None if state is None else int(state.global_step),
                'prompt_ids': [str(value) for value in kwargs.get('prompt_id') or []],
                'rewards': [None if value is None else float(value) for value in rewards],
            }
            with open(path, 'a', encoding='utf-8') as handle:
                handle.write(json.dumps(record) + '\n')
            return rewards

        return call

    return [traced(function) for function in functions]


def prepare_model(settings: TrainingConfig, *, padding_side: str | None = None) -> PreparedModel:
    """Seed, then load the model and processor of a run and configure full or LoRA fine-tuning.

    Args:
        settings: the run's settings (``finetuning`` is ``'full'`` or ``'lora'``).
        padding_side: tokenizer padding side (``'left'`` for GRPO's batched generation).

    Raises:
        ConfigError: an unknown ``finetuning`` mode or dtype, or ``freeze_vision`` on a model without a vision
            tower.
    """
    import random

    import torch
    from actial_ros.training.fine_tuning.modeling import load_model, load_processor, resolve_dtype

    if settings.finetuning not in ('full', 'lora'):
        raise ConfigError(f"finetuning must be 'full' or 'lora', got {settings.finetuning!r}")
    distributed = distributed_on_cpu()
    random.seed(settings.seed)
    torch.manual_seed(settings.seed)
    processor = load_processor(
        settings.processor or settings.model, max_pixels=settings.max_pixels, padding_side=padding_side
    )
    dtype = resolve_dtype(settings.dtype)
    model = load_model(settings.model, dtype=settings.dtype, attn_implementation=settings.attn_implementation)
    peft_config = None
    if settings.finetuning == 'lora':
        peft_config = lora_config(
            rank=settings.lora_rank,
            alpha=settings.lora_alpha,
            dropout=settings.lora_dropout,
            target_modules=settings.lora_target_modules,
        )
    elif settings.freeze_vision:
        _LOG.info('vision tower frozen: %d parameters', freeze_vision_tower(model))
    checkpointing = (
        torch.cuda.is_available() if settings.gradient_checkpointing is None else settings.gradient_checkpointing
    )
    return PreparedModel(
        model=model,
        processor=processor,
        peft_config=peft_config,
        dtype=dtype,
        precision=precision_flags(dtype),
        activation_checkpointing=bool(checkpointing),
        distributed=distributed,
    )


def train_and_save(trainer: Any, settings: TrainingConfig, settings_record: dict[str, Any], name: str) -> Path:
    """Train (resuming as ``settings.resume_from_checkpoint`` says), then save the final model or LoRA adapter,
    the processor, the resolved settings (``actial_<name>_settings.yaml``) and the trainer state with its log
    history (``trainer_state.json``: loss, rewards, learning rate per logging step) in ``settings.output_dir``.

    Returns:
        The output directory.

    Raises:
        ConfigError: a resume path that does not exist.
    """
    from actial_ros.training.fine_tuning.modeling import save_processor

    resume = resume_argument(settings.resume_from_checkpoint, settings.output_dir)
    if resume is not None:
        restore_weights_through_from_pretrained(trainer)
    trainer.train(resume_from_checkpoint=resume)
    out = Path(settings.output_dir)
    trainer.save_model(str(out))
    trainer.save_state()
    if trainer.accelerator.is_main_process:
        save_processor(trainer.processing_class, out)
        save_settings(settings_record, out / f'actial_{name}_settings.yaml')
        recipe = checkpoint_recipe(settings, name, int(trainer.state.global_step))
        write_recipe(recipe, out)
        (out / 'README.md').write_text(model_card(recipe, out), encoding='utf-8')
    # A clean end for multi-process runs (accelerate's end_training: every rank past the saves, then the process
    # group destroyed; nothing when there is none): one 2-process DeepSpeed ZeRO-3 run on a loaded CPU had its second
    # rank abort at interpreter exit ("terminate called without an active exception") after training and saving.
    trainer.accelerator.wait_for_everyone()
    trainer.accelerator.end_training()
    return out


def restore_weights_through_from_pretrained(trainer: Any) -> None:
    """Make ``trainer``'s resume restore a full model's weights with ``from_pretrained``'s key conversion.

    transformers 5 saves checkpoints of models with a checkpoint conversion (Qwen2.5-VL among them) in the original
    key layout (``visual.*``, ``model.layers.*``) while the model's own keys are ``model.visual.*`` and
    ``model.language_model.*``; ``Trainer._load_from_checkpoint`` loads the file with ``load_state_dict(strict=False)``,
    no key matches, and the run goes on from the weights it started with, with a warning only (transformers issue
    #43701; seen here: the first loss after resuming at step 4 was 6.16, the uninterrupted run's 4.70). This loads
    the checkpoint with ``from_pretrained`` (which converts the keys) and copies its weights into the model with
    ``strict=True``: a mismatch is an error, not a warning. The optimizer, scheduler and RNG states still come from
    the Trainer. The checkpoint is held twice in CPU memory for that moment. LoRA adapters, DeepSpeed and FSDP
    checkpoints keep the Trainer's own loading (their own formats).
    """
    original = trainer._load_from_checkpoint

    def load(resume_from_checkpoint: str, model: Any = None) -> None:
        target = trainer.model if model is None else model
        if hasattr(target, 'peft_config') or trainer.is_deepspeed_enabled or trainer.is_fsdp_enabled:
            original(resume_from_checkpoint, model)
            return
        parameter = next(target.parameters())
        reloaded = type(target).from_pretrained(resume_from_checkpoint, dtype=parameter.dtype)
        target.load_state_dict(reloaded.state_dict(), strict=True)
        del reloaded

    trainer._load_from_checkpoint = load


def checkpoint_recipe(settings: Any, stage: str, steps: int | None) -> CheckpointRecipe:
    """The :class:`~actial_ros.recipe.CheckpointRecipe` of a finished SFT or GRPO run (``settings``:
    ``SftSettings`` or ``GrpoSettings``)."""
    data = [*(getattr(settings, 'data', None) or ()), *(getattr(settings, 'viewpoint_data', None) or ())]
    data += list(getattr(settings, 'sat_data', None) or ())
    return CheckpointRecipe(
        stage=stage,
        system_prompt=str(settings.system_prompt),
        max_pixels=settings.max_pixels,
        max_image_width=int(settings.max_image_width),
        max_image_height=int(settings.max_image_height),
        base_model=str(settings.model),
        data=tuple(str(item) for item in data),
        steps=steps,
    )


def model_card(recipe: CheckpointRecipe, out: Path) -> str:
    """The checkpoint's README.md: what was trained from what on what, with which prompt, and how to evaluate and
    serve it (replacing the trainer's template card). Held-out figures are not known here: the card says where
    they are recorded."""
    prompt = repr(recipe.system_prompt) if recipe.system_prompt else "'' (none: the chat template's default)"
    data = ', '.join(f'`{item}`' for item in recipe.data) or '(given in code)'
    return f"""# {out.name}: a Qwen2.5-VL checkpoint trained by actial_ros ({recipe.stage.upper()})

- Started from: `{recipe.base_model}`
- Stage: {recipe.stage.upper()}, {recipe.steps if recipe.steps is not None else 'unknown'} optimizer steps
- Training data: {data}
- System prompt in training: {prompt}
- Images: downscaled to fit {recipe.max_image_width}x{recipe.max_image_height}, then the processor's \
max_pixels {recipe.max_pixels if recipe.max_pixels is not None else "(the base checkpoint's)"}
- Full settings: `actial_{recipe.stage}_settings.yaml`; trainer log: `trainer_state.json`

`{RECIPE_FILE}` records the prompt and image size; the commands below read it, so no flag restates them
(flags still override):

```bash
actial-ros-train evaluate --model {out} --viewpoint DATA --viewpoint-split ''
actial-ros demo --bag BAG --backend transformers --transformers-model {out}
actial-ros serve {out}   # it prints the node's parameters, the system prompt above among them
```

How well it answers is measured, not claimed here: the learning benchmark (`benchmarks/learning.py`) writes its
held-out figures and controls to `results.json` next to the checkpoints it trains; the recorded figures, with
their machine, are in the project's `benchmarks/README.md` ("Learning").
"""


_Result = TypeVar('_Result')


@dataclass(frozen=True)
class Shard:
    """This process's part of work launched as several processes (``accelerate launch`` with
    ``config/accelerate/cpu_2proc.yaml`` or a GPU config, or ``torchrun``), or the whole of it in one process
    (``actial-ros-train evaluate`` deals its items with it).

    Items are dealt round robin (process ``r`` of ``n`` takes items ``r, r + n, ...``); the main process gathers
    every process's records (``torch.distributed``'s ``all_gather_object`` through accelerate) back in item
    order, so that it alone writes the results and every item counts exactly once.

    Attributes:
        processes: how many processes share the items.
        rank: this process's index.
        device: where this process's model goes (``None``: CUDA when available, else CPU).
    """

    processes: int = 1
    rank: int = 0
    device: str | None = None

    @classmethod
    def of_launch(cls) -> Shard:
        """This process's shard: one of ``WORLD_SIZE`` when a launcher started several, else the whole."""
        if world_size() <= 1:
            return cls()
        import torch
        from accelerate import PartialState

        state = PartialState(cpu=not torch.cuda.is_available())  # without CUDA: gloo (accelerate's MULTI_CPU)
        return cls(processes=int(state.num_processes), rank=int(state.process_index), device=str(state.device))

    @property
    def is_main(self) -> bool:
        """Whether this process reports and writes."""
        return self.rank == 0

    def indices(self, count: int) -> list[int]:
        """The indices of the items this process answers, of ``count`` items."""
        return list(range(self.rank, count, self.processes))

    def gather(self, indices: Sequence[int], records: Sequence[dict[str, Any]]) -> list[dict[str, Any]] | None:
        """Every process's records (picklable, one per item of ``indices``) in item order on the main process;
        ``None`` on the others."""
        if self.processes == 1:
            return list(records)
        from accelerate.utils import gather_object

        gathered = gather_object(list(zip(indices, records, strict=True)))
        if not self.is_main:
            return None
        return [record for _, record in sorted(gathered, key=lambda pair: pair[0])]

    def close(self) -> None:
        """End the launch's process group on every process (after :meth:`gather`; nothing in one process).

        Every process waits for the others, then destroys the group (accelerate's ``PartialState``), as
        ``train_and_save`` ends training: a process leaving with the gloo group alive may abort at interpreter
        exit ("terminate called without an active exception")."""
        if self.processes == 1:
            return
        from accelerate import PartialState

        state = PartialState()
        state.wait_for_everyone()
        state.destroy_process_group()


def run_command(train: Callable[[], _Result], summary: Callable[[_Result], str], logger: logging.Logger) -> int:
    """Body of a training command: log to stderr, run ``train``, print ``summary(result)`` (from the main process
    only when several run: ``RANK`` 0).

    Returns:
        0, or 2 after logging a :class:`ConfigError` (bad settings, missing data) on ``logger``.
    """
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s')
    try:
        result = train()
    except ConfigError as exc:
        logger.error('%s', exc)
        return 2
    if process_rank() == 0:
        print(summary(result))
    return 0


_Settings = TypeVar('_Settings')


@dataclass(frozen=True)
class SettingsCommand(Generic[_Settings, _Result]):
    """The wiring of a training command whose flags are one settings dataclass (``sft``, ``grpo``): the flags, the
    run and ``python -m`` (also under ``accelerate launch -m``). :mod:`actial_ros.training.cli` calls the module's
    ``configure_parser`` and ``run``, which are this object's methods.

    Attributes:
        settings: the settings dataclass: one flag per field, plus ``--config`` (defaults < YAML < flags).
        train: runs the command on the resolved settings.
        summary: the line printed after a run (by the main process only, see :func:`run_command`).
        module: the module's dotted name (the ``python -m`` program name).
        logger: where a settings error is logged.
    """

    settings: type[_Settings]
    train: Callable[[_Settings], _Result]
    summary: Callable[[_Result], str]
    module: str
    logger: logging.Logger

    def configure_parser(self, parser: argparse.ArgumentParser) -> None:
        """Adds one flag per settings field, plus ``--config``."""
        settings_io.add_arguments(parser, self.settings)

    def run(self, args: argparse.Namespace) -> int:
        """Runs the command on parsed flags; returns the exit status (2 on a settings error)."""
        return run_command(lambda: self.train(settings_io.resolve(self.settings, args)), self.summary, self.logger)

    def main(self, argv: Sequence[str] | None = None) -> int:
        """``python -m MODULE`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
        return module_main(self.configure_parser, self.run, self.module, argv)
