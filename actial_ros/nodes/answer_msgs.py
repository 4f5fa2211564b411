"""Answer records (the engine's dicts) to and from ``actial_ros_msgs/ViewpointAnswer`` messages.

The engine (:mod:`actial_ros.reasoner`) stays ROS-free and emits plain records
(:func:`actial_ros.records.answer_record`); the node turns each into a typed message for ``~/answers``
and the action result, and consumers that want the record back (the demo's JSONL, the tests) use the
inverse. The round trip keeps every field the message carries; ``usage`` keeps ``prompt_tokens`` and
``completion_tokens`` only. Optional record values (``None``) travel as empty strings, ``has_*`` flags,
``scored`` and ``latency_s = -1``, as the message documents.
"""

from __future__ import annotations

import math
from typing import Any

from actial_ros.messages import ns_to_stamp, stamp_to_ns
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


def _count(usage: dict[str, Any], key: str) -> int:
    value = usage.get(key)
    return int(value) if isinstance(value, (int, float)) and 0 <= value < 2**32 else 0


def record_to_answer_msg(record: dict[str, Any], *, stamp_ns: int = 0) -> ViewpointAnswer:
    """A typed answer from an answer record (``kind`` ``'viewpoint'`` or ``'ask'``).

    Args:
        record: :func:`actial_ros.records.answer_record` (viewpoint) or an ask record.
        stamp_ns: ``header.stamp`` (ns): when the answer was produced.
    """
    msg = ViewpointAnswer()
    _set_time(msg.header.stamp, stamp_ns)
    kind = str(record.get('kind', ViewpointAnswer.KIND_VIEWPOINT))
    msg.kind = kind
    msg.id = str(record.get('id') or '')
    msg.pair_id = int(record.get('pair_id') or 0)
    if kind == ViewpointAnswer.KIND_ASK:
        stamps = list(record.get('stamps') or [])
        cameras = list(record.get('cameras') or [])
        names = list(record.get('frames') or [])
    else:
        stamps = [record.get('stamp_1'), record.get('stamp_2')]
        cameras = [record.get('camera_1'), record.get('camera_2')]
        names = [record.get('frame_1'), record.get('frame_2')]
    msg.frame_count = min(len(stamps), 2)
    if stamps:
        _set_time(msg.stamp_1, stamps[0])
        msg.camera_1 = str(cameras[0] or '') if cameras else ''
        msg.frame_name_1 = str(names[0] or '') if names else ''
    if len(stamps) > 1:
        _set_time(msg.stamp_2, stamps[1])
        msg.camera_2 = str(cameras[1] or '') if len(cameras) > 1 else ''
        msg.frame_name_2 = str(names[1] or '') if len(names) > 1 else ''
    msg.question_type = str(record.get('question_type') or '')
    msg.question = str(record.get('question') or '')
    msg.options = [str(option) for option in record.get('options') or []]
    msg.option_labels = [str(label) for label in record.get('option_labels') or []]
    msg.raw_text = str(record.get('raw_text') or '')
    msg.answer_letter = str(record.get('answer_letter') or '')
    msg.answer = str(record.get('answer') or '')
    msg.status = str(record.get('status') or '')
    msg.reason = str(record.get('reason') or '')
    msg.has_truth = record.get('truth') is not None
    msg.truth = str(record.get('truth') or '')
    msg.truth_letter = str(record.get('truth_letter') or '')
    msg.scored = record.get('correct') is not None
    msg.correct = bool(record.get('correct'))
    msg.has_relative_pose = record.get('yaw_deg') is not None
    msg.yaw_deg = _finite(record.get('yaw_deg'), 0.0)
    msg.pitch_deg = _finite(record.get('pitch_deg'), 0.0)
    msg.roll_deg = _finite(record.get('roll_deg'), 0.0)
    t12 = record.get('t12')
    if t12 is not None:
        msg.t12.x, msg.t12.y, msg.t12.z = (_finite(v, 0.0) for v in t12)
    msg.latency_s = _finite(record.get('latency_s'), -1.0)
    msg.backend = str(record.get('backend') or '')
    usage = record.get('usage') or {}
    msg.prompt_tokens = _count(usage, 'prompt_tokens')
    msg.completion_tokens = _count(usage, 'completion_tokens')
    return msg


def _or_none(text: str) -> str | None:
    return text or None


def answer_msg_to_record(msg: ViewpointAnswer) -> dict[str, Any]:
    """The answer record a typed answer carries (the inverse of :func:`record_to_answer_msg`)."""
    usage = {
        key: value
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
        return {
            'kind': msg.kind,
            'id': msg.id,
            'question': msg.question,
            'stamps': [stamp for stamp, _, _ in frames],
            'cameras': [camera for _, camera, _ in frames],
            'frames': [name for _, _, name in frames],
            'raw_text': msg.raw_text,
            'status': msg.status,
            'reason': _or_none(msg.reason),
            'latency_s': latency,
            'backend': msg.backend,
            'usage': usage,
        }
    relative = msg.has_relative_pose
    return {
        'kind': msg.kind,
        'id': msg.id,
        'pair_id': int(msg.pair_id),
        'camera_1': msg.camera_1,
        'camera_2': msg.camera_2,
        'stamp_1': stamp_to_ns(msg.stamp_1),
        'stamp_2': stamp_to_ns(msg.stamp_2),
        'frame_1': msg.frame_name_1,
        'frame_2': msg.frame_name_2,
        'question_type': msg.question_type,
        'question': msg.question,
        'options': list(msg.options),
        'option_labels': list(msg.option_labels),
        'raw_text': msg.raw_text,
        'answer_letter': _or_none(msg.answer_letter),
        'answer': _or_none(msg.answer),
        'status': msg.status,
        'reason': _or_none(msg.reason),
        'truth': msg.truth if msg.has_truth else None,
        'truth_letter': _or_none(msg.truth_letter),
        'correct': bool(msg.correct) if msg.scored else None,
        'yaw_deg': float(msg.yaw_deg) if relative else None,
        'pitch_deg': float(msg.pitch_deg) if relative else None,
        'roll_deg': float(msg.roll_deg) if relative else None,
        't12': [float(msg.t12.x), float(msg.t12.y), float(msg.t12.z)] if relative else None,
        'latency_s': latency,
        'backend': msg.backend,
        'usage': usage,
    }
