"""Dataset questions of one pair: the three Actial types (from :mod:`actial_ros.questions`) and the
optional yaw-bin probe, in one row-ready form.

The yaw-bin probe ("direction plus one of six rotation-angle bins", ACTIAL.md) asks in which direction
and by how much the camera turned. Its options are all 12 combinations of direction (left, right) and
bin (:func:`actial_ros.training.dataset.pair_selection.yaw_bin_edges`: six equal bins over the pair range),
shuffled by the row's seeded RNG, lettered ``A`` to ``L``; the labels are ``left_1`` .. ``left_6`` and ``right_1`` ..
``right_6`` (bin numbers 1-based, 1 = smallest angle). Its prompt starts with the same statement as
the core questions (the object did not move) and ends by asking for the letter only.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass

from actial_ros.enums import QuestionType, ViewpointLabel
from actial_ros.geometry import LabelThresholds, RelativePose, viewpoint_label
from actial_ros.questions import PREAMBLE, Question, make_question, question_text

__all__ = [
    'YAW_BIN_QUESTION',
    'RowQuestion',
    'make_row_question',
    'make_yaw_bin_question',
    'preamble',
    'yaw_bin_label',
]

YAW_BIN_QUESTION = 'yaw_bin'
"""``question_type`` of the yaw-bin probe."""

_YAW_BIN_STEM = (
    "From the camera's perspective, in which direction did the camera rotate (turn about its vertical "
    'axis) between the first and the second image, and by how many degrees?'
)


def preamble() -> str:
    """The statement every question starts with (:data:`actial_ros.questions.PREAMBLE`): the probe words it
    exactly as the core questions do."""
    return PREAMBLE


@dataclass(frozen=True, slots=True)
class RowQuestion:
    """One multiple-choice question as stored in a dataset row.

    Attributes:
        question_type: ``ego_translation``, ``object_translation``, ``rotation`` or ``yaw_bin``.
        text: the full user prompt.
        options: option texts in display order (letters A, B, C, ...).
        option_labels: the label each option stands for.
        answer: the correct option letter.
        answer_label: the correct label (``left``/``right``/``none``; ``left_2`` etc. for ``yaw_bin``).
    """

    question_type: str
    text: str
    options: tuple[str, ...]
    option_labels: tuple[str, ...]
    answer: str
    answer_label: str

    @property
    def letters(self) -> str:
        """The valid option letters, e.g. ``'ABC'``."""
        return string.ascii_uppercase[: len(self.options)]

    @classmethod
    def from_question(cls, question: Question) -> RowQuestion:
        """From a core question with a known truth.

        Raises:
            ValueError: the question has no truth.
        """
        if question.truth is None or question.answer_letter is None:
            raise ValueError('a dataset question needs its ground truth')
        return cls(
            question_type=question.question_type.value,
            text=question.text,
            options=question.options,
            option_labels=tuple(label.value for label in question.option_labels),
            answer=question.answer_letter,
            answer_label=question.truth.value,
        )


def yaw_bin_label(yaw_deg: float, edges: tuple[float, ...]) -> str:
    """``left_k`` / ``right_k`` (k 1-based) of a yaw in degrees over the bin ``edges``.

    Raises:
        ValueError: ``|yaw|`` outside the bins, or zero.
    """
    from actial_ros.training.dataset.pair_selection import yaw_bin_index

    index = yaw_bin_index(abs(yaw_deg), edges)
    if index is None or yaw_deg == 0.0:
        raise ValueError(f'yaw {yaw_deg:.3f} deg is outside the yaw bins [{edges[0]:g}, {edges[-1]:g}]')
    return f'{"right" if yaw_deg > 0 else "left"}_{index + 1}'


def _bin_text(direction: str, index: int, edges: tuple[float, ...]) -> str:
    low, high = edges[index], edges[index + 1]
    return f'The camera rotated to the {direction} by {low:.1f} to {high:.1f} degrees'


def make_yaw_bin_question(pose: RelativePose, edges: tuple[float, ...], rng: random.Random) -> RowQuestion:
    """The yaw-bin probe for a pair (options shuffled by ``rng``, one ``shuffle`` call).

    Raises:
        ValueError: ``|yaw|`` outside the bins.
    """
    truth = yaw_bin_label(pose.yaw_deg, edges)
    labels = [f'{direction}_{k + 1}' for direction in ('left', 'right') for k in range(len(edges) - 1)]
    rng.shuffle(labels)
    options = tuple(_bin_text(label.split('_')[0], int(label.split('_')[1]) - 1, edges) for label in labels)
    text = question_text(_YAW_BIN_STEM, options)
    return RowQuestion(
        question_type=YAW_BIN_QUESTION,
        text=text,
        options=options,
        option_labels=tuple(labels),
        answer=string.ascii_uppercase[labels.index(truth)],
        answer_label=truth,
    )


def make_row_question(
    question_type: str, pose: RelativePose, thresholds: LabelThresholds, edges: tuple[float, ...], rng: random.Random
) -> RowQuestion:
    """The question of one type for a pair, with its truth from :func:`actial_ros.geometry.viewpoint_label`.

    Raises:
        ValueError: unknown question type, or a yaw outside the bins for ``yaw_bin``.
    """
    if question_type == YAW_BIN_QUESTION:
        return make_yaw_bin_question(pose, edges, rng)
    kind = QuestionType(question_type)
    truth: ViewpointLabel = viewpoint_label(kind, pose, thresholds)
    return RowQuestion.from_question(make_question(kind, truth, rng))
