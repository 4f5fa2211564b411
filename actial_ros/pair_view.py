"""A pair and its answer drawn as one image, for people to look at (ROS-free; OpenCV only).

Used by the node's ``~/pair_image`` topic and the demo's HTML report. Layout: the two frames side by
side (frame 1 left, frame 2 right, each scaled to :data:`PANEL_HEIGHT` pixels high, keeping its aspect
ratio), separated by a :data:`GAP`-pixel dark bar, above a text band: the question type and the question,
the answer, the truth from odometry, and the verdict. The band's border colour tells the verdict at a
glance: :data:`CORRECT_RGB`, :data:`WRONG_RGB`, or :data:`UNSCORED_RGB` (abstained, error, no truth).
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from actial_ros.errors import ImageError
from actial_ros.records import AnswerRecord

__all__ = [
    'CORRECT_RGB',
    'GAP',
    'PANEL_HEIGHT',
    'UNSCORED_RGB',
    'WRONG_RGB',
    'render_pair_view',
    'verdict_colour',
]

RgbImage = npt.NDArray[np.uint8]

PANEL_HEIGHT = 240
"""Height (pixels) of each frame in the view."""
GAP = 8
"""Width (pixels) of the bar between the two frames."""
_TEXT_LINE = 22
_BORDER = 6
CORRECT_RGB = (40, 170, 60)
WRONG_RGB = (200, 40, 40)
UNSCORED_RGB = (128, 128, 128)


def verdict_colour(record: AnswerRecord) -> tuple[int, int, int]:
    """:data:`CORRECT_RGB`, :data:`WRONG_RGB` or :data:`UNSCORED_RGB` for an answer record's ``correct``."""
    correct = record.correct
    if correct is None:
        return UNSCORED_RGB
    return CORRECT_RGB if correct else WRONG_RGB


def _panel(image: RgbImage) -> RgbImage:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or image.size == 0:
        raise ImageError(f'expected (H, W, 3) uint8 RGB frames, got {image.shape} {image.dtype}')
    height, width = image.shape[:2]
    new_width = max(1, round(width * PANEL_HEIGHT / height))
    interpolation = cv2.INTER_AREA if height > PANEL_HEIGHT else cv2.INTER_NEAREST
    return np.ascontiguousarray(cv2.resize(image, (new_width, PANEL_HEIGHT), interpolation=interpolation))


def _lines(record: AnswerRecord) -> list[str]:
    answer, letter = record.answer, record.answer_letter
    answered = f'{letter} ({answer.value})' if answer else record.status.value
    truth = record.truth
    correct = record.correct
    verdict = 'not scored' if correct is None else ('CORRECT' if correct else 'WRONG')
    yaw = record.yaw_deg
    yaw_text = '' if yaw is None else f'   yaw {float(yaw):+.1f} deg'
    return [
        f'{record.question_type.value}: {record.question[:110]}',
        f'answer: {answered}   truth: {"-" if truth is None else truth.value}{yaw_text}',
        f'{verdict}   backend: {record.backend or "-"}',
    ]


def render_pair_view(image_1: RgbImage, image_2: RgbImage, record: AnswerRecord) -> RgbImage:
    """Draw a pair with its question, answer, truth and verdict.

    Args:
        image_1, image_2: the two frames, ``(H, W, 3)`` uint8 RGB (any sizes).
        record: the answer record (:func:`actial_ros.records.answer_record`).

    Returns:
        ``(PANEL_HEIGHT + text band, W1' + GAP + W2', 3)`` uint8 RGB: frame 1 occupies rows
        ``[0, PANEL_HEIGHT)`` and columns ``[0, W1')``, frame 2 starts at column ``W1' + GAP``
        (``W'``: the width scaled to :data:`PANEL_HEIGHT`).

    Raises:
        ImageError: a frame that is not ``(H, W, 3)`` uint8.
    """
    left, right = _panel(image_1), _panel(image_2)
    width = left.shape[1] + GAP + right.shape[1]
    lines = _lines(record)
    band = _TEXT_LINE * len(lines) + 2 * _BORDER
    canvas = np.full((PANEL_HEIGHT + band, width, 3), 24, dtype=np.uint8)
    canvas[:PANEL_HEIGHT, : left.shape[1]] = left
    canvas[:PANEL_HEIGHT, left.shape[1] + GAP :] = right
    colour = verdict_colour(record)
    canvas[PANEL_HEIGHT:, :] = colour
    canvas[PANEL_HEIGHT + _BORDER : -_BORDER, _BORDER:-_BORDER] = 24
    for k, text in enumerate(lines):
        y = PANEL_HEIGHT + _BORDER + _TEXT_LINE * (k + 1) - 6
        cv2.putText(canvas, text, (_BORDER + 6, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (235, 235, 235), 1, cv2.LINE_AA)
    return canvas
