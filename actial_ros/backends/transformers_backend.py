"""In-process backend: a Qwen2.5-VL checkpoint run with Hugging Face transformers in the node's process.

For robots without a vLLM server. It loads ``Qwen2_5_VLForConditionalGeneration`` from a checkpoint
directory or hub id (the hub needs network access), on ``cuda`` when a GPU is present, else on the CPU,
and answers each question with greedy decoding, using the same prompt as the vLLM backend: the system
prompt, then one user turn with the images (downscaled to fit ``max_image_width`` x
``max_image_height``, 960x540 as in the paper) followed by the question text, rendered with the
checkpoint's chat template.

The processor is built explicitly by :func:`actial_ros.backends.qwen_processor.load_qwen25vl_processor`
(transformers' Qwen2.5-VL processor wants a video processor that needs torchvision; without torchvision an
image-only processor subclass is used), the same loader training uses.

The prompt and the generation are module functions, :func:`chat_batch` (prompts and their images in the
one chat layout, through the processor) and :func:`generate_greedy` (greedy decoding of a batch), the one
implementation of "prompt + images -> greedy text" for Qwen2.5-VL: the backend runs them on one question at a
time, in-process evaluation (``actial-ros-train evaluate --model``) on its batches.

torch and transformers are imported when a backend is created, never when this module is imported, so
the rest of the package stays torch-free. Generation is serialised by a lock (one ``generate`` at a time;
a second caller waits), which makes the backend thread-safe; the engine's other workers simply queue.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from actial_ros.answers import parse_answer
from actial_ros.backends.base import Backend, BackendAnswer, BackendHealth
from actial_ros.backends.qwen_processor import load_qwen25vl_processor
from actial_ros.chat import IMAGE_PLACEHOLDER, chat_messages
from actial_ros.errors import BackendError, ConfigError
from actial_ros.frame import Frame, Pair
from actial_ros.imaging import MAX_MODEL_HEIGHT, MAX_MODEL_WIDTH, resize_max
from actial_ros.questions import OPTION_LETTERS, Question
from actial_ros.recipe import resolve_system_prompt

__all__ = [
    'TransformersBackend',
    'chat_batch',
    'generate_greedy',
    'load_qwen25vl_processor',
    'resolve_device',
    'resolve_dtype',
]

_LOG = logging.getLogger(__name__)

_DTYPES = ('auto', 'bfloat16', 'float16', 'float32')
_DTYPE_ALIASES = {'bf16': 'bfloat16', 'fp16': 'float16', 'fp32': 'float32'}


def _module(name: str) -> Any:
    """Import ``name`` lazily, untyped (torch and transformers are optional and large)."""
    return importlib.import_module(name)


def resolve_device(device: str = 'auto') -> str:
    """``'auto'``: ``'cuda'`` when torch sees a GPU, else ``'cpu'``; anything else is returned as given.

    Raises:
        ConfigError: an empty name.
    """
    name = device.strip().lower() if isinstance(device, str) else ''
    if not name:
        raise ConfigError("device must be 'auto', 'cpu', 'cuda' or 'cuda:N'")
    if name != 'auto':
        return name
    import torch

    return 'cuda' if torch.cuda.is_available() else 'cpu'


def resolve_dtype(dtype: str | None, device: str | None = None, *, training: bool = False) -> Any:
    """The torch dtype for ``dtype`` on ``device`` (the one rule of the package: the backend and training use it).

    ``'auto'`` (or ``None``): bfloat16 on a CUDA device that supports it; on other CUDA devices float16 for
    inference and float32 for training (float16 training needs loss scaling, which the recipes do not set up);
    float32 on the CPU. Names: ``bfloat16``/``bf16``, ``float16``/``fp16``, ``float32``/``fp32``.

    Args:
        dtype: the name.
        device: ``'cpu'``, ``'cuda'``, ``'cuda:1'``...; ``None``: CUDA when available.
        training: the dtype of weights being trained (see ``'auto'``).

    Raises:
        ConfigError: an unknown name.
    """
    import torch

    key = (dtype if isinstance(dtype, str) else 'auto').strip().lower() or 'auto'
    key = _DTYPE_ALIASES.get(key, key)
    if key not in _DTYPES:
        raise ConfigError(f'dtype must be one of {", ".join(_DTYPES)}, got {dtype!r}')
    if key != 'auto':
        return getattr(torch, key)
    on_cuda = torch.cuda.is_available() if device is None else device.startswith('cuda')
    if on_cuda and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    if on_cuda and not training:
        return torch.float16
    return torch.float32


class TransformersBackend(Backend):
    """Answers viewpoint questions with a Qwen2.5-VL checkpoint loaded in this process.

    Args:
        model: checkpoint directory or hub id (e.g. ``Qwen/Qwen2.5-VL-7B-Instruct``; needs network).
        device: ``'auto'`` (``cuda`` when available, else ``cpu``), ``'cpu'``, ``'cuda'``, ``'cuda:1'``...
        dtype: ``'auto'`` (bfloat16 on a GPU, float32 on the CPU), ``'bfloat16'``, ``'float16'``, ``'float32'``.
        system_prompt: the system message; '' sends none (the chat template then adds its default); ``None``: the
            one the checkpoint was trained with (its ``actial_recipe.json``, :mod:`actial_ros.recipe`), else the
            Actial prompt.
        max_tokens: generation limit per reply (>= 1).
        max_image_width, max_image_height: images are downscaled to fit (pixels).
        max_pixels: image processor ``max_pixels`` override (0: the checkpoint's).
        attn_implementation: ``'sdpa'``, ``'eager'``, ``'flash_attention_2'`` or '' (transformers' choice).

    Raises:
        ConfigError: an invalid option, or torch/transformers not installed.
        BackendError: the checkpoint could not be loaded (missing, unreadable, not a Qwen2.5-VL).
    """

    name = 'transformers'

    def __init__(
        self,
        *,
        model: str,
        device: str = 'auto',
        dtype: str = 'auto',
        system_prompt: str | None = None,
        max_tokens: int = 1024,
        max_image_width: int = MAX_MODEL_WIDTH,
        max_image_height: int = MAX_MODEL_HEIGHT,
        max_pixels: int = 0,
        attn_implementation: str = '',
    ) -> None:
        if not isinstance(model, str) or not model.strip():
            raise ConfigError('model (a Qwen2.5-VL checkpoint directory or hub id) must be a non-empty string')
        if max_tokens < 1:
            raise ConfigError(f'max_tokens must be >= 1, got {max_tokens}')
        if max_image_width < 1 or max_image_height < 1:
            raise ConfigError(f'max image size must be positive, got {max_image_width}x{max_image_height}')
        if max_pixels < 0:
            raise ConfigError(f'max_pixels must be >= 0, got {max_pixels}')
        try:
            import torch  # noqa: F401
            import transformers  # noqa: F401
        except ImportError as exc:
            raise ConfigError(
                f'the transformers backend needs torch and transformers ({exc}); install them, e.g. '
                "pip install 'actial_ros[train]'"
            ) from None
        self._source = model.strip()
        self._device = resolve_device(device)
        self._dtype = resolve_dtype(dtype, self._device)
        self._system_prompt = resolve_system_prompt(system_prompt, self._source)
        self._max_tokens = int(max_tokens)
        self._max_image_width = int(max_image_width)
        self._max_image_height = int(max_image_height)
        self._lock = threading.Lock()
        self._state = threading.Lock()
        self._closed = False
        self._consecutive_failures = 0
        self._last_error: str | None = None
        self._last_ok: bool | None = None
        started = time.perf_counter()
        local = Path(self._source).expanduser()
        source = str(local) if local.exists() else self._source
        try:
            model_class = _module('transformers').Qwen2_5_VLForConditionalGeneration
            self._processor = load_qwen25vl_processor(source, max_pixels=max_pixels or None)
            kwargs: dict[str, Any] = {'dtype': self._dtype}
            if attn_implementation:
                kwargs['attn_implementation'] = attn_implementation
            self._model: Any = model_class.from_pretrained(source, **kwargs)
            self._model.to(self._device)
            self._model.eval()
        except (OSError, ValueError, RuntimeError, KeyError, TypeError) as exc:
            raise BackendError(
                f'cannot load a Qwen2.5-VL checkpoint from {self._source!r}: {type(exc).__name__}: '
                + ' '.join(str(exc).split())[:400]
            ) from None
        self._eos_ids, self._pad_id = _stop_tokens(self._model, self._processor.tokenizer)
        self.load_s = time.perf_counter() - started
        _LOG.info('loaded %s on %s (%s) in %.1f s', self._source, self._device, self._dtype, self.load_s)

    def __repr__(self) -> str:
        return f'TransformersBackend(model={self._source!r}, device={self._device!r}, dtype={self._dtype})'

    @property
    def device(self) -> str:
        """Where the model runs (``'cpu'``, ``'cuda'``, ...)."""
        return self._device

    @property
    def dtype(self) -> Any:
        """The torch dtype of the weights."""
        return self._dtype

    @property
    def model_source(self) -> str:
        """The checkpoint directory or hub id given."""
        return self._source

    # ------------------------------------------------------------------ Backend interface

    def answer(self, pair: Pair, question: Question) -> BackendAnswer:
        """Ask one multiple-choice viewpoint question about ``pair``; an unparsable reply has
        ``letter`` ``None`` and ``reason`` ``'unparsed'``.

        Raises:
            BackendError: generation failed (out of memory, closed backend, ...).
        """
        letters = ''.join(OPTION_LETTERS[: len(question.option_labels)])
        return self._generate([pair.frame_1, pair.frame_2], question.text, letters)

    def ask(self, frames: list[Frame], prompt: str) -> BackendAnswer:
        """Answer a free-form question about ``frames`` (``letter`` is ``None``).

        Raises:
            BackendError: as :meth:`answer`.
        """
        return self._generate(list(frames), prompt, None)

    def health(self) -> BackendHealth:
        """Ok unless the latest generation failed or the backend is closed."""
        with self._state:
            if self._closed:
                return BackendHealth(False, 'closed', self._consecutive_failures)
            where = f'{self._source} on {self._device}'
            if self._last_ok is False:
                return BackendHealth(
                    False,
                    f'{self._consecutive_failures} consecutive failure(s); last: {self._last_error}',
                    self._consecutive_failures,
                )
            return BackendHealth(True, f'ok ({where})' if self._last_ok else f'loaded ({where})', 0)

    def close(self) -> None:
        """Release the model (and the GPU memory it holds). Idempotent; later calls raise BackendError."""
        with self._lock, self._state:
            if self._closed:
                return
            self._closed = True
            self._model = None
        if self._device.startswith('cuda'):
            import torch

            torch.cuda.empty_cache()

    # ------------------------------------------------------------------ internals

    def _generate(self, frames: Sequence[Frame], text: str, letters: str | None) -> BackendAnswer:
        from PIL import Image

        start = time.perf_counter()
        images = [
            Image.fromarray(resize_max(frame.image, self._max_image_width, self._max_image_height)) for frame in frames
        ]
        try:
            inputs = chat_batch(self._processor, [text], [images], system_prompt=self._system_prompt)
            with self._lock:
                if self._closed or self._model is None:
                    raise BackendError('the transformers backend is closed')
                ((raw_text, prompt_tokens, completion_tokens),) = generate_greedy(
                    self._model,
                    self._processor,
                    inputs,
                    max_new_tokens=self._max_tokens,
                    eos_ids=self._eos_ids,
                    pad_id=self._pad_id,
                )
        except BackendError as exc:
            self._record(str(exc))
            raise
        except Exception as exc:  # torch/transformers failures (out of memory, shapes, ...)
            message = f'generation failed: {type(exc).__name__}: ' + ' '.join(str(exc).split())[:400]
            self._record(message)
            raise BackendError(message) from None
        self._record(None)
        usage = {
            'prompt_tokens': prompt_tokens,
            'completion_tokens': completion_tokens,
            'total_tokens': prompt_tokens + completion_tokens,
        }
        letter: str | None = None
        reason: str | None = None
        if letters is not None:
            letter = parse_answer(raw_text, letters=letters).letter
            reason = None if letter is not None else 'unparsed'
        return BackendAnswer(self.name, raw_text, letter, time.perf_counter() - start, reason=reason, usage=usage)

    def _record(self, error: str | None) -> None:
        with self._state:
            if error is None:
                self._last_ok = True
                self._consecutive_failures = 0
            else:
                self._last_ok = False
                self._consecutive_failures += 1
                self._last_error = error


def chat_batch(processor: Any, prompts: Sequence[str], images: Sequence[Sequence[Any]], *, system_prompt: str) -> Any:
    """The processor's tensors for ``prompts``, each with its images, as one padded batch.

    Each prompt is laid out as every prompt of the project (:func:`actial_ros.chat.chat_messages`: the system
    prompt, then the images, then the text) and rendered with the checkpoint's chat template, ready for the
    reply (``add_generation_prompt``); padded on the processor's padding side (left for a batch to generate).

    Args:
        processor: a Qwen2.5-VL processor (:func:`load_qwen25vl_processor`).
        prompts: the user texts.
        images: each prompt's images (PIL, already fitted to the model's size), in order.
        system_prompt: the system message; '' sends none.
    """
    texts = [
        processor.apply_chat_template(
            chat_messages(prompt, system_prompt=system_prompt, images=[IMAGE_PLACEHOLDER] * len(pictures)),
            tokenize=False,
            add_generation_prompt=True,
        )
        for prompt, pictures in zip(prompts, images, strict=True)
    ]
    pixels = [list(pictures) for pictures in images]
    return processor(text=texts, images=pixels if any(pixels) else None, padding=True, return_tensors='pt')


def generate_greedy(
    model: Any,
    processor: Any,
    inputs: Any,
    *,
    max_new_tokens: int,
    eos_ids: Sequence[int] | None = None,
    pad_id: int | None = None,
) -> list[tuple[str, int, int]]:
    """Greedy decoding (temperature 0) of a :func:`chat_batch` on the model's device.

    Args:
        model: a ``Qwen2_5_VLForConditionalGeneration``.
        processor: its processor (the tokenizer decodes the replies).
        inputs: the batch.
        max_new_tokens: generation limit per reply.
        eos_ids, pad_id: the stop and padding tokens; ``None``: the checkpoint's (:func:`_stop_tokens`).

    Returns:
        Per prompt: the decoded reply (special tokens skipped), the prompt tokens and the generated tokens
        (padded lengths when the batch holds several prompts).
    """
    import torch

    if eos_ids is None or pad_id is None:
        found_eos, found_pad = _stop_tokens(model, processor.tokenizer)
        eos_ids = found_eos if eos_ids is None else eos_ids
        pad_id = found_pad if pad_id is None else pad_id
    batch = inputs.to(model.device)
    if 'pixel_values' in batch and batch['pixel_values'] is not None:
        batch['pixel_values'] = batch['pixel_values'].to(model.dtype)
    prompt_tokens = int(batch['input_ids'].shape[1])
    with torch.inference_mode():
        output = model.generate(
            **batch,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            temperature=None,
            top_p=None,
            top_k=None,
            eos_token_id=list(eos_ids),
            pad_token_id=pad_id,
        )
    new_tokens = output[:, prompt_tokens:]
    texts = processor.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
    return [(str(text), prompt_tokens, int(new_tokens.shape[1])) for text in texts]


def _stop_tokens(model: Any, tokenizer: Any) -> tuple[list[int], int]:
    """The end-of-sequence ids (:func:`_eos_ids`) and the padding id (the tokenizer's, else the first eos).

    Raises:
        BackendError: the checkpoint defines no end-of-sequence token.
    """
    eos_ids = _eos_ids(model, tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos_ids[0]
    return eos_ids, int(pad_id)


def _eos_ids(model: Any, tokenizer: Any) -> list[int]:
    """End-of-sequence ids: the generation config's, else the tokenizer's ``<|im_end|>`` and eos."""
    ids: list[int] = []
    configured = getattr(getattr(model, 'generation_config', None), 'eos_token_id', None)
    if isinstance(configured, int):
        ids.append(configured)
    elif isinstance(configured, (list, tuple)):
        ids += [int(value) for value in configured]
    for token in ('<|im_end|>', tokenizer.eos_token):
        if token:
            value = tokenizer.convert_tokens_to_ids(token)
            if isinstance(value, int) and value >= 0 and value not in ids:
                ids.append(value)
    if not ids:
        raise BackendError('the checkpoint defines no end-of-sequence token')
    return ids
