"""GRPO rewards of the paper: format and accuracy, weighted 0.5 / 0.5.

Source: ../shared/notes/ACTIAL.md (the official verl reward of warmsnow-sh/Actial). Both rewards use the one
parsing implementation of the project, :mod:`actial_ros.answers`:

* format: 1.0 when the WHOLE stripped completion is one ``<think>`` block then one ``<answer>`` block
  (:func:`~actial_ros.answers.matches_output_format`: case-insensitive tags, whitespace between and
  around), else 0.0.
* accuracy: 1.0 when the stripped text of the FIRST ``<answer>`` block
  (:func:`~actial_ros.answers.extract_answer_block`) equals the stripped ground truth exactly
  (case-sensitive, as the official reward), else 0.0. No ``<answer>`` block gives 0.0.

The functions follow TRL's reward-function protocol: ``completions`` is a list of completions, each either
a string (standard format) or a list of messages whose last one is the assistant's (conversational format);
dataset columns arrive as keyword arguments (the ground truth in ``solution``); the return value is one float
per completion.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from actial_ros.answers import extract_answer_block, matches_output_format

__all__ = [
    'DEFAULT_REWARD_WEIGHTS',
    'accuracy_reward',
    'completion_text',
    'format_reward',
    'reward_functions',
    'score_completion',
]

DEFAULT_REWARD_WEIGHTS: tuple[float, float] = (0.5, 0.5)
"""Weights of (format, accuracy) in the total reward (paper: reward = 0.5 * format + 0.5 * accuracy)."""


def completion_text(completion: Any) -> str:
    """The generated text of one completion in TRL's standard (``str``) or conversational (messages) format.

    For messages, the content of the last message is used; a content given as a list of parts
    (``[{'type': 'text', 'text': ...}]``) is joined.

    Raises:
        TypeError: neither a string nor a non-empty list of message dicts.
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence) and completion and isinstance(completion[-1], dict):
        content = completion[-1].get('content', '')
        if isinstance(content, str):
            return content
        if isinstance(content, Sequence):
            return ''.join(str(part.get('text', '')) for part in content if isinstance(part, dict))
        return '' if content is None else str(content)
    raise TypeError(f'a completion must be a string or a list of messages, got {type(completion).__name__}')


def format_reward(completions: Sequence[Any], **kwargs: Any) -> list[float]:
    """1.0 per completion whose whole text is ``<think>...</think> <answer>...</answer>``, else 0.0."""
    return [1.0 if matches_output_format(completion_text(c)) else 0.0 for c in completions]


def accuracy_reward(completions: Sequence[Any], solution: Sequence[str], **kwargs: Any) -> list[float]:
    """1.0 per completion whose first ``<answer>`` block equals its ground truth exactly (both stripped).

    Args:
        completions: the completions (see :func:`completion_text`).
        solution: the ground-truth answer of each completion (the dataset's ``solution`` column, repeated by
            TRL for each generation), e.g. an option letter.

    Raises:
        ValueError: ``solution`` and ``completions`` differ in length.
    """
    if len(solution) != len(completions):
        raise ValueError(f'{len(completions)} completions but {len(solution)} solutions')
    rewards = []
    for completion, truth in zip(completions, solution, strict=True):
        answer = extract_answer_block(completion_text(completion))
        rewards.append(1.0 if answer is not None and answer == str(truth).strip() else 0.0)
    return rewards


def reward_functions() -> list[Any]:
    """The reward functions in the order of :data:`DEFAULT_REWARD_WEIGHTS`: ``[format_reward, accuracy_reward]``."""
    return [format_reward, accuracy_reward]


def score_completion(text: str, solution: str, weights: Sequence[float] = DEFAULT_REWARD_WEIGHTS) -> float:
    """The weighted total reward of one completion: ``w_format * format + w_accuracy * accuracy``.

    Raises:
        ValueError: ``weights`` does not hold exactly two numbers.
    """
    if len(weights) != 2:
        raise ValueError(f'weights must be (format, accuracy), got {list(weights)}')
    fmt = format_reward([text])[0]
    acc = accuracy_reward([text], [solution])[0]
    return float(weights[0]) * fmt + float(weights[1]) * acc
