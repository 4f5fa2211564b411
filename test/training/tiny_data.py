"""Helpers of the training tests: tiny images, viewpoint rows in the schema, SAT files, fast SFT settings."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from actial_ros.training.dataset.schema import viewpoint_row
from actial_ros.training.dataset.viewpoint import RowQuestion

from actial_ros.enums import QuestionType, ViewpointLabel
from actial_ros.imaging import encode_jpeg
from actial_ros.questions import make_question


def jpeg(seed: int, width: int = 64, height: int = 48) -> bytes:
    """A small deterministic JPEG: a colour gradient whose hue depends on ``seed``."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, size=3)
    x = np.linspace(0, 255, width, dtype=np.float64)[None, :, None]
    y = np.linspace(0, 255, height, dtype=np.float64)[:, None, None]
    image = (0.5 * base[None, None, :] + 0.25 * x + 0.25 * y) % 256
    return encode_jpeg(np.ascontiguousarray(image.astype(np.uint8)), 90)


def viewpoint_rows(count: int, *, split: str = 'train', cot_every: int = 2, seed: int = 0) -> list[dict[str, Any]]:
    """Rows in the viewpoint schema; every ``cot_every``-th row has a CoT (0: none)."""
    rng = random.Random(seed)
    kinds = list(QuestionType)
    labels = [ViewpointLabel.LEFT, ViewpointLabel.RIGHT, ViewpointLabel.NONE]
    rows = []
    for i in range(count):
        kind = kinds[i % len(kinds)]
        label = labels[(i // len(kinds)) % len(labels)]
        question = make_question(kind, label, rng)
        letter = question.answer_letter
        assert letter is not None
        cot = None
        if cot_every and i % cot_every == 0:
            cot = (
                f'<think> Step 1: two images of one object. Step 3: the camera moved {label.value}. </think> '
                f'<answer>{letter}</answer>'
            )
        rows.append(
            viewpoint_row(
                row_id=f'test:{split}/obj{i % 3}/{i}-{i + 1}/{kind.value}',
                source='llff:/tmp/capture',
                object_id=f'obj{i % 3}',
                split=split,
                image_1=jpeg(seed * 1000 + 2 * i),
                image_2=jpeg(seed * 1000 + 2 * i + 1),
                image_1_name=f'{2 * i:04d}.jpg',
                image_2_name=f'{2 * i + 1:04d}.jpg',
                question=RowQuestion.from_question(question),
                yaw_deg=30.0,
                pitch_deg=0.0,
                roll_deg=0.0,
                t12=(0.1, 0.0, 0.0),
                cot=cot,
            )
        )
    return rows


def write_viewpoint(path: Path, rows: Sequence[dict[str, Any]]) -> Path:
    """Write ``rows`` as one parquet shard with the schema's features; returns ``path``."""
    from actial_ros.training.dataset.schema import features
    from datasets import Dataset

    path.parent.mkdir(parents=True, exist_ok=True)
    Dataset.from_list(list(rows), features=features()).to_parquet(str(path))
    return path


def sft_settings(model: Path, data: Path, out: Path, **overrides: Any) -> Any:
    """SFT settings for a fast CPU run on the tiny model (constant high learning rate, no warm-up)."""
    from actial_ros.training.fine_tuning.sft import SftSettings

    values: dict[str, Any] = {
        'model': str(model),
        'data': [str(data)],
        'output_dir': str(out),
        'global_batch_size': 4,
        'per_device_batch_size': 4,
        'max_steps': 60,
        'warmup_steps': 0,
        'learning_rate': 3e-3,
        'lr_scheduler_type': 'constant',
        'logging_steps': 5,
        'save_steps': 1000,
        'gradient_checkpointing': False,
    }
    values.update(overrides)
    return SftSettings(**values)


def write_sat_array(path: Path) -> None:
    from datasets import Dataset, Features, Image, List, Value

    rows = [
        {
            'image_bytes': [{'bytes': jpeg(i), 'path': None}] * (1 + i % 2),
            'question': f'Is the sofa to the left of the lamp? ({i})',
            'answers': ['yes', 'no'],
            'question_type': 'obj_movement' if i % 2 else 'ego_movement',
            'correct_answer': 'no' if i % 2 else 'yes',
        }
        for i in range(6)
    ]
    features = Features(
        {
            'image_bytes': List(Image()),
            'question': Value('string'),
            'answers': List(Value('string')),
            'question_type': Value('string'),
            'correct_answer': Value('string'),
        }
    )
    Dataset.from_list(rows, features=features).to_parquet(str(path))
