"""Answer records: the JSON-ready dicts the engine emits for every answer, a viewpoint question about a pair
(:func:`answer_record`) or a free-form ask (:func:`ask_record`). The node turns them into typed messages
(:mod:`actial_ros.nodes.answer_msgs`), the JSON mirror and the demo's answers file are these dicts as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from actial_ros.backends.base import BackendAnswer
from actial_ros.enums import AnswerStatus
from actial_ros.frame import Frame, Pair
from actial_ros.questions import Question

__all__ = ['answer_record', 'ask_record', 'internal_error_reason']

_MAX_REASON_CHARS = 500


def internal_error_reason(error: BaseException) -> str:
    """The ``reason`` of an answer that a bug broke: ``'internal error: <type>: <message>'``, at most 500
    characters (the traceback goes to the log, not the answer)."""
    return f'internal error: {type(error).__name__}: {error}'[:_MAX_REASON_CHARS]


def answer_record(
    pair: Pair,
    question: Question,
    reply: BackendAnswer | None,
    *,
    backend: str,
    error: str | None = None,
    latency_s: float | None = None,
) -> dict[str, Any]:
    """The JSON-ready answer record published on ``~/answers`` for one viewpoint question.

    Keys: ``kind`` ('viewpoint'), ``id``, ``pair_id``, ``camera_1``/``camera_2``, ``stamp_1``/``stamp_2``
    (header stamps, integer ns), ``frame_1``/``frame_2`` (names, may be empty), ``question_type``,
    ``question``, ``options``, ``option_labels``, ``raw_text``, ``answer_letter``, ``answer`` (label or
    None), ``status`` (see :class:`~actial_ros.scoring.AnswerStatus`), ``reason``, ``truth`` and
    ``truth_letter`` (from odometry; None without it), ``correct`` (None unless scored), ``yaw_deg``,
    ``pitch_deg``, ``roll_deg`` (degrees), ``t12`` (odometry length unit, camera 1 optical frame),
    ``latency_s`` (seconds, wall clock, retries included), ``backend``, ``usage`` (token counts).
    """
    letter = reply.letter if reply is not None else None
    label = question.label_for_letter(letter)
    if reply is None:
        status = AnswerStatus.ERROR
    elif reply.abstained:
        status = AnswerStatus.ABSTAINED
    elif label is None:
        status = AnswerStatus.UNPARSED
    else:
        status = AnswerStatus.ANSWERED
    truth = question.truth
    scored = truth is not None and status in (AnswerStatus.ANSWERED, AnswerStatus.UNPARSED)
    relative = pair.relative
    return {
        'kind': 'viewpoint',
        'id': f'{pair.pair_id}:{question.question_type.value}',
        'pair_id': pair.pair_id,
        'camera_1': pair.frame_1.camera_id,
        'camera_2': pair.frame_2.camera_id,
        'stamp_1': pair.frame_1.stamp_ns,
        'stamp_2': pair.frame_2.stamp_ns,
        'frame_1': pair.frame_1.name,
        'frame_2': pair.frame_2.name,
        'question_type': question.question_type.value,
        'question': question.text,
        'options': list(question.options),
        'option_labels': [label_.value for label_ in question.option_labels],
        'raw_text': reply.raw_text if reply is not None else '',
        'answer_letter': letter if label is not None else None,
        'answer': None if label is None else label.value,
        'status': status,
        'reason': error if reply is None else reply.reason,
        'truth': None if truth is None else truth.value,
        'truth_letter': question.answer_letter,
        'correct': (label == truth) if scored else None,
        'yaw_deg': None if relative is None else relative.yaw_deg,
        'pitch_deg': None if relative is None else relative.pitch_deg,
        'roll_deg': None if relative is None else relative.roll_deg,
        't12': None if relative is None else [float(v) for v in relative.translation],
        'latency_s': reply.latency_s if reply is not None else latency_s,
        'backend': reply.backend if reply is not None else backend,
        'usage': dict(reply.usage) if reply is not None else {},
    }


def ask_record(
    ask_id: str,
    prompt: str,
    frames: Sequence[Frame],
    reply: BackendAnswer | None,
    backend: str,
    error: str | None,
    latency_s: float | None = None,
) -> dict[str, Any]:
    """The record of a free-form ask: ``kind`` ``'ask'``, ``id``, ``question``, the ``stamps`` (ns),
    ``cameras`` and ``frames`` it was asked about, ``raw_text``, ``status`` (error when there is no
    ``reply``, else abstained or answered), ``reason``, ``latency_s``, ``backend`` and ``usage``."""
    if reply is None:
        status = AnswerStatus.ERROR
    elif reply.abstained:
        status = AnswerStatus.ABSTAINED
    else:
        status = AnswerStatus.ANSWERED
    return {
        'kind': 'ask',
        'id': ask_id,
        'question': prompt,
        'stamps': [frame.stamp_ns for frame in frames],
        'cameras': [frame.camera_id for frame in frames],
        'frames': [frame.name for frame in frames],
        'raw_text': reply.raw_text if reply is not None else '',
        'status': status,
        'reason': error if reply is None else reply.reason,
        'latency_s': reply.latency_s if reply is not None else latency_s,
        'backend': reply.backend if reply is not None else backend,
        'usage': dict(reply.usage) if reply is not None else {},
    }
