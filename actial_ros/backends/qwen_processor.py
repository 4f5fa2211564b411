"""The Qwen2.5-VL processor of a checkpoint, with or without torchvision (one loader for the node and training).

transformers' ``Qwen2_5_VLProcessor`` wants a video processor, and the video processor needs torchvision;
without torchvision ``AutoProcessor.from_pretrained`` silently returns the bare tokenizer
(../shared/notes/ENVIRONMENT.md). :func:`load_qwen25vl_processor` therefore builds the processor
explicitly: the full ``Qwen2_5_VLProcessor`` when torchvision is importable, else an image-only subclass
(:func:`image_only_processor_class`, the same processor without the video half).

transformers is imported on first use, never when this module is imported, so the core stays torch-free.
Used by :class:`actial_ros.backends.transformers_backend.TransformersBackend` and by
:mod:`actial_ros.training.fine_tuning.modeling` (SFT, GRPO, evaluation, export).
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ['image_only_processor_class', 'load_qwen25vl_processor']

_IMAGE_ONLY_PROCESSOR: Any = None


def _module(name: str) -> Any:
    """Import ``name`` lazily, untyped (transformers is optional and large)."""
    return importlib.import_module(name)


def image_only_processor_class() -> Any:
    """``ImageOnlyQwen25VLProcessor``: ``Qwen2_5_VLProcessor`` without a video processor (no torchvision).

    It tokenises, expands ``<|image_pad|>`` to each image's token count and applies the chat template exactly
    as the full processor does for image inputs; passing ``videos`` fails. The class subclasses transformers',
    so it is defined on first use (transformers imported then).
    """
    global _IMAGE_ONLY_PROCESSOR
    if _IMAGE_ONLY_PROCESSOR is None:
        base: Any = _module('transformers').Qwen2_5_VLProcessor
        mixin: Any = _module('transformers.processing_utils').ProcessorMixin

        class ImageOnlyQwen25VLProcessor(base):  # type: ignore[misc]
            """``Qwen2_5_VLProcessor`` without a video processor (no torchvision needed): images and text only."""

            def __init__(
                self, image_processor: Any = None, tokenizer: Any = None, chat_template: str | None = None, **kw: Any
            ) -> None:
                self.image_token = getattr(tokenizer, 'image_token', None) or '<|image_pad|>'
                self.video_token = getattr(tokenizer, 'video_token', None) or '<|video_pad|>'
                self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
                self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
                mixin.__init__(self, image_processor, tokenizer, chat_template=chat_template, **kw)

        _IMAGE_ONLY_PROCESSOR = ImageOnlyQwen25VLProcessor
    return _IMAGE_ONLY_PROCESSOR


def load_qwen25vl_processor(
    source: str,
    *,
    max_pixels: int | None = None,
    min_pixels: int | None = None,
    padding_side: str | None = 'left',
) -> Any:
    """The Qwen2.5-VL processor (tokenizer, image processor, chat template) of a checkpoint.

    Args:
        source: checkpoint directory or hub id (hub ids need network access).
        max_pixels: overrides the image processor's ``max_pixels`` (pixels per image after resizing; each image
            becomes at most ``max_pixels / 784`` tokens); ``None`` keeps the checkpoint's.
        min_pixels: overrides ``min_pixels`` likewise.
        padding_side: tokenizer padding side (``'left'`` for batched generation); ``None`` keeps the
            checkpoint's.

    Returns:
        A ``Qwen2_5_VLProcessor`` (torchvision present) or an ``ImageOnlyQwen25VLProcessor``.

    Raises:
        OSError: the checkpoint has no tokenizer or image processor files.
        ValueError: the checkpoint has no chat template.
    """
    transformers = _module('transformers')
    tokenizer = transformers.AutoTokenizer.from_pretrained(source)
    if padding_side is not None:
        tokenizer.padding_side = padding_side
    chat_template = tokenizer.chat_template
    if not chat_template:
        raise ValueError(f'{source} has no chat template (chat_template.jinja or in tokenizer_config.json)')
    overrides: dict[str, int] = {}
    if max_pixels is not None:
        overrides['max_pixels'] = int(max_pixels)
    if min_pixels is not None:
        overrides['min_pixels'] = int(min_pixels)
    processor: Any = None
    if _module('transformers.utils').is_torchvision_available():
        candidate = transformers.AutoProcessor.from_pretrained(source, **overrides)
        if hasattr(candidate, 'image_processor') and hasattr(candidate, 'tokenizer'):
            processor = candidate
            processor.tokenizer = tokenizer
    if processor is None:
        # The PIL image processor needs no torchvision (older transformers: Qwen2VLImageProcessor).
        image_processor_class = (
            getattr(transformers, 'Qwen2VLImageProcessorPil', None) or transformers.Qwen2VLImageProcessor
        )
        image_processor = image_processor_class.from_pretrained(source, **overrides)
        processor = image_only_processor_class()(
            image_processor=image_processor, tokenizer=tokenizer, chat_template=chat_template
        )
    if overrides:
        # Newer image processors resize by ``size`` (longest_edge = max_pixels, shortest_edge = min_pixels).
        image_processor = processor.image_processor
        size = dict(getattr(image_processor, 'size', None) or {})
        if 'max_pixels' in overrides:
            size['longest_edge'] = overrides['max_pixels']
        if 'min_pixels' in overrides:
            size['shortest_edge'] = overrides['min_pixels']
        image_processor.size = size
        for key, value in overrides.items():
            setattr(image_processor, key, value)
    if getattr(processor, 'chat_template', None) is None:
        processor.chat_template = chat_template
    return processor
