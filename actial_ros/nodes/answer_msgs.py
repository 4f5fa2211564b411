"""Answer records (:class:`~actial_ros.records.AnswerRecord`, :class:`~actial_ros.records.AskRecord`) to and from
``actial_ros_msgs/ViewpointAnswer`` messages.

The engine (:mod:`actial_ros.reasoner`) stays ROS-free and emits typed records
(:func:`actial_ros.records.answer_record`, :func:`actial_ros.records.ask_record`); the node turns each into a
message for ``~/answers`` and the action result, and consumers that want the record back (the demo's JSONL, the
tests) use the inverse. The round trip keeps every field the message carries; ``usage`` keeps ``prompt_tokens`` and
``completion_tokens`` only. Optional record values (``None``) travel as empty strings, ``has_*`` flags,
``scored`` and ``latency_s = -1``, as the message documents.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from actial_ros.enums import AnswerStatus, QuestionType, ViewpointLabel
from actial_ros.message_fields import ns_to_stamp, stamp_to_ns
from actial_ros.records import AnswerRecord, AskRecord, Record
from actial_ros_msgs.msg import ViewpointAnswer

__all__ = ['answer_msg_to_record', 'record_to_answer_msg']


def _set_time(time_msg: Any, stamp_ns: int | None) -> None:
    sec, nanosec = ns_to_stamp(int(stamp_ns or 0))
    time_msg.sec, time_msg.nanosec = sec, nanosec


def _finite(value: Any, default: float) -> float:
    if value is None:
        return default
    number = float(value)
    return number if math.isfinite(number) else default


def _count(usage: Mapping[str, Any], key: str) -> int:
    value = usage.get(key)
    return int(value) if isinstance(value, (int, float)) and 0 <= value < 2**32 else 0


def record_to_answer_msg(record: Record, *, stamp_ns: int = 0) -> ViewpointAnswer:
    """A typed answer from an answer record (a viewpoint answer or an ask).

    Args:
        record: :func:`actial_ros.records.answer_record` (viewpoint) or :func:`actial_ros.records.ask_record`.
        stamp_ns: ``header.stamp`` (ns): when the answer was produced.
    """
    msg = ViewpointAnswer()
    _set_time(msg.header.stamp, stamp_ns)
    msg.kind = record.kind
    msg.id = record.id
    if isinstance(record, AskRecord):
        stamps, cameras, names = list(record.stamps), list(record.cameras), list(record.frames)
    else:
        msg.pair_id = record.pair_id
        stamps = [record.stamp_1, record.stamp_2]
        cameras = [record.camera_1, record.camera_2]
        names = [record.frame_1, record.frame_2]
    msg.frame_count = min(len(stamps), 2)
    if stamps:
        _set_time(msg.stamp_1, stamps[0])
        msg.camera_1 = cameras[0] if cameras else ''
        msg.frame_name_1 = names[0] if names else ''
    if len(stamps) > 1:
        _set_time(msg.stamp_2, stamps[1])
        msg.camera_2 = cameras[1] if len(cameras) > 1 else ''
        msg.frame_name_2 = names[1] if len(names) > 1 else ''
    msg.question = record.question
    msg.raw_text = record.raw_text
    msg.status = record.status.value
    msg.reason = record.reason or ''
    msg.latency_s = _finite(record.latency_s, -1.0)
    msg.backend = record.backend
    msg.prompt_tokens = _count(record.usage, 'prompt_tokens')
    msg.completion_tokens = _count(record.usage, 'completion_tokens')
    if isinstance(record, AskRecord):
        return msg
    msg.question_type = record.question_type.value
    msg.options = list(record.options)
    msg.option_labels = [label.value for label in record.option_labels]
    msg.answer_letter = record.answer_letter or ''
    msg.answer = '' if record.answer is None else record.answer.value
    msg.has_truth = record.truth is not None
    msg.truth = '' if record.truth is None else record.truth.value
    msg.truth_letter = record.truth_letter or ''
    msg.scored = record.correct is not None
    msg.correct = bool(record.correct)
    msg.has_relative_pose = record.yaw_deg is not None
    msg.yaw_deg = _finite(record.yaw_deg, 0.0)
    msg.pitch_deg = _finite(record.pitch_deg, 0.0)
    msg.roll_deg = _finite(record.roll_deg, 0.0)
    if record.t12 is not None:
        msg.t12.x, msg.t12.y, msg.t12.z = (_finite(v, 0.0) for v in record.t12)
    return msg


def _or_none(text: str) -> str | None:
    return text or None


def answer_msg_to_record(msg: ViewpointAnswer) -> Record:
    """The answer record a typed answer carries (the inverse of :func:`record_to_answer_msg`).

    Raises:
        ValueError: a viewpoint answer whose question type, labels or status are none of the known values.
    """
    usage = {
        key: int(value)
        for key, value in (('prompt_tokens', msg.prompt_tokens), ('completion_tokens', msg.completion_tokens))
        if value
    }
    latency = None if msg.latency_s < 0 else float(msg.latency_s)
    if msg.kind == ViewpointAnswer.KIND_ASK:
        count = int(msg.frame_count)
        frames = [
            (stamp_to_ns(msg.stamp_1), msg.camera_1, msg.frame_name_1),
            (stamp_to_ns(msg.stamp_2), msg.camera_2, msg.frame_name_2),
        ][:count]
        return AskRecord(
            id=msg.id,
            question=msg.question,
            stamps=tuple(stamp for stamp, _, _ in frames),
            cameras=tuple(camera for _, camera, _ in frames),
            frames=tuple(name for _, _, name in frames),
            raw_text=msg.raw_text,
            status=AnswerStatus(msg.status),
            reason=_or_none(msg.reason),
            latency_s=latency,
            backend=msg.backend,
            usage=usage,
        )
    relative = msg.has_relative_pose
    return AnswerRecord(
        id=msg.id,
        pair_id=int(msg.pair_id),
        camera_1=msg.camera_1,
        camera_2=msg.camera_2,
        stamp_1=stamp_to_ns(msg.stamp_1),
        stamp_2=stamp_to_ns(msg.stamp_2),
        frame_1=msg.frame_name_1,
        frame_2=msg.frame_name_2,
        question_type=QuestionType(msg.question_type),
        question=msg.question,
        options=tuple(msg.options),
        option_labels=tuple(ViewpointLabel(label) for label in msg.option_labels),
        raw_text=msg.raw_text,
        answer_letter=_or_none(msg.answer_letter),
        answer=ViewpointLabel(msg.answer) if msg.answer else None,
        status=AnswerStatus(msg.status),
        reason=_or_none(msg.reason),
        truth=ViewpointLabel(msg.truth) if msg.has_truth else None,
        truth_letter=_or_none(msg.truth_letter),
        correct=bool(msg.correct) if msg.scored else None,
        yaw_deg=float(msg.yaw_deg) if relative else None,
        pitch_deg=float(msg.pitch_deg) if relative else None,
        roll_deg=float(msg.roll_deg) if relative else None,
        t12=(float(msg.t12.x), float(msg.t12.y), float(msg.t12.z)) if relative else None,
        latency_s=latency,
        backend=msg.backend,
        usage=usage,
    )
