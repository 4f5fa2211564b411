"""Training data: the viewpoint dataset, SAT, the hybrid cold-start mix (SFT) and the GRPO mix.

Inputs are local parquet files only (no hub access):

* The viewpoint dataset written by ``actial-ros-train build-viewpoint`` (columns of
  :mod:`actial_ros.training.dataset.schema`; one row = one multiple-choice question about an image pair; ``cot`` holds
  the pseudo chain-of-thought where there is one).
* SAT in one of three layouts, detected from the columns (``layout='auto'``):

  - ``array`` (``array/SAT`` on the hub): ``image_bytes`` (list of images), ``question``, ``answers`` (list of
    option texts), ``correct_answer`` (the correct option's text), ``question_type``. The options are shuffled
    per row with a seeded RNG (the dataset card asks for it) and lettered; the ground truth is the letter.
  - ``verl`` (``INno0o/SAT`` as the official Actial GRPO script reads it with verl: ``data.image_key=images``):
    ``prompt`` (chat messages whose user text holds ``<image>`` placeholders), ``images`` (list of images),
    ``reward_model`` (``{'ground_truth': ..., 'style': 'rule'}``), optionally ``data_source``/``extra_info``.
    The user text (placeholders removed) and the ground truth are used as stored: the accuracy reward compares
    the answer with it exactly, as the official reward does. This layout is inferred from the official
    training script and verl's conventions; it could not be checked against the files themselves.
  - ``flat``: ``images``, ``question``, ``options`` (or ``choices``), ``answer`` (a letter, ``(B)``, or the
    correct option's text); options kept in order and lettered.

Images are stored as encoded bytes (never decoded while mixing) and downscaled to fit
``max_image_width`` x ``max_image_height`` (960x540 by default, the paper's limit) only when larger, with
:func:`actial_ros.imaging.resize_max`.
"""

from __future__ import annotations

import glob
import io
import logging
import os
import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from actial_ros.training.fine_tuning.prompts import conversation, mc_target, multiple_choice_text

from actial_ros.answers import extract_answer_block, matches_output_format
from actial_ros.errors import ConfigError
from actial_ros.imaging import MAX_MODEL_HEIGHT, MAX_MODEL_WIDTH, decode_jpeg, encode_jpeg, resize_max

__all__ = [
    'SatLayout',
    'build_grpo_dataset',
    'build_sft_dataset',
    'detect_sat_layout',
    'fit_image_bytes',
    'image_bytes',
    'load_parquet',
    'load_sat',
    'load_viewpoint',
    'mix_indices',
    'resolve_files',
]

_LOG = logging.getLogger(__name__)

SatLayout = Literal['auto', 'array', 'verl', 'flat']
"""SAT parquet layouts :func:`load_sat` reads."""

_LETTER_RE = re.compile(r'^\(?\s*([A-Za-z])\s*\)?\.?$')
_IMAGE_PLACEHOLDER_RE = re.compile(r'<image>\s*')


def resolve_files(paths: Sequence[str | os.PathLike[str]], suffix: str = '.parquet') -> list[str]:
    """Expand files, directories (searched recursively for ``*suffix``) and glob patterns, sorted per entry.

    Raises:
        ConfigError: nothing matched, or an entry does not exist.
    """
    files: list[str] = []
    for entry in paths:
        text = os.fspath(entry)
        path = Path(text)
        if path.is_dir():
            found = sorted(str(p) for p in path.rglob(f'*{suffix}'))
        elif path.is_file():
            found = [str(path)]
        else:
            found = sorted(glob.glob(text, recursive=True))
            if not found:
                raise ConfigError(f'no such file, directory or match: {text}')
        files.extend(found)
    if not files:
        raise ConfigError(f'no {suffix} files in {[os.fspath(p) for p in paths]}')
    return files


def load_parquet(paths: Sequence[str | os.PathLike[str]], *, cache_dir: str | None = None) -> Any:
    """Load local parquet files (see :func:`resolve_files`) as one memory-mapped ``datasets.Dataset``.

    Raises:
        ConfigError: no files.
    """
    from datasets import load_dataset

    files = resolve_files(paths)
    return load_dataset('parquet', data_files=files, split='train', cache_dir=cache_dir)


def _undecoded(dataset: Any, columns: Sequence[str]) -> Any:
    """Cast image columns (``Image`` or lists of ``Image``) to ``decode=False``: rows hold encoded bytes."""
    from datasets import Image, List
    from datasets import Sequence as HfSequence

    for column in columns:
        feature = dataset.features.get(column)
        if isinstance(feature, Image) and feature.decode:
            dataset = dataset.cast_column(column, Image(decode=False))
        elif isinstance(feature, (List, HfSequence)) and isinstance(feature.feature, Image):
            dataset = dataset.cast_column(column, List(Image(decode=False)))
    return dataset


def image_bytes(value: Any) -> bytes:
    """Encoded bytes of one stored image: ``bytes``, ``{'bytes': ..., 'path': ...}`` or a PIL image (PNG).

    Raises:
        ValueError: an empty or unreadable value.
    """
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
    elif isinstance(value, dict):
        if value.get('bytes'):
            data = bytes(value['bytes'])
        elif value.get('path'):
            data = Path(value['path']).read_bytes()
        else:
            raise ValueError('image entry has neither bytes nor path')
    elif hasattr(value, 'save'):  # PIL image
        buffer = io.BytesIO()
        value.convert('RGB').save(buffer, format='PNG')
        data = buffer.getvalue()
    else:
        raise ValueError(f'cannot read an image from {type(value).__name__}')
    if not data:
        raise ValueError('empty image data')
    return data


def fit_image_bytes(
    data: bytes, max_width: int = MAX_MODEL_WIDTH, max_height: int = MAX_MODEL_HEIGHT, quality: int = 95
) -> bytes:
    """``data`` unchanged when the image fits in ``max_width`` x ``max_height`` pixels, else downscaled JPEG.

    Only the header is read to decide; a larger image is decoded, resized with
    :func:`actial_ros.imaging.resize_max` (aspect kept) and re-encoded as JPEG of ``quality``.

    Raises:
        actial_ros.errors.ImageError: undecodable data.
    """
    from PIL import Image as PilImage

    try:
        with PilImage.open(io.BytesIO(data)) as image:
            width, height = image.size
    except Exception:  # not readable by PIL: let decode_jpeg raise a clear error
        width, height = max_width + 1, max_height + 1
    if width <= max_width and height <= max_height:
        return data
    return encode_jpeg(resize_max(decode_jpeg(data), max_width, max_height), quality)


def load_viewpoint(
    paths: Sequence[str | os.PathLike[str]], *, split: str | None = 'train', cache_dir: str | None = None
) -> Any:
    """The viewpoint dataset's rows of ``split`` (``None``: all), images undecoded.

    Raises:
        ConfigError: no files, missing schema columns, or no row of ``split``.
    """
    dataset = load_parquet(paths, cache_dir=cache_dir)
    needed = {'id', 'image_1', 'image_2', 'question', 'options', 'answer', 'answer_label', 'question_type', 'cot'}
    missing = sorted(needed - set(dataset.column_names))
    if missing:
        raise ConfigError(f'not a viewpoint dataset (schema.py columns); missing: {", ".join(missing)}')
    if split is not None and 'split' in dataset.column_names:
        dataset = dataset.filter(lambda value: value == split, input_columns='split')
    if len(dataset) == 0:
        raise ConfigError(f'no viewpoint rows of split {split!r} in {[os.fspath(p) for p in paths]}')
    return _undecoded(dataset, ['image_1', 'image_2'])


def mix_indices(
    n_main: int, n_extra: int, ratio: float, *, total: int | None = None, seed: int = 0
) -> list[tuple[int, int]]:
    """A deterministic mix of two pools where a share ``ratio`` of the items comes from the second.

    Without ``total``, every main item is used once and extra items are added (cycling through a shuffled
    order, so repeating when the pool is small) until they make ``ratio`` of the mix:
    ``n_extra_used = round(n_main * ratio / (1 - ratio))``. With ``total``, ``round(total * ratio)`` items come
    from the extra pool and the rest from the main pool, each cycling through its own shuffled order.
    The result is shuffled.

    Args:
        n_main: size of the main pool (e.g. multiple-choice rows).
        n_extra: size of the extra pool (e.g. CoT rows).
        ratio: share of extra items in [0, 1) (paper's hybrid cold start: 0.1).
        total: size of the mix, or ``None``.
        seed: RNG seed.

    Returns:
        ``(pool, index)`` pairs: pool 0 = main, 1 = extra.

    Raises:
        ConfigError: ratio outside [0, 1), a needed pool is empty, or ``total`` < 1.
    """
    if not 0.0 <= ratio < 1.0:
        raise ConfigError(f'mixing ratio must be in [0, 1), got {ratio}')
    if total is None:
        count_main = n_main
        count_extra = round(n_main * ratio / (1.0 - ratio))
    else:
        if total < 1:
            raise ConfigError(f'mix size must be >= 1, got {total}')
        count_extra = round(total * ratio)
        count_main = total - count_extra
    if count_main > 0 and n_main == 0:
        raise ConfigError('the main pool is empty')
    if count_extra > 0 and n_extra == 0:
        raise ConfigError(f'a share {ratio} of the mix must come from the second pool, which is empty')
    rng = random.Random(seed)

    def draw(pool: int, size: int, count: int) -> list[tuple[int, int]]:
        chosen: list[tuple[int, int]] = []
        while len(chosen) < count:
            order = list(range(size))
            rng.shuffle(order)
            chosen.extend((pool, i) for i in order[: count - len(chosen)])
        return chosen

    mixed = draw(0, n_main, count_main) + draw(1, n_extra, count_extra)
    rng.shuffle(mixed)
    return mixed


def _cot_usable(cot: str | None, answer: str) -> bool:
    return bool(cot) and matches_output_format(str(cot)) and extract_answer_block(str(cot)) == answer.strip()


def build_sft_dataset(
    mc: Any,
    cot: Any | None = None,
    *,
    cot_ratio: float = 0.1,
    system_prompt: str,
    mc_target_template: str,
    total: int | None = None,
    seed: int = 0,
    max_image_width: int = MAX_MODEL_WIDTH,
    max_image_height: int = MAX_MODEL_HEIGHT,
) -> Any:
    """The hybrid cold-start SFT set: multiple-choice rows mixed with CoT rows at ``cot_ratio``.

    Rows of ``cot`` (default: ``mc``) are usable as CoT when their ``cot`` is in the output format and its
    answer block equals the row's ``answer``; others are skipped (logged). Multiple-choice targets are
    ``mc_target_template`` filled with the row's letter, option text and label
    (:data:`actial_ros.training.fine_tuning.prompts.DEFAULT_MC_TARGET`); CoT targets are the row's ``cot``.

    Args:
        mc: viewpoint rows for the multiple-choice part (:func:`load_viewpoint`).
        cot: viewpoint rows to take CoT targets from; ``None``: ``mc``.
        cot_ratio: share of CoT samples in the mix (paper: 0.9 : 0.1, i.e. 0.1).
        system_prompt: system message ('' for none).
        mc_target_template: see above.
        total: mix size (``None``: all multiple-choice rows plus CoT rows to reach the ratio; see
            :func:`mix_indices`).
        seed: mixing seed.
        max_image_width, max_image_height: images larger than this are downscaled (pixels).

    Returns:
        A ``datasets.Dataset`` with ``messages`` (system, user, assistant; string contents), ``images``
        (two images, decoded to PIL on access), ``kind`` (``mc`` or ``cot``) and ``id``.

    Raises:
        ConfigError: see :func:`mix_indices`.
    """
    from datasets import Features, Image, List, Value, concatenate_datasets

    cot_source = mc if cot is None else cot
    usable = [
        i
        for i, (text, answer) in enumerate(zip(cot_source['cot'], cot_source['answer'], strict=True))
        if _cot_usable(text, answer)
    ]
    skipped = sum(1 for text in cot_source['cot'] if text) - len(usable)
    if skipped:
        _LOG.warning('%d CoT rows skipped: not in the output format or answer differs from the label', skipped)
    mix = mix_indices(len(mc), len(usable), cot_ratio, total=total, seed=seed)
    mc_rows = [i for pool, i in mix if pool == 0]
    cot_rows = [usable[i] for pool, i in mix if pool == 1]
    features = Features(
        {
            'messages': List({'role': Value('string'), 'content': Value('string')}),
            'images': List(Image()),
            'kind': Value('string'),
            'id': Value('string'),
        }
    )

    def images_of(row: dict[str, Any]) -> list[bytes]:
        return [
            fit_image_bytes(image_bytes(row[key]), max_image_width, max_image_height) for key in ('image_1', 'image_2')
        ]

    def to_mc(row: dict[str, Any]) -> dict[str, Any]:
        letter = str(row['answer']).strip()
        index = ord(letter.upper()) - ord('A')
        options = list(row['options'] or [])
        option = options[index] if 0 <= index < len(options) else ''
        target = mc_target(mc_target_template, letter=letter, option=option, label=str(row['answer_label']))
        return {
            'messages': conversation(row['question'], system_prompt=system_prompt, target=target),
            'images': images_of(row),
            'kind': 'mc',
            'id': row['id'],
        }

    def to_cot(row: dict[str, Any]) -> dict[str, Any]:
        return {
            'messages': conversation(row['question'], system_prompt=system_prompt, target=str(row['cot']).strip()),
            'images': images_of(row),
            'kind': 'cot',
            'id': row['id'],
        }

    parts = []
    if mc_rows:
        selected = mc.select(mc_rows)
        parts.append(selected.map(to_mc, remove_columns=selected.column_names, features=features))
    if cot_rows:
        selected = cot_source.select(cot_rows)
        parts.append(selected.map(to_cot, remove_columns=selected.column_names, features=features))
    merged = concatenate_datasets(parts) if len(parts) > 1 else parts[0]
    return merged.shuffle(seed=seed).flatten_indices()


def detect_sat_layout(columns: Sequence[str]) -> Literal['array', 'verl', 'flat']:
    """The SAT layout of a parquet file from its column names (see the module docstring).

    Raises:
        ConfigError: no known layout matches.
    """
    names = set(columns)
    if {'image_bytes', 'question', 'answers', 'correct_answer'} <= names:
        return 'array'
    if {'prompt', 'images', 'reward_model'} <= names:
        return 'verl'
    if {'images', 'question', 'answer'} <= names and names & {'options', 'choices'}:
        return 'flat'
    raise ConfigError(
        'unknown SAT layout; expected array/SAT (image_bytes, question, answers, correct_answer), verl/INno0o '
        f'(prompt, images, reward_model) or flat (images, question, options|choices, answer); got {sorted(names)}'
    )


def _user_text(prompt: Any) -> str:
    if isinstance(prompt, str):
        return _IMAGE_PLACEHOLDER_RE.sub('', prompt).strip()
    texts = [m.get('content', '') for m in prompt if isinstance(m, dict) and m.get('role') == 'user']
    if not texts:
        raise ValueError('verl prompt without a user message')
    parts = []
    for content in texts:
        if isinstance(content, str):
            parts.append(content)
        else:
            parts.extend(str(p.get('text', '')) for p in content if isinstance(p, dict))
    return _IMAGE_PLACEHOLDER_RE.sub('', '\n'.join(parts)).strip()


def _letter_of(answer: str, options: Sequence[str]) -> str:
    text = str(answer).strip()
    match = _LETTER_RE.match(text)
    if match and ord(match.group(1).upper()) - ord('A') < len(options):
        return match.group(1).upper()
    if text in options:
        return chr(ord('A') + list(options).index(text))
    raise ValueError(f'answer {answer!r} is neither an option letter nor one of the options {list(options)}')


def load_sat(
    paths: Sequence[str | os.PathLike[str]],
    *,
    layout: SatLayout = 'auto',
    seed: int = 0,
    max_image_width: int = MAX_MODEL_WIDTH,
    max_image_height: int = MAX_MODEL_HEIGHT,
    cache_dir: str | None = None,
) -> Any:
    """SAT questions from local parquet files, normalised for GRPO.

    Returns:
        A ``datasets.Dataset`` with ``question`` (the full user text: question, lettered options and
        instruction, or the stored verl prompt), ``images`` (list of encoded images), ``solution`` (the
        ground-truth string the accuracy reward compares with), ``category`` (SAT ``question_type`` or
        ``data_source`` when present, else ``sat``) and ``source`` (``sat``).

    Raises:
        ConfigError: no files or an unknown layout.
    """
    from datasets import Features, Image, List, Value

    dataset = load_parquet(paths, cache_dir=cache_dir)
    kind = detect_sat_layout(dataset.column_names) if layout == 'auto' else layout
    image_column = 'image_bytes' if kind == 'array' else 'images'
    dataset = _undecoded(dataset, [image_column])
    features = Features(
        {
            'question': Value('string'),
            'images': List(Image()),
            'solution': Value('string'),
            'category': Value('string'),
            'source': Value('string'),
        }
    )

    def convert(row: dict[str, Any], index: int) -> dict[str, Any]:
        images = [fit_image_bytes(image_bytes(v), max_image_width, max_image_height) for v in row[image_column]]
        if kind == 'array':
            options = list(row['answers'])
            random.Random(f'{seed}:{index}').shuffle(options)
            question = multiple_choice_text(row['question'], options)
            solution = _letter_of(row['correct_answer'], options)
            category = row.get('question_type') or 'sat'
        elif kind == 'verl':
            question = _user_text(row['prompt'])
            reward = row['reward_model']
            solution = str(reward['ground_truth'] if isinstance(reward, dict) else reward).strip()
            category = row.get('data_source') or 'sat'
        else:
            options = list(row.get('options') or row.get('choices') or [])
            question = multiple_choice_text(row['question'], options)
            solution = _letter_of(row['answer'], options)
            category = row.get('question_type') or row.get('category') or 'sat'
        return {
            'question': question,
            'images': images,
            'solution': solution,
            'category': str(category),
            'source': 'sat',
        }

    return dataset.map(convert, with_indices=True, remove_columns=dataset.column_names, features=features)


def build_grpo_dataset(
    sat: Any | None,
    viewpoint: Any | None = None,
    *,
    viewpoint_ratio: float = 0.0,
    system_prompt: str,
    total: int | None = None,
    seed: int = 0,
    max_image_width: int = MAX_MODEL_WIDTH,
    max_image_height: int = MAX_MODEL_HEIGHT,
) -> Any:
    """GRPO prompts: SAT (:func:`load_sat`) mixed with viewpoint questions at ``viewpoint_ratio``, or the
    viewpoint questions alone when there is no SAT (a robot owner's own bags).

    Args:
        sat: normalised SAT rows, or ``None``: viewpoint rows only (``viewpoint_ratio`` is then ignored).
        viewpoint: viewpoint rows (:func:`load_viewpoint`); required when ``viewpoint_ratio > 0`` or without SAT.
        viewpoint_ratio: share of viewpoint questions in the mix, in [0, 1) (0: SAT only, as in the paper).
        system_prompt: system message ('' for none).
        total: mix size (``None``: every SAT row once plus viewpoint rows to reach the ratio).
        seed: mixing seed.
        max_image_width, max_image_height: viewpoint images larger than this are downscaled (pixels).

    Returns:
        A ``datasets.Dataset`` with ``prompt`` (system + user messages, string contents), ``images``
        (decoded to PIL on access), ``solution``, ``category``, ``source`` (``sat`` or ``viewpoint``) and
        ``prompt_id`` (``p<N>``, unique in the set: questions repeat their text over different images).

    Raises:
        ConfigError: a ratio > 0 or no SAT without viewpoint rows; see :func:`mix_indices`.
    """
    from datasets import Features, Image, List, Value, concatenate_datasets

    if (viewpoint_ratio > 0 or sat is None) and viewpoint is None:
        raise ConfigError('GRPO needs prompts: SAT data, viewpoint data, or both (viewpoint_ratio > 0)')
    n_view = 0 if viewpoint is None else len(viewpoint)
    if sat is None:  # every prompt a viewpoint question: the viewpoint rows are the main pool
        mix = [(1, i) for _, i in mix_indices(n_view, 0, 0.0, total=total, seed=seed)]
    else:
        mix = mix_indices(len(sat), n_view, viewpoint_ratio, total=total, seed=seed)
    features = Features(
        {
            'prompt': List({'role': Value('string'), 'content': Value('string')}),
            'images': List(Image()),
            'solution': Value('string'),
            'category': Value('string'),
            'source': Value('string'),
        }
    )

    def from_sat(row: dict[str, Any]) -> dict[str, Any]:
        return {
            'prompt': conversation(row['question'], system_prompt=system_prompt),
            'images': row['images'],
            'solution': row['solution'],
            'category': row['category'],
            'source': 'sat',
        }

    def from_viewpoint(row: dict[str, Any]) -> dict[str, Any]:
        return {
            'prompt': conversation(row['question'], system_prompt=system_prompt),
            'images': [
                fit_image_bytes(image_bytes(row[key]), max_image_width, max_image_height)
                for key in ('image_1', 'image_2')
            ],
            'solution': str(row['answer']).strip(),
            'category': str(row['question_type']),
            'source': 'viewpoint',
        }

    parts = []
    sat_rows = [i for pool, i in mix if pool == 0]
    view_rows = [i for pool, i in mix if pool == 1]
    if sat_rows and sat is not None:
        selected = _undecoded(sat.select(sat_rows), ['images'])
        parts.append(selected.map(from_sat, remove_columns=selected.column_names, features=features))
    if view_rows and viewpoint is not None:
        selected = viewpoint.select(view_rows)
        parts.append(selected.map(from_viewpoint, remove_columns=selected.column_names, features=features))
    merged = concatenate_datasets(parts) if len(parts) > 1 else parts[0]
    merged = merged.add_column('prompt_id', [f'p{index}' for index in range(len(merged))])
    return merged.shuffle(seed=seed).flatten_indices()
