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

from typing import Any

__all__ = ['COLUMNS', 'features']

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
