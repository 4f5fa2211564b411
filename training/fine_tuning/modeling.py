"""Loading and saving Qwen2.5-VL models and processors, with or without torchvision.

transformers' ``Qwen2_5_VLProcessor`` wants a video processor, and the video processor needs torchvision;
without torchvision ``AutoProcessor.from_pretrained`` silently returns the bare tokenizer
(../shared/notes/ENVIRONMENT.md). :func:`load_processor` therefore builds the processor explicitly, through
the core's :func:`actial_ros.backends.qwen_processor.load_qwen25vl_processor` (the node's transformers backend
uses the same loader): the full ``Qwen2_5_VLProcessor`` when torchvision is importable, else
:data:`ImageOnlyQwen25VLProcessor` (the same processor without the video half). Every entry point of
:mod:`actial_ros.training` loads through here and passes the processor to TRL explicitly.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transformers.processing_utils import ProcessorMixin

from actial_ros.backends.qwen_processor import image_only_processor_class, load_qwen25vl_processor

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel

__all__ = [
    'ImageOnlyQwen25VLProcessor',
    'load_model',
    'load_processor',
    'resolve_dtype',
    'save_processor',
]

_LOG = logging.getLogger(__name__)


ImageOnlyQwen25VLProcessor: Any = image_only_processor_class()
"""``Qwen2_5_VLProcessor`` without a video processor (no torchvision): see
:func:`actial_ros.backends.qwen_processor.image_only_processor_class`."""


def load_processor(
    path: str | Path,
    *,
    max_pixels: int | None = None,
    min_pixels: int | None = None,
    padding_side: str | None = None,
) -> ProcessorMixin:
    """The Qwen2.5-VL processor of a checkpoint: the core's
    :func:`~actial_ros.backends.qwen_processor.load_qwen25vl_processor` (one loader for the node and training),
    keeping the checkpoint's padding side unless ``padding_side`` is given.

    Returns:
        A ``Qwen2_5_VLProcessor`` (torchvision present) or :data:`ImageOnlyQwen25VLProcessor`.

    Raises:
        OSError: the checkpoint has no tokenizer or image processor files.
        ValueError: the checkpoint has no chat template.
    """
    processor: ProcessorMixin = load_qwen25vl_processor(
        str(path), max_pixels=max_pixels, min_pixels=min_pixels, padding_side=padding_side
    )
    return processor


def save_processor(processor: Any, out_dir: str | Path) -> None:
    """Save a processor so that ``vllm serve`` and ``AutoProcessor`` (with torchvision) load it as Qwen2.5-VL's.

    Writes the tokenizer files, ``chat_template.jinja`` and ``preprocessor_config.json`` with
    ``image_processor_type: Qwen2VLImageProcessor`` and ``processor_class: Qwen2_5_VLProcessor`` (not the
    class names of the torchvision-free stand-ins used here).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = processor.tokenizer
    if not tokenizer.chat_template and processor.chat_template:
        tokenizer.chat_template = processor.chat_template
    tokenizer.save_pretrained(out)
    if not (out / 'chat_template.jinja').exists() and tokenizer.chat_template:
        (out / 'chat_template.jinja').write_text(tokenizer.chat_template, encoding='utf-8')
    processor.image_processor.save_pretrained(out)
    config_path = out / 'preprocessor_config.json'
    config = json.loads(config_path.read_text(encoding='utf-8'))
    config['image_processor_type'] = 'Qwen2VLImageProcessor'
    config['processor_class'] = 'Qwen2_5_VLProcessor'
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + '\n', encoding='utf-8')


def resolve_dtype(name: str | None) -> torch.dtype:
    """The dtype of weights being trained: :func:`actial_ros.backends.transformers_backend.resolve_dtype` (the one
    rule) with ``training=True``: ``'auto'`` is bfloat16 on a CUDA GPU that supports it, else float32.

    Raises:
        ConfigError (a ValueError): an unknown name.
    """
    from actial_ros.backends.transformers_backend import resolve_dtype as package_rule

    dtype: torch.dtype = package_rule(name, training=True)
    return dtype


def load_model(
    path: str | Path,
    *,
    dtype: str | None = 'auto',
    attn_implementation: str | None = None,
    device_map: str | dict[str, Any] | None = None,
) -> PreTrainedModel:
    """``Qwen2_5_VLForConditionalGeneration.from_pretrained`` with a resolved dtype.

    Args:
        path: checkpoint directory or hub id.
        dtype: see :func:`resolve_dtype`.
        attn_implementation: ``'sdpa'``, ``'flash_attention_2'``, ``'eager'`` or ``None`` (transformers' choice).
        device_map: passed through (``None`` keeps the model on CPU; Trainer/accelerate place it).
    """
    from transformers import Qwen2_5_VLForConditionalGeneration

    kwargs: dict[str, Any] = {'dtype': resolve_dtype(dtype)}
    if attn_implementation:
        kwargs['attn_implementation'] = attn_implementation
    if device_map is not None:
        kwargs['device_map'] = device_map
    return Qwen2_5_VLForConditionalGeneration.from_pretrained(str(path), **kwargs)
