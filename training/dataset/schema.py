"""Column schema of the viewpoint dataset (Viewpoint-100K layout) shared by the builder, SFT, GRPO and
evaluation. One row is one multiple-choice question about one image pair.

Columns:
    id (str): unique row id, stable for a seed (``{source}/{object_id}/{i1}-{i2}/{question_type}``).
    source (str): ``KIND:PATH`` of the source the pair came from (llff, colmap, transforms, rosbag, objects).
    object_id (str): the object (capture) the pair belongs to; the train/test split is by object.
    split (str): ``train`` or ``test``.
    image_1, image_2 (image): JPEG bytes, at most 960x540 (``datasets.Image`` feature).
    image_1_name, image_2_name (str): file names in the capture, or bag stamps (ns) as text.
    question_type (str): ``ego_translation``, ``object_translation``, ``rotation`` or ``yaw_bin``.
    question (str): the full user prompt.
    options (list[str]): option texts in display order (letters A, B, C, ...).
    option_labels (list[str]): the label each option stands for.
    answer (str): the correct option letter.
    answer_label (str): ``left``/``right``/``none`` (``yaw_bin``: ``left_2`` etc.).
    yaw_deg, pitch_deg, roll_deg (float64): exact relative rotation, degrees (CONVENTIONS.md).
    t12 (list[float64], 3): camera 2's centre in camera 1's optical frame, source length unit.
    cot (str | None): pseudo chain-of-thought in ``<think>..</think> <answer>..</answer>`` format.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from actial_ros.training.dataset.viewpoint import RowQuestion

__all__ = ['COLUMNS', 'features', 'viewpoint_row']

COLUMNS: tuple[str, ...] = (
    'id',
    'source',
    'object_id',
    'split',
    'image_1',
    'image_2',
    'image_1_name',
    'image_2_name',
    'question_type',
    'question',
    'options',
    'option_labels',
    'answer',
    'answer_label',
    'yaw_deg',
    'pitch_deg',
    'roll_deg',
    't12',
    'cot',
)
"""Column names, in order."""


def features() -> Any:
    """The ``datasets.Features`` of a viewpoint dataset (imports ``datasets`` lazily).

    Raises:
        ImportError: ``datasets`` is not installed (``pip install actial_ros[train]``).
    """
    from datasets import Features, Image, Sequence, Value

    return Features(
        {
            'id': Value('string'),
            'source': Value('string'),
            'object_id': Value('string'),
            'split': Value('string'),
            'image_1': Image(),
            'image_2': Image(),
            'image_1_name': Value('string'),
            'image_2_name': Value('string'),
            'question_type': Value('string'),
            'question': Value('string'),
            'options': Sequence(Value('string')),
            'option_labels': Sequence(Value('string')),
            'answer': Value('string'),
            'answer_label': Value('string'),
            'yaw_deg': Value('float64'),
            'pitch_deg': Value('float64'),
            'roll_deg': Value('float64'),
            't12': Sequence(Value('float64'), length=3),
            'cot': Value('string'),
        }
    )


def viewpoint_row(
    *,
    row_id: str,
    source: str,
    object_id: str,
    split: str,
    image_1: bytes | None,
    image_2: bytes | None,
    image_1_name: str,
    image_2_name: str,
    question: RowQuestion,
    yaw_deg: float,
    pitch_deg: float,
    roll_deg: float,
    t12: Sequence[float],
    cot: str | None = None,
) -> dict[str, Any]:
    """One viewpoint row as a dict with exactly :data:`COLUMNS`, in order, ready for ``features()``.

    The one place writers (``build-viewpoint``'s shard writer, the benchmarks' synthetic rows, test data)
    spell a row; the column meanings are in this module's docstring.

    Args:
        row_id: the ``id`` column.
        image_1, image_2: JPEG bytes, or ``None`` for a dataset built without images.
        question: the multiple-choice question with its truth.
        yaw_deg, pitch_deg, roll_deg: relative rotation, degrees (CONVENTIONS.md).
        t12: camera 2's centre in camera 1's optical frame, 3 floats (source length unit).
        cot: pseudo chain-of-thought, or ``None``.

    Raises:
        ValueError: ``t12`` does not have 3 components.
    """
    if len(t12) != 3:
        raise ValueError(f't12 needs 3 components, got {len(t12)}')
    return {
        'id': row_id,
        'source': source,
        'object_id': object_id,
        'split': split,
        'image_1': None if image_1 is None else {'bytes': image_1, 'path': None},
        'image_2': None if image_2 is None else {'bytes': image_2, 'path': None},
        'image_1_name': image_1_name,
        'image_2_name': image_2_name,
        'question_type': question.question_type,
        'question': question.text,
        'options': list(question.options),
        'option_labels': list(question.option_labels),
        'answer': question.answer,
        'answer_label': question.answer_label,
        'yaw_deg': float(yaw_deg),
        'pitch_deg': float(pitch_deg),
        'roll_deg': float(roll_deg),
        't12': [float(v) for v in t12],
        'cot': cot,
    }
