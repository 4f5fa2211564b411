"""The Actial viewpoint question set: templates, shuffled options and the answer letter.

Three question types (``../shared/notes/ACTIAL.md``), each a 3-option multiple choice with the options
``left``, ``right`` and ``none`` (no movement / no rotation) shuffled by a seeded RNG. Prompts start by
stating that the object did not move between the two photos and end by asking for the option letter
only. The ground truth comes from :func:`actial_ros.geometry.viewpoint_label`.
"""

from __future__ import annotations

import random
import string
from collections.abc import Sequence
from dataclasses import dataclass

from actial_ros.enums import QuestionType, ViewpointLabel
from actial_ros.errors import ConfigError

__all__ = [
    'CLOSING_INSTRUCTION',
    'DEFAULT_SYSTEM_PROMPT',
    'OPTION_LETTERS',
    'PREAMBLE',
    'Question',
    'format_options',
    'make_question',
    'parse_question_types',
    'question_text',
]

OPTION_LETTERS: tuple[str, ...] = ('A', 'B', 'C')
"""Letters of the three options, in display order."""

DEFAULT_SYSTEM_PROMPT = (
    'You are Actial, a helpful assistant with strong spatial reasoning. You are given images taken by a '
    'camera and a question about them. First think about the question step by step inside '
    '<think> </think> tags, then give the final answer inside <answer> </answer> tags, i.e. '
    '<think> reasoning process here </think> <answer> answer here </answer>. For a multiple-choice '
    'question the answer is the option letter only.'
)
"""Our default system prompt. It states the same tag contract as the paper's evaluation prompt;
a checkpoint answers best with the prompt it was trained with, so every component takes the system
prompt as a configuration value."""

PREAMBLE = (
    'The two images were taken by the same camera, first image then second image. '
    'The object in them did not move between the two photos; only the camera did.'
)
"""The statement every viewpoint question starts with (the core's three types and training's yaw-bin probe)."""

_STEMS: dict[QuestionType, str] = {
    QuestionType.EGO_TRANSLATION: (
        "From the camera's perspective, in which horizontal direction did the camera move between the "
        'first and the second image?'
    ),
    QuestionType.OBJECT_TRANSLATION: (
        "From the object's perspective (as the object would see it, facing the camera), in which "
        'horizontal direction did the camera move between the first and the second image?'
    ),
    QuestionType.ROTATION: (
        "From the camera's perspective, in which direction did the camera rotate (turn about its "
        'vertical axis) between the first and the second image?'
    ),
}

_OPTION_TEXT: dict[QuestionType, dict[ViewpointLabel, str]] = {
    QuestionType.EGO_TRANSLATION: {
        ViewpointLabel.LEFT: 'The camera moved to the left',
        ViewpointLabel.RIGHT: 'The camera moved to the right',
        ViewpointLabel.NONE: 'The camera did not move',
    },
    QuestionType.OBJECT_TRANSLATION: {
        ViewpointLabel.LEFT: "The camera moved to the object's left",
        ViewpointLabel.RIGHT: "The camera moved to the object's right",
        ViewpointLabel.NONE: 'The camera did not move',
    },
    QuestionType.ROTATION: {
        ViewpointLabel.LEFT: 'The camera rotated to the left',
        ViewpointLabel.RIGHT: 'The camera rotated to the right',
        ViewpointLabel.NONE: 'The camera did not rotate',
    },
}

CLOSING_INSTRUCTION = "Answer with the option's letter from the given choices directly."
"""The last line of every multiple-choice prompt of the project (viewpoint questions, training's prompts,
evaluation): the instruction of the paper's multiple-choice evaluation."""


@dataclass(frozen=True, slots=True)
class Question:
    """One multiple-choice viewpoint question.

    Attributes:
        question_type: which of the three types.
        text: the full user prompt (preamble, stem, lettered options, closing instruction).
        options: option texts in display order (letters :data:`OPTION_LETTERS`).
        option_labels: the label each option stands for, in display order.
        truth: ground-truth label, or ``None`` when unknown (e.g. no odometry).
    """

    question_type: QuestionType
    text: str
    options: tuple[str, ...]
    option_labels: tuple[ViewpointLabel, ...]
    truth: ViewpointLabel | None

    @property
    def answer_letter(self) -> str | None:
        """Letter of the correct option, or ``None`` when the truth is unknown."""
        if self.truth is None:
            return None
        return OPTION_LETTERS[self.option_labels.index(self.truth)]

    def label_for_letter(self, letter: str | None) -> ViewpointLabel | None:
        """Label an option letter stands for (case-insensitive); ``None`` for ``None`` or an unknown letter."""
        if letter is None:
            return None
        letter = letter.strip().upper()
        if letter not in OPTION_LETTERS[: len(self.option_labels)]:
            return None
        return self.option_labels[OPTION_LETTERS.index(letter)]

    def letter_for_label(self, label: ViewpointLabel) -> str:
        """Letter of the option that stands for ``label``."""
        return OPTION_LETTERS[self.option_labels.index(label)]


def format_options(options: Sequence[str]) -> str:
    """Lettered option lines, ``'A. ...\\nB. ...'``, letters A to Z in display order (the viewpoint questions use
    the first three, :data:`OPTION_LETTERS`).

    Raises:
        ValueError: no option, or more than 26.
    """
    if not options or len(options) > len(string.ascii_uppercase):
        raise ValueError(f'a multiple-choice question needs 1 to 26 options, got {len(options)}')
    return '\n'.join(f'{letter}. {text}' for letter, text in zip(string.ascii_uppercase, options, strict=False))


def question_text(stem: str, options: Sequence[str]) -> str:
    """A multiple-choice question's whole text: :data:`PREAMBLE`, the ``stem``, the lettered ``options``
    (:func:`format_options`) and :data:`CLOSING_INSTRUCTION`, one per line (the layout of every viewpoint
    question, the node's and the dataset's).

    Raises:
        ValueError: as :func:`format_options`.
    """
    return f'{PREAMBLE}\n{stem}\n{format_options(options)}\n{CLOSING_INSTRUCTION}'


def make_question(
    question_type: QuestionType | str,
    truth: ViewpointLabel | str | None,
    rng: random.Random,
) -> Question:
    """Build one question with its options shuffled by ``rng``.

    Args:
        question_type: ``ego_translation``, ``object_translation`` or ``rotation``.
        truth: ground-truth label (``left``/``right``/``none``), or ``None`` when unknown.
        rng: the seeded RNG that shuffles the options (one ``shuffle`` call per question), so a seed
            gives the same option order everywhere.

    Raises:
        ValueError: unknown question type or label.
    """
    kind = QuestionType(question_type)
    labels = [ViewpointLabel.LEFT, ViewpointLabel.RIGHT, ViewpointLabel.NONE]
    rng.shuffle(labels)
    texts = tuple(_OPTION_TEXT[kind][label] for label in labels)
    text = question_text(_STEMS[kind], texts)
    return Question(
        question_type=kind,
        text=text,
        options=texts,
        option_labels=tuple(labels),
        truth=None if truth is None else ViewpointLabel(truth),
    )


def parse_question_types(values: Sequence[str]) -> tuple[QuestionType, ...]:
    """Validate a list of question type identifiers (duplicates removed, order kept).

    Raises:
        ConfigError: empty list or an unknown identifier.
    """
    result: list[QuestionType] = []
    for value in values:
        try:
            kind = QuestionType(value.strip())
        except ValueError:
            known = ', '.join(t.value for t in QuestionType)
            raise ConfigError(f'unknown question type {value!r}; known: {known}') from None
        if kind not in result:
            result.append(kind)
    if not result:
        raise ConfigError('at least one question type is required')
    return tuple(result)
