"""Evaluation sets read from local files in their published layouts, and the paper's published numbers.

Layouts (assumptions checked against the public dataset cards and loaders where possible; see
docs/training.md):

* Viewpoint test split: the viewpoint dataset's parquet files (:mod:`actial_ros.training.dataset.schema`), rows of
  split ``test``; category = ``question_type``; the question text already ends with the options.
* CV-Bench (``nyu-visionx/CV-Bench``, ``test.parquet`` or ``test-*.parquet``): ``idx``, ``type`` (2D/3D),
  ``task`` (Count, Relation, Depth, Distance), ``image``, ``question``, ``choices``, ``answer`` (``(A)``),
  ``source`` (ADE20K, COCO, Omni3D). Category = ``task``.
* BLINK (``BLINK-Benchmark/BLINK``): one folder per subtask (``Multi-view_Reasoning``, ``Relative_Depth``,
  ``Spatial_Relation``, ...) holding ``val-*.parquet`` (the ``test`` split has no public answers): ``idx``,
  ``question``, ``sub_task``, ``image_1`` .. ``image_4`` (missing ones null), ``choices``, ``answer`` (``(A)``).
  Category = the subtask.
* VLMEvalKit TSV (3DSRBench ``3DSRBench.tsv`` and any other MCQ TSV): ``index``, ``question``, option columns
  ``A``, ``B``, ... (empty cells = no option), ``answer`` (letter), ``category`` (optional), ``image``
  (base64, or a JSON/Python list of base64 strings for multi-image items), optional ``hint``.

Every question is asked as: question, lettered options (``A. ...``), "Answer with the option's letter from the
given choices directly." (the closing of the viewpoint questions), with the images first.
"""

from __future__ import annotations

import ast
import base64
import csv
import json
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actial_ros.training.fine_tuning.data import image_bytes, load_parquet, load_viewpoint, resolve_files
from actial_ros.training.fine_tuning.prompts import multiple_choice_text

from actial_ros.errors import ConfigError

__all__ = [
    'BLINK_SPATIAL_SUBTASKS',
    'PAPER_MODELS',
    'PAPER_RESULTS',
    'EvalItem',
    'load_blink',
    'load_cv_bench',
    'load_viewpoint_items',
    'load_vlmeval_tsv',
]

BLINK_SPATIAL_SUBTASKS: tuple[str, ...] = ('Multi-view_Reasoning', 'Relative_Depth', 'Spatial_Relation')
"""The BLINK subtasks the issue evaluates (multi-view, relative depth, spatial relation)."""

PAPER_MODELS: tuple[str, ...] = ('GPT-4o', 'Qwen2.5-VL-7B', 'Actial-7B', 'SFT only', 'GRPO only', 'Human')
"""Columns of the published results."""

PAPER_RESULTS: dict[str, dict[str, float]] = {
    'viewpoint/overall': {'Qwen2.5-VL-7B': 12.9, 'SFT only': 92.2, 'Actial-7B': 81.4, 'Human': 97.67},
    '3dsrbench/overall': {
        'GPT-4o': 44.6,
        'Qwen2.5-VL-7B': 45.8,
        'Actial-7B': 47.7,
        'SFT only': 46.6,
        'GRPO only': 47.6,
    },
    'cv_bench/avg': {'GPT-4o': 79.4, 'Qwen2.5-VL-7B': 71.2, 'Actial-7B': 83.5, 'SFT only': 73.1, 'GRPO only': 83.1},
    'cv_bench/Depth': {'GPT-4o': 87.8, 'Qwen2.5-VL-7B': 69.1, 'Actial-7B': 88.5, 'SFT only': 83.5, 'GRPO only': 86.1},
    'blink/avg': {'GPT-4o': 62.7, 'Qwen2.5-VL-7B': 73.4, 'Actial-7B': 87.6, 'SFT only': 86.6, 'GRPO only': 74.9},
    'blink/Multi-view_Reasoning': {
        'GPT-4o': 55.6,
        'Qwen2.5-VL-7B': 53.3,
        'Actial-7B': 99.2,
        'SFT only': 99.2,
        'GRPO only': 55.6,
    },
}
"""Published accuracies (%), keyed ``benchmark/category`` (``overall``/``avg`` for aggregates): the
Viewpoint-100K test numbers and the results table of the paper (Zhan et al., arXiv 2511.01618; copied from
../shared/notes/ACTIAL.md)."""

_PAREN_LETTER = re.compile(r'^\(?\s*([A-Za-z])\s*\)?\.?$')


@dataclass(frozen=True)
class EvalItem:
    """One multiple-choice evaluation question.

    Attributes:
        benchmark: ``viewpoint``, ``cv_bench``, ``blink``, ``3dsrbench`` or a TSV's name.
        category: the per-category key (question type, task, subtask, TSV category).
        item_id: the item's id in its benchmark.
        question: the full user text (question, lettered options, closing instruction).
        images: encoded images (JPEG/PNG bytes), in order.
        answer: the correct option letter (upper case).
        letters: the valid option letters, e.g. ``'ABCD'``.
        extra: benchmark fields used by aggregates (e.g. CV-Bench ``source``).
    """

    benchmark: str
    category: str
    item_id: str
    question: str
    images: tuple[bytes, ...]
    answer: str
    letters: str
    extra: tuple[tuple[str, str], ...] = ()


def _letters(count: int) -> str:
    return ''.join(chr(ord('A') + i) for i in range(count))


def _answer_letter(value: Any, options: Sequence[str]) -> str:
    text = str(value).strip()
    match = _PAREN_LETTER.match(text)
    if match is None:
        if text in options:
            return chr(ord('A') + list(options).index(text))
        raise ConfigError(f'answer {value!r} is not an option letter')
    return match.group(1).upper()


def _undecoded_images(dataset: Any, columns: Sequence[str]) -> Any:
    from datasets import Image

    for column in columns:
        feature = dataset.features.get(column)
        if isinstance(feature, Image) and feature.decode:
            dataset = dataset.cast_column(column, Image(decode=False))
    return dataset


def load_viewpoint_items(
    paths: Sequence[str | os.PathLike[str]], *, split: str | None = 'test', limit: int | None = None
) -> list[EvalItem]:
    """Items of the viewpoint dataset's ``split`` (first ``limit`` rows).

    Raises:
        ConfigError: see :func:`actial_ros.training.fine_tuning.data.load_viewpoint`.
    """
    dataset = load_viewpoint(paths, split=split)
    if limit is not None:
        dataset = dataset.select(range(min(limit, len(dataset))))
    return [
        EvalItem(
            benchmark='viewpoint',
            category=str(row['question_type']),
            item_id=str(row['id']),
            question=str(row['question']),
            images=(image_bytes(row['image_1']), image_bytes(row['image_2'])),
            answer=str(row['answer']).strip().upper(),
            letters=_letters(len(row['options'])),
        )
        for row in dataset
    ]


def load_cv_bench(paths: Sequence[str | os.PathLike[str]], *, limit: int | None = None) -> list[EvalItem]:
    """CV-Bench items from its parquet file(s).

    Raises:
        ConfigError: no files or missing columns.
    """
    dataset = load_parquet(paths)
    missing = {'image', 'question', 'choices', 'answer', 'task'} - set(dataset.column_names)
    if missing:
        raise ConfigError(f'not a CV-Bench parquet file; missing columns: {", ".join(sorted(missing))}')
    dataset = _undecoded_images(dataset, ['image'])
    if limit is not None:
        dataset = dataset.select(range(min(limit, len(dataset))))
    items = []
    for i, row in enumerate(dataset):
        options = [str(c) for c in row['choices']]
        extra = tuple((key, str(row[key])) for key in ('type', 'source') if row.get(key) is not None)
        items.append(
            EvalItem(
                benchmark='cv_bench',
                category=str(row['task']),
                item_id=str(row.get('idx', i)),
                question=multiple_choice_text(str(row['question']), options),
                images=(image_bytes(row['image']),),
                answer=_answer_letter(row['answer'], options),
                letters=_letters(len(options)),
                extra=extra,
            )
        )
    return items


def load_blink(
    root: str | os.PathLike[str],
    *,
    subtasks: Sequence[str] = BLINK_SPATIAL_SUBTASKS,
    split: str = 'val',
    limit: int | None = None,
) -> list[EvalItem]:
    """BLINK items of ``subtasks`` from ``root/<subtask>/<split>-*.parquet`` (first ``limit`` per subtask).

    Raises:
        ConfigError: a subtask folder or its split files are missing.
    """
    items: list[EvalItem] = []
    for subtask in subtasks:
        folder = Path(root) / subtask
        files = sorted(folder.glob(f'{split}-*.parquet')) + sorted(folder.glob(f'{split}.parquet'))
        if not files:
            raise ConfigError(f'BLINK: no {split}-*.parquet in {folder}')
        image_columns = [f'image_{k}' for k in range(1, 5)]
        dataset = _undecoded_images(load_parquet([str(f) for f in files]), image_columns)
        if limit is not None:
            dataset = dataset.select(range(min(limit, len(dataset))))
        for i, row in enumerate(dataset):
            options = [str(c) for c in row['choices']]
            images = tuple(image_bytes(row[c]) for c in image_columns if row.get(c) is not None)
            items.append(
                EvalItem(
                    benchmark='blink',
                    category=subtask,
                    item_id=str(row.get('idx', f'{subtask}_{i}')),
                    question=multiple_choice_text(str(row['question']), options),
                    images=images,
                    answer=_answer_letter(row['answer'], options),
                    letters=_letters(len(options)),
                )
            )
    return items


def _tsv_images(cell: str) -> tuple[bytes, ...]:
    text = cell.strip()
    if text.startswith('['):
        try:
            values = json.loads(text)
        except json.JSONDecodeError:
            values = ast.literal_eval(text)
        return tuple(base64.b64decode(v) for v in values)
    return (base64.b64decode(text),)


def load_vlmeval_tsv(
    path: str | os.PathLike[str], *, benchmark: str = '3dsrbench', limit: int | None = None
) -> list[EvalItem]:
    """Multiple-choice items of a VLMEvalKit TSV file (3DSRBench's layout; see the module docstring).

    Raises:
        ConfigError: unreadable file, missing columns, or an item without options or images.
    """
    (file,) = resolve_files([path], suffix='.tsv')
    csv.field_size_limit(sys.maxsize)
    items: list[EvalItem] = []
    with open(file, encoding='utf-8', newline='') as handle:
        reader = csv.DictReader(handle, delimiter='\t')
        fields = set(reader.fieldnames or [])
        missing = {'index', 'question', 'answer', 'image', 'A'} - fields
        if missing:
            raise ConfigError(f'{file}: not a VLMEvalKit MCQ TSV; missing columns: {", ".join(sorted(missing))}')
        option_columns = [c for c in (chr(ord('A') + i) for i in range(26)) if c in fields]
        for row in reader:
            if limit is not None and len(items) >= limit:
                break
            options = []
            for column in option_columns:
                value = (row.get(column) or '').strip()
                if not value or value.lower() == 'nan':
                    break
                options.append(value)
            if not options or not (row.get('image') or '').strip():
                raise ConfigError(f'{file}: item {row.get("index")} has no options or no image')
            question = str(row['question'])
            hint = (row.get('hint') or '').strip()
            if hint and hint.lower() != 'nan':
                question = f'{hint}\n{question}'
            items.append(
                EvalItem(
                    benchmark=benchmark,
                    category=(row.get('category') or benchmark).strip() or benchmark,
                    item_id=str(row['index']),
                    question=multiple_choice_text(question, options),
                    images=_tsv_images(row['image']),
                    answer=_answer_letter(row['answer'], options),
                    letters=_letters(len(options)),
                )
            )
    return items
