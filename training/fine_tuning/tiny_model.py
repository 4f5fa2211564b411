"""Qwen2.5-VL checkpoints built locally: a tiny random one for tests, and random 3B/7B ones for benchmarks.

Nothing here downloads anything. :func:`build_tiny_qwen25vl` writes a complete checkpoint directory that
``Qwen2_5_VLForConditionalGeneration.from_pretrained`` (and
:func:`actial_ros.training.fine_tuning.modeling.load_processor`) and a ``vllm serve`` process can load:

* ``config.json`` + ``model.safetensors``: a :class:`~transformers.Qwen2_5_VLConfig` with tiny sizes and
  random weights (seeded). The text attention head dimension is 32 (hidden 128, 4 heads), one of the sizes
  vLLM's CPU attention supports (../shared/notes/ENVIRONMENT.md).
* ``tokenizer.json`` + ``tokenizer_config.json``: a byte-level BPE trained with ``tokenizers`` on local text
  (the viewpoint question templates, the system prompt, the tag vocabulary, printable ASCII), wrapped as
  :class:`~transformers.Qwen2Tokenizer` with the Qwen2.5-VL special tokens in Qwen's order.
* ``chat_template.jinja``: :data:`QWEN25_VL_CHAT_TEMPLATE`, the Qwen2.5-VL-Instruct template.
* ``preprocessor_config.json``: a Qwen2-VL image processor (patch 14, merge 2, temporal patch 2) with a small
  ``max_pixels`` so each image becomes a handful of tokens.

The special-token ids in the config (``image_token_id``, ``video_token_id``, ``vision_start_token_id``,
``vision_end_token_id``, ``bos``/``eos``/``pad``) are read from the tokenizer, so they are consistent by
construction.

:func:`qwen25vl_config` gives the published Qwen2.5-VL-3B/7B-Instruct architecture (values from the public
``config.json`` files of ``Qwen/Qwen2.5-VL-3B-Instruct`` and ``Qwen/Qwen2.5-VL-7B-Instruct``, written here
from public knowledge, not downloaded) and :func:`random_qwen25vl_from_config` instantiates it with random
weights for throughput measurements that hold for the real model.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from actial_ros.enums import QuestionType, ViewpointLabel
from actial_ros.questions import DEFAULT_SYSTEM_PROMPT, make_question

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, Qwen2_5_VLConfig

__all__ = [
    'QWEN25_VL_CHAT_TEMPLATE',
    'QWEN25_VL_SPECIAL_TOKENS',
    'TINY_MAX_PIXELS',
    'ModelSize',
    'build_tiny_qwen25vl',
    'build_tiny_tokenizer',
    'qwen25vl_config',
    'random_qwen25vl_from_config',
    'save_random_qwen25vl',
    'save_tokenizer',
]

ModelSize = Literal['tiny', 'small', '3b', '7b']
"""Architectures :func:`qwen25vl_config` knows."""

QWEN25_VL_SPECIAL_TOKENS: tuple[str, ...] = (
    '<|endoftext|>',
    '<|im_start|>',
    '<|im_end|>',
    '<|object_ref_start|>',
    '<|object_ref_end|>',
    '<|box_start|>',
    '<|box_end|>',
    '<|quad_start|>',
    '<|quad_end|>',
    '<|vision_start|>',
    '<|vision_end|>',
    '<|vision_pad|>',
    '<|image_pad|>',
    '<|video_pad|>',
)
"""The Qwen2.5-VL special tokens, in the order of Qwen's vocabulary (ids 151643 to 151656 there)."""

# The Qwen2.5-VL-Instruct chat template, character for character (TRL recognises it by equality and
# swaps in its training variant with {% generation %} markers for assistant-only loss).
QWEN25_VL_CHAT_TEMPLATE = (
    '{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}'
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}<|im_start|>system\n"
    'You are a helpful assistant.<|im_end|>\n'
    "{% endif %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    '{% set image_count.value = image_count.value + 1 %}'
    '{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>'
    "{% elif content['type'] == 'video' or 'video' in content %}"
    '{% set video_count.value = video_count.value + 1 %}'
    '{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>'
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    '{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n'
    '{% endif %}'
)
"""The chat template of Qwen2.5-VL-Instruct (system default "You are a helpful assistant.")."""

TINY_MAX_PIXELS = 56 * 56
"""``max_pixels`` of the tiny model's image processor: at most 16 patches of 14x14, i.e. 4 image tokens."""

_TINY_MIN_PIXELS = 28 * 28

# Published architecture values (config.json of Qwen/Qwen2.5-VL-{3B,7B}-Instruct; transformers field names).
_TEXT_SIZES: dict[str, dict[str, Any]] = {
    '7b': {
        'hidden_size': 3584,
        'intermediate_size': 18944,
        'num_hidden_layers': 28,
        'num_attention_heads': 28,
        'num_key_value_heads': 4,
        'vocab_size': 152064,
        'max_position_embeddings': 128000,
        'max_window_layers': 28,
        'rms_norm_eps': 1e-6,
        'tie_word_embeddings': False,
        'mrope_section': [16, 24, 24],
        'rope_theta': 1000000.0,
    },
    '3b': {
        'hidden_size': 2048,
        'intermediate_size': 11008,
        'num_hidden_layers': 36,
        'num_attention_heads': 16,
        'num_key_value_heads': 2,
        'vocab_size': 151936,
        'max_position_embeddings': 128000,
        'max_window_layers': 70,
        'rms_norm_eps': 1e-6,
        'tie_word_embeddings': True,
        'mrope_section': [16, 24, 24],
        'rope_theta': 1000000.0,
    },
    'tiny': {
        'hidden_size': 128,
        'intermediate_size': 256,
        'num_hidden_layers': 2,
        'num_attention_heads': 4,  # head_dim 32: supported by vLLM's CPU attention
        'num_key_value_heads': 2,
        'vocab_size': 1024,
        'max_position_embeddings': 4096,
        'max_window_layers': 2,
        'rms_norm_eps': 1e-6,
        'tie_word_embeddings': False,
        'mrope_section': [4, 6, 6],  # sums to head_dim / 2
        'rope_theta': 1000000.0,
    },
    # About 5 M parameters: the size of the from-scratch learning runs on CPU (benchmarks/learning.py);
    # head_dim 32 like 'tiny'. rope_theta 10, not Qwen's 1e6: M-RoPE gives the image tokens' row (h) and column
    # (w) the 6 + 6 LOWEST of the 16 rotary frequencies (theta ** (-i / 16), i = 4..15); with theta 1e6 they
    # turn by 0.03 to 2e-6 rad per token, so the language model cannot tell an image's tokens apart (which
    # token holds the left half) and no shift direction was learned; with theta 10 they turn by 0.56 to 0.12
    # rad (docs/training.md, "Learning from scratch"). initializer_range 0.06 (about 1 / sqrt(256)), not the 0.02
    # tuned for widths in the thousands: with 0.02 the attention logits of a 256-wide layer spread by about 0.1
    # at initialisation (attention is uniform) and the option letter, a lookup in the prompt, was not learned
    # within 800 steps in 4 runs; with 0.06 (spread about 0.9) it was by step 500 in both runs.
    'small': {
        'hidden_size': 256,
        'intermediate_size': 768,
        'num_hidden_layers': 4,
        'num_attention_heads': 8,
        'num_key_value_heads': 4,
        'vocab_size': 1024,
        'max_position_embeddings': 4096,
        'max_window_layers': 4,
        'rms_norm_eps': 1e-6,
        'tie_word_embeddings': False,
        'mrope_section': [4, 6, 6],
        'rope_theta': 10.0,
        'initializer_range': 0.06,
    },
}
_VISION_SIZES: dict[str, dict[str, Any]] = {
    '7b': {
        'depth': 32,
        'hidden_size': 1280,
        'intermediate_size': 3420,
        'num_heads': 16,
        'out_hidden_size': 3584,
        'fullatt_block_indexes': [7, 15, 23, 31],
        'tokens_per_second': 2,
    },
    '3b': {
        'depth': 32,
        'hidden_size': 1280,
        'intermediate_size': 3420,
        'num_heads': 16,
        'out_hidden_size': 2048,
        'fullatt_block_indexes': [7, 15, 23, 31],
        'tokens_per_second': 2,
    },
    'tiny': {
        'depth': 2,
        'hidden_size': 64,
        'intermediate_size': 128,
        'num_heads': 2,
        'out_hidden_size': 128,
        'fullatt_block_indexes': [1],
        'tokens_per_second': 2,
    },
    'small': {
        'depth': 4,
        'hidden_size': 128,
        'intermediate_size': 256,
        'num_heads': 4,
        'out_hidden_size': 256,
        'fullatt_block_indexes': [1, 3],
        'tokens_per_second': 2,
        'initializer_range': 0.06,
    },
}
# Token ids of the real Qwen2.5-VL vocabulary.
_QWEN_TOKEN_IDS = {
    'bos_token_id': 151643,
    'eos_token_id': 151645,
    'pad_token_id': 151643,
    'vision_start_token_id': 151652,
    'vision_end_token_id': 151653,
    'image_token_id': 151655,
    'video_token_id': 151656,
}


def qwen25vl_config(
    size: ModelSize = '7b', *, token_ids: dict[str, int] | None = None, vocab_size: int | None = None
) -> Qwen2_5_VLConfig:
    """The :class:`~transformers.Qwen2_5_VLConfig` of a Qwen2.5-VL size.

    Args:
        size: ``'7b'`` or ``'3b'`` (the published Instruct architectures: 7B has hidden 3584, 28 layers,
            28 heads, 4 KV heads, intermediate 18944, vocabulary 152064, a 32-block vision tower of width 1280
            projecting to 3584; 3B has hidden 2048, 36 layers, 16 heads, 2 KV heads, intermediate 11008,
            vocabulary 151936, tied embeddings), ``'tiny'`` (hidden 128, 2 layers, 4 heads of 32, a 2-block
            vision tower of width 64) or ``'small'`` (hidden 256, 4 layers, 8 heads of 32, a 4-block vision
            tower of width 128; about 5 M parameters; text ``rope_theta`` 10 instead of 1e6 and
            ``initializer_range`` 0.06 instead of 0.02, see the preset).
        token_ids: ``bos_token_id``, ``eos_token_id``, ``pad_token_id``, ``vision_start_token_id``,
            ``vision_end_token_id``, ``image_token_id``, ``video_token_id``; default: Qwen's real ids.
        vocab_size: overrides the size's vocabulary size (the embedding rows).

    Raises:
        ValueError: unknown size.
    """
    from transformers import Qwen2_5_VLConfig

    if size not in _TEXT_SIZES:
        raise ValueError(f'unknown Qwen2.5-VL size {size!r}; known: {", ".join(_TEXT_SIZES)}')
    text = dict(_TEXT_SIZES[size])
    mrope_section = text.pop('mrope_section')
    rope_theta = float(text.pop('rope_theta'))
    tie = text.pop('tie_word_embeddings')
    ids = dict(_QWEN_TOKEN_IDS if token_ids is None else token_ids)
    if vocab_size is not None:
        text['vocab_size'] = int(vocab_size)
    text_config = {
        **text,
        'model_type': 'qwen2_5_vl_text',
        'hidden_act': 'silu',
        'use_sliding_window': False,
        'sliding_window': 32768,
        'attention_dropout': 0.0,
        'rope_parameters': {'rope_type': 'default', 'rope_theta': rope_theta, 'mrope_section': mrope_section},
        'bos_token_id': ids['bos_token_id'],
        'eos_token_id': ids['eos_token_id'],
        'pad_token_id': ids['pad_token_id'],
    }
    vision_config = {
        **_VISION_SIZES[size],
        'model_type': 'qwen2_5_vl_vision',
        'hidden_act': 'silu',
        'in_channels': 3,
        'patch_size': 14,
        'spatial_merge_size': 2,
        'temporal_patch_size': 2,
        'window_size': 112,
    }
    top_level_ids: dict[str, Any] = {key: ids[key] for key in ('bos_token_id', 'eos_token_id', 'pad_token_id')}
    config = Qwen2_5_VLConfig(
        text_config=text_config,
        vision_config=vision_config,
        image_token_id=ids['image_token_id'],
        video_token_id=ids['video_token_id'],
        vision_start_token_id=ids['vision_start_token_id'],
        vision_end_token_id=ids['vision_end_token_id'],
        tie_word_embeddings=tie,
        **top_level_ids,  # also at the top level, as Qwen's config.json has them
    )
    # The top level's initializer_range initialises the weights (transformers' default 0.02; 'small': 0.06).
    config.initializer_range = float(text.get('initializer_range', 0.02))
    return config


def random_qwen25vl_from_config(
    size: ModelSize = '7b',
    *,
    dtype: torch.dtype | None = None,
    device: str | torch.device = 'cpu',
    seed: int = 0,
    token_ids: dict[str, int] | None = None,
    vocab_size: int | None = None,
) -> PreTrainedModel:
    """A :class:`~transformers.Qwen2_5_VLForConditionalGeneration` of ``size`` with random weights.

    Built from :func:`qwen25vl_config` directly on ``device`` (no download, no CPU copy when ``device`` is
    a GPU). A 7B model in bfloat16 needs about 16.6 GB; in float32 twice that.

    Args:
        size: see :func:`qwen25vl_config`.
        dtype: parameter dtype (default ``torch.bfloat16``).
        device: where the parameters are created.
        seed: ``torch.manual_seed`` before initialisation.
        token_ids: special-token ids (default: Qwen's real ids).
        vocab_size: overrides the embedding rows.
    """
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    config = qwen25vl_config(size, token_ids=token_ids, vocab_size=vocab_size)
    torch.manual_seed(seed)
    with torch.device(device):
        model = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=dtype or torch.bfloat16)  # type: ignore[no-untyped-call]
    return cast('PreTrainedModel', model.eval())


# ----------------------------------------------------------------------------------------------------
# Tokenizer
# ----------------------------------------------------------------------------------------------------


def _corpus(extra_text: Iterable[str] = ()) -> Iterator[str]:
    """Local text the tiny tokenizer is trained on."""
    rng = random.Random(0)
    yield DEFAULT_SYSTEM_PROMPT
    for kind in QuestionType:
        for label in ViewpointLabel:
            for _ in range(3):
                question = make_question(kind, label, rng)
                yield question.text
                letter = question.answer_letter
                yield f'<think> The camera moved and turned; the object stayed. </think> <answer>{letter}</answer>'
    yield (
        '<think> Step 1: identify the images. Step 2: visual analysis of the camera frame and the object '
        'frame. Step 3: analyse the movements: translation, yaw, pitch, roll. Step 4: synthesise the '
        'trajectory. Step 5: answer. </think> <answer>A</answer> <answer>B</answer> <answer>C</answer> '
        '<answer>D</answer> (A) (B) (C) (D) A. B. C. D. Options: Answer with the option letter. '
        'Which object is closer to the camera? Is the point left or right? How many? yes no'
    )
    yield ''.join(chr(c) for c in range(32, 127))
    yield from extra_text


def build_tiny_tokenizer(vocab_size: int = 1000, extra_text: Iterable[str] = ()) -> Any:
    """A byte-level BPE :class:`~transformers.Qwen2Tokenizer` with the Qwen2.5-VL special tokens.

    Trained with ``tokenizers`` (Qwen2's pre-tokenizer regex, byte-level alphabet, so any text encodes)
    on :func:`_corpus` plus ``extra_text``; the special tokens :data:`QWEN25_VL_SPECIAL_TOKENS` follow
    the learned vocabulary in Qwen's order. ``eos_token`` is ``<|im_end|>`` and ``pad_token``
    ``<|endoftext|>`` as in Qwen2.5-VL-Instruct; the chat template is :data:`QWEN25_VL_CHAT_TEMPLATE`.

    Args:
        vocab_size: BPE vocabulary target before the special tokens (the corpus may yield fewer).
        extra_text: more training text.
    """
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, trainers
    from tokenizers.models import BPE
    from transformers import Qwen2Tokenizer
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    bpe = Tokenizer(BPE())
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior='isolated'),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    bpe.train_from_iterator(_corpus(extra_text), trainer)
    learned = json.loads(bpe.to_str())['model']
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(' ')) for m in learned['merges']]
    # <|endoftext|> first (as in Qwen), then the others; eos becomes <|im_end|> afterwards.
    tokenizer = Qwen2Tokenizer(
        vocab=learned['vocab'],
        merges=merges,  # type: ignore[arg-type]  # BPE takes (left, right) pairs too
        unk_token=None,  # type: ignore[arg-type]
        eos_token='<|endoftext|>',
        pad_token='<|endoftext|>',
        model_max_length=32768,
        errors='replace',
        clean_up_tokenization_spaces=False,
        split_special_tokens=False,
    )
    tokenizer.add_special_tokens({'additional_special_tokens': list(QWEN25_VL_SPECIAL_TOKENS)})
    tokenizer.eos_token = '<|im_end|>'
    tokenizer.chat_template = QWEN25_VL_CHAT_TEMPLATE
    return tokenizer


def _token_ids(tokenizer: Any) -> dict[str, int]:
    def tid(token: str) -> int:
        value = tokenizer.convert_tokens_to_ids(token)
        if not isinstance(value, int) or value is None:
            raise RuntimeError(f'token {token!r} missing from the tokenizer')
        return value

    return {
        'bos_token_id': tid('<|endoftext|>'),
        'eos_token_id': tid('<|im_end|>'),
        'pad_token_id': tid('<|endoftext|>'),
        'vision_start_token_id': tid('<|vision_start|>'),
        'vision_end_token_id': tid('<|vision_end|>'),
        'image_token_id': tid('<|image_pad|>'),
        'video_token_id': tid('<|video_pad|>'),
    }


def _save_image_processor(out_dir: Path, *, min_pixels: int, max_pixels: int) -> None:
    """``preprocessor_config.json`` of a Qwen2-VL image processor, as Qwen2.5-VL-Instruct ships it."""
    config = {
        'do_convert_rgb': True,
        'do_normalize': True,
        'do_rescale': True,
        'do_resize': True,
        'image_mean': [0.48145466, 0.4578275, 0.40821073],
        'image_std': [0.26862954, 0.26130258, 0.27577711],
        'image_processor_type': 'Qwen2VLImageProcessor',
        'merge_size': 2,
        'min_pixels': min_pixels,
        'max_pixels': max_pixels,
        'size': {'shortest_edge': min_pixels, 'longest_edge': max_pixels},
        'patch_size': 14,
        'processor_class': 'Qwen2_5_VLProcessor',
        'resample': 3,
        'rescale_factor': 0.00392156862745098,
        'temporal_patch_size': 2,
    }
    (out_dir / 'preprocessor_config.json').write_text(json.dumps(config, indent=2) + '\n', encoding='utf-8')


def save_tokenizer(tokenizer: Any, out_dir: Path) -> None:
    """Save ``tokenizer`` with its chat template (``chat_template.jinja``) into ``out_dir``."""
    tokenizer.save_pretrained(out_dir)
    if not (out_dir / 'chat_template.jinja').exists() and tokenizer.chat_template:
        (out_dir / 'chat_template.jinja').write_text(tokenizer.chat_template, encoding='utf-8')


def build_tiny_qwen25vl(
    out_dir: str | Path,
    *,
    size: ModelSize = 'tiny',
    seed: int = 0,
    vocab_size: int = 1000,
    max_pixels: int = TINY_MAX_PIXELS,
    min_pixels: int = _TINY_MIN_PIXELS,
    extra_text: Iterable[str] = (),
) -> Path:
    """Write a complete tiny random Qwen2.5-VL checkpoint directory and return its path.

    About 1.5 M parameters (float32, ~6 MB); takes about a second. Deterministic for ``seed`` (weights)
    and the corpus (tokenizer).

    Args:
        out_dir: directory to create (parents too); existing files are overwritten.
        size: ``'tiny'`` (about 1.5 M parameters) or ``'small'`` (about 5 M; see :func:`qwen25vl_config`).
        seed: ``torch.manual_seed`` for the random weights.
        vocab_size: BPE vocabulary target of the tokenizer (before special tokens).
        max_pixels: image processor ``max_pixels`` (pixels; 3136 = 16 patches = 4 image tokens).
        min_pixels: image processor ``min_pixels`` (pixels).
        extra_text: more tokenizer training text.

    Returns:
        ``out_dir`` as a :class:`~pathlib.Path`.
    """
    import torch
    from transformers import GenerationConfig, Qwen2_5_VLForConditionalGeneration

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tiny_tokenizer(vocab_size, extra_text)
    ids = _token_ids(tokenizer)
    rows = -(-len(tokenizer) // 64) * 64  # embedding rows: a multiple of 64 covering the tokenizer
    config = qwen25vl_config(size, token_ids=ids, vocab_size=rows)
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=torch.float32)  # type: ignore[no-untyped-call]
    model.generation_config = GenerationConfig(  # type: ignore[no-untyped-call]
        bos_token_id=ids['bos_token_id'],
        eos_token_id=[ids['eos_token_id'], ids['pad_token_id']],
        pad_token_id=ids['pad_token_id'],
    )
    model.save_pretrained(out)
    save_tokenizer(tokenizer, out)
    _save_image_processor(out, min_pixels=min_pixels, max_pixels=max_pixels)
    return out


def save_random_qwen25vl(
    out_dir: str | Path,
    size: ModelSize = '7b',
    *,
    dtype: torch.dtype | None = None,
    device: str = 'cpu',
    seed: int = 0,
    max_pixels: int = 960 * 540,
) -> Path:
    """Write a random Qwen2.5-VL checkpoint of ``size`` (e.g. for ``vllm serve`` in a benchmark).

    The weights are random (:func:`random_qwen25vl_from_config`); the tokenizer is the tiny local one
    (about 1,000 tokens, so the same text is more tokens than with Qwen's 151,643-token vocabulary) with
    the config's special-token ids pointing at its special tokens. 7B in bfloat16 writes about 16.6 GB.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tiny_tokenizer()
    ids = _token_ids(tokenizer)
    model = random_qwen25vl_from_config(size, dtype=dtype, device=device, seed=seed, token_ids=ids)
    model.save_pretrained(out)
    save_tokenizer(tokenizer, out)
    _save_image_processor(out, min_pixels=_TINY_MIN_PIXELS, max_pixels=max_pixels)
    return out
