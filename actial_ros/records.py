"""Answer records: what the engine emits for every answer, a viewpoint question about a pair (:class:`AnswerRecord`,
made by :func:`answer_record`) or a free-form ask (:class:`AskRecord`, made by :func:`ask_record`), and a viewpoint
answer with its frames' names (:class:`AnswerRow`: a line of the demo's answers file, a row of the HTML report).

The records are frozen dataclasses; their JSON form (``to_json_dict``, read back by ``from_json_dict``) is the
node's ``~/answers_json`` mirror and the demo's answers file, key for key in a fixed order. The node turns them into
typed messages and back (:mod:`actial_ros.nodes.answer_msgs`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Any, ClassVar, Protocol, TypeVar

from actial_ros.enums import AnswerStatus, QuestionType, ViewpointLabel
from actial_ros.frame import Frame, Pair
from actial_ros.questions import Question

__all__ = [
    'AnswerRecord',
    'AnswerRow',
    'AskRecord',
    'Record',
    'Reply',
    'answer_record',
    'ask_record',
    'internal_error_reason',
    'record_from_json_dict',
]

_MAX_REASON_CHARS = 500

_T = TypeVar('_T')


class Reply(Protocol):
    """What a record needs of a backend's reply (:class:`actial_ros.backends.base.BackendAnswer` is one)."""

    @property
    def backend(self) -> str: ...

    @property
    def raw_text(self) -> str: ...

    @property
    def letter(self) -> str | None: ...

    @property
    def latency_s(self) -> float: ...

    @property
    def abstained(self) -> bool: ...

    @property
    def reason(self) -> str | None: ...

    @property
    def usage(self) -> Mapping[str, int]: ...


@dataclass(frozen=True, slots=True)
class AnswerRecord:
    """The answer to one viewpoint question about a pair, as published on ``~/answers``.

    Attributes:
        id: ``'<pair_id>:<question_type>'``.
        pair_id: the pair's id (unique within the node's process).
        camera_1, camera_2: the frames' camera ids.
        stamp_1, stamp_2: the frames' header stamps (integer ns).
        frame_1, frame_2: the frames' names (a capture's file names; may be empty).
        question_type: which of the three viewpoint questions.
        question: the full prompt (preamble, stem, lettered options, closing instruction).
        options: option texts in display order (letters A, B, C).
        option_labels: the label each option stands for, in display order.
        raw_text: the model's raw output ('' when there is none).
        answer_letter: the option letter read from the reply, or ``None`` when it names no option.
        answer: the label of that option, or ``None``.
        status: answered, unparsed, abstained or error (:class:`~actial_ros.enums.AnswerStatus`).
        reason: why it abstained, was unparsed or failed (free text), else ``None``.
        truth, truth_letter: the label (and its option letter) from odometry; ``None`` without a relative pose.
        correct: ``answer == truth`` when scored (a known truth and status answered or unparsed), else ``None``.
        yaw_deg, pitch_deg, roll_deg: the relative pose of camera 2 in camera 1's optical frame (degrees; yaw
            positive to the right); ``None`` without odometry.
        t12: camera 2's position in camera 1's optical frame (odometry length unit); ``None`` without odometry.
        latency_s: wall-clock seconds of the backend call, retries included (``None`` when unknown).
        backend: the backend's name (``geometry``, ``vllm``, ``transformers``).
        usage: token counts reported by the server (``prompt_tokens``, ``completion_tokens``, ...).
    """

    KIND: ClassVar[str] = 'viewpoint'
    """The record's ``kind`` in its JSON form and on the message."""

    id: str
    pair_id: int
    camera_1: str
    camera_2: str
    stamp_1: int
    stamp_2: int
    frame_1: str
    frame_2: str
    question_type: QuestionType
    question: str
    options: tuple[str, ...]
    option_labels: tuple[ViewpointLabel, ...]
    raw_text: str
    answer_letter: str | None
    answer: ViewpointLabel | None
    status: AnswerStatus
    reason: str | None
    truth: ViewpointLabel | None
    truth_letter: str | None
    correct: bool | None
    yaw_deg: float | None
    pitch_deg: float | None
    roll_deg: float | None
    t12: tuple[float, float, float] | None
    latency_s: float | None
    backend: str
    usage: Mapping[str, int] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """``'viewpoint'``."""
        return self.KIND

    def to_json_dict(self) -> dict[str, Any]:
        """The JSON form: ``kind``, then every attribute in the order above; enums as their values, tuples as
        lists (:func:`_json_form`)."""
        return _json_form(self)

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any]) -> AnswerRecord:
        """The record of a JSON form (:meth:`to_json_dict`; extra keys are ignored).

        Raises:
            ValueError: ``kind`` is not ``'viewpoint'``, a key is missing, or a value has the wrong type.
        """
        _expect_kind(data, cls.KIND)
        t12 = _get(data, 't12', _optional(_floats))
        if t12 is not None and len(t12) != 3:
            raise ValueError(f'answer record: t12 has {len(t12)} values, not 3')
        return cls(
            id=_get(data, 'id', _str),
            pair_id=_get(data, 'pair_id', _int),
            camera_1=_get(data, 'camera_1', _str),
            camera_2=_get(data, 'camera_2', _str),
            stamp_1=_get(data, 'stamp_1', _int),
            stamp_2=_get(data, 'stamp_2', _int),
            frame_1=_get(data, 'frame_1', _str),
            frame_2=_get(data, 'frame_2', _str),
            question_type=_get(data, 'question_type', QuestionType),
            question=_get(data, 'question', _str),
            options=_get(data, 'options', _strs),
            option_labels=_get(data, 'option_labels', _labels),
            raw_text=_get(data, 'raw_text', _str),
            answer_letter=_get(data, 'answer_letter', _optional(_str)),
            answer=_get(data, 'answer', _optional(ViewpointLabel)),
            status=_get(data, 'status', AnswerStatus),
            reason=_get(data, 'reason', _optional(_str)),
            truth=_get(data, 'truth', _optional(ViewpointLabel)),
            truth_letter=_get(data, 'truth_letter', _optional(_str)),
            correct=_get(data, 'correct', _optional(_bool)),
            yaw_deg=_get(data, 'yaw_deg', _optional(_float)),
            pitch_deg=_get(data, 'pitch_deg', _optional(_float)),
            roll_deg=_get(data, 'roll_deg', _optional(_float)),
            t12=None if t12 is None else (t12[0], t12[1], t12[2]),
            latency_s=_get(data, 'latency_s', _optional(_float)),
            backend=_get(data, 'backend', _str),
            usage=_get(data, 'usage', _usage),
        )


@dataclass(frozen=True, slots=True)
class AskRecord:
    """The answer to one free-form ask (``~/ask``, ``~/ask_json``, the ``~/ask`` action).

    Attributes:
        id: the ask's id, as the caller gave it.
        question: the prompt.
        stamps, cameras, frames: header stamps (integer ns), camera ids and names of the frames it was asked
            about (none when there were no frames yet, one for a frame, two for a pair).
        raw_text: the model's reply ('' when there is none).
        status: error when there was no reply, else abstained or answered.
        reason: why it failed or abstained (free text), else ``None``.
        latency_s: wall-clock seconds of the backend call (``None`` when unknown).
        backend: the backend's name.
        usage: token counts reported by the server.
    """

    KIND: ClassVar[str] = 'ask'
    """The record's ``kind`` in its JSON form and on the message."""

    id: str
    question: str
    stamps: tuple[int, ...]
    cameras: tuple[str, ...]
    frames: tuple[str, ...]
    raw_text: str
    status: AnswerStatus
    reason: str | None
    latency_s: float | None
    backend: str
    usage: Mapping[str, int] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """``'ask'``."""
        return self.KIND

    def to_json_dict(self) -> dict[str, Any]:
        """The JSON form: ``kind``, then every attribute in the order above; enums as their values, tuples as
        lists (:func:`_json_form`)."""
        return _json_form(self)

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any]) -> AskRecord:
        """The record of a JSON form (:meth:`to_json_dict`; extra keys are ignored).

        Raises:
            ValueError: ``kind`` is not ``'ask'``, a key is missing, or a value has the wrong type.
        """
        _expect_kind(data, cls.KIND)
        return cls(
            id=_get(data, 'id', _str),
            question=_get(data, 'question', _str),
            stamps=_get(data, 'stamps', _ints),
            cameras=_get(data, 'cameras', _strs),
            frames=_get(data, 'frames', _strs),
            raw_text=_get(data, 'raw_text', _str),
            status=_get(data, 'status', AnswerStatus),
            reason=_get(data, 'reason', _optional(_str)),
            latency_s=_get(data, 'latency_s', _optional(_float)),
            backend=_get(data, 'backend', _str),
            usage=_get(data, 'usage', _usage),
        )


def _json_value(value: Any) -> Any:
    """A record attribute's JSON value: an enum's value, a tuple as a list (of JSON values), a mapping as a dict."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple):
        return [_json_value(item) for item in value]
    if isinstance(value, Mapping):
        return dict(value)
    return value


def _json_form(record: AnswerRecord | AskRecord) -> dict[str, Any]:
    """``kind``, then every field of ``record`` in declaration order, as JSON values (the one writer of both
    records' JSON forms, so their key order is their fields' order)."""
    return {'kind': record.KIND, **{f.name: _json_value(getattr(record, f.name)) for f in fields(record)}}


Record = AnswerRecord | AskRecord
"""Any answer record the engine emits."""


def record_from_json_dict(data: Mapping[str, Any]) -> Record:
    """An :class:`AnswerRecord` or an :class:`AskRecord`, by the JSON form's ``kind``.

    Raises:
        ValueError: an unknown ``kind``, a missing key or a value of the wrong type.
    """
    kind = data.get('kind')
    if kind == AskRecord.KIND:
        return AskRecord.from_json_dict(data)
    if kind == AnswerRecord.KIND:
        return AnswerRecord.from_json_dict(data)
    raise ValueError(f'answer record: unknown kind {kind!r}')


_ROW_FIRST = ('stamp_1', 'stamp_2', 'question_type', 'truth', 'answer', 'correct', 'yaw_deg', 'latency_s', 'backend')
"""The record's keys a row's JSON form puts right after the frames' names (the rest follow in the record's order)."""


@dataclass(frozen=True, slots=True)
class AnswerRow:
    """A viewpoint answer with its frames' names: a line of ``actial-ros demo --out`` and a row of the HTML report.

    Attributes:
        record: the answer.
        image_1, image_2: the frames' names as a person finds them (a capture's file names; ``CAMERA@STAMP_NS``
            for a bag's or a live topic's frames).
    """

    record: AnswerRecord
    image_1: str
    image_2: str

    def to_json_dict(self) -> dict[str, Any]:
        """The JSON form: ``image_1``, ``image_2``, ``stamp_1``, ``stamp_2``, ``question_type``, ``truth``,
        ``answer``, ``correct``, ``yaw_deg``, ``latency_s``, ``backend``, then the rest of the record's JSON form
        in its order."""
        record = self.record.to_json_dict()
        row: dict[str, Any] = {'image_1': self.image_1, 'image_2': self.image_2}
        row.update((key, record[key]) for key in _ROW_FIRST)
        row.update((key, value) for key, value in record.items() if key not in row)
        return row

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any]) -> AnswerRow:
        """The row of a JSON form (:meth:`to_json_dict`).

        Raises:
            ValueError: not a viewpoint answer, a missing key or a value of the wrong type.
        """
        return cls(
            record=AnswerRecord.from_json_dict(data),
            image_1=_get(data, 'image_1', _str),
            image_2=_get(data, 'image_2', _str),
        )


def internal_error_reason(error: BaseException) -> str:
    """The ``reason`` of an answer that a bug broke: ``'internal error: <type>: <message>'``, at most 500
    characters (the traceback goes to the log, not the answer)."""
    return f'internal error: {type(error).__name__}: {error}'[:_MAX_REASON_CHARS]


def answer_record(
    pair: Pair,
    question: Question,
    reply: Reply | None,
    *,
    backend: str,
    error: str | None = None,
    latency_s: float | None = None,
) -> AnswerRecord:
    """The answer record published on ``~/answers`` for one viewpoint question.

    Args:
        pair: the pair asked about (its frames and relative pose).
        question: the question asked (its truth from odometry, or ``None``).
        reply: the backend's reply, or ``None`` when there was none (then the status is error).
        backend: the backend's name, for a record without a reply.
        error: why there was no reply.
        latency_s: seconds spent, for a record without a reply.
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
    t12 = None if relative is None else tuple(float(v) for v in relative.translation)
    return AnswerRecord(
        id=f'{pair.pair_id}:{question.question_type.value}',
        pair_id=pair.pair_id,
        camera_1=pair.frame_1.camera_id,
        camera_2=pair.frame_2.camera_id,
        stamp_1=pair.frame_1.stamp_ns,
        stamp_2=pair.frame_2.stamp_ns,
        frame_1=pair.frame_1.name,
        frame_2=pair.frame_2.name,
        question_type=question.question_type,
        question=question.text,
        options=tuple(question.options),
        option_labels=tuple(question.option_labels),
        raw_text=reply.raw_text if reply is not None else '',
        answer_letter=letter if label is not None else None,
        answer=label,
        status=status,
        reason=error if reply is None else reply.reason,
        truth=truth,
        truth_letter=question.answer_letter,
        correct=(label == truth) if scored else None,
        yaw_deg=None if relative is None else relative.yaw_deg,
        pitch_deg=None if relative is None else relative.pitch_deg,
        roll_deg=None if relative is None else relative.roll_deg,
        t12=None if t12 is None else (t12[0], t12[1], t12[2]),
        latency_s=reply.latency_s if reply is not None else latency_s,
        backend=reply.backend if reply is not None else backend,
        usage=dict(reply.usage) if reply is not None else {},
    )


def ask_record(
    ask_id: str,
    prompt: str,
    frames: Sequence[Frame],
    reply: Reply | None,
    backend: str,
    error: str | None,
    latency_s: float | None = None,
) -> AskRecord:
    """The record of a free-form ask about ``frames``: status error when there is no ``reply`` (``error`` says
    why), else abstained or answered."""
    if reply is None:
        status = AnswerStatus.ERROR
    elif reply.abstained:
        status = AnswerStatus.ABSTAINED
    else:
        status = AnswerStatus.ANSWERED
    return AskRecord(
        id=ask_id,
        question=prompt,
        stamps=tuple(frame.stamp_ns for frame in frames),
        cameras=tuple(frame.camera_id for frame in frames),
        frames=tuple(frame.name for frame in frames),
        raw_text=reply.raw_text if reply is not None else '',
        status=status,
        reason=error if reply is None else reply.reason,
        latency_s=reply.latency_s if reply is not None else latency_s,
        backend=reply.backend if reply is not None else backend,
        usage=dict(reply.usage) if reply is not None else {},
    )


# -- reading the JSON form -------------------------------------------------------------------------


def _expect_kind(data: Mapping[str, Any], kind: str) -> None:
    if data.get('kind') != kind:
        raise ValueError(f'expected an answer record of kind {kind!r}, got kind {data.get("kind")!r}')


def _get(data: Mapping[str, Any], key: str, read: Callable[[Any], _T]) -> _T:
    if key not in data:
        raise ValueError(f'answer record: no {key!r}')
    try:
        return read(data[key])
    except (TypeError, ValueError) as error:
        raise ValueError(f'answer record: {key!r}: {error}') from None


def _optional(read: Callable[[Any], _T]) -> Callable[[Any], _T | None]:
    return lambda value: None if value is None else read(value)


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f'expected a string, got {value!r}')
    return value


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f'expected an integer, got {value!r}')
    return value


def _float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f'expected a number, got {value!r}')
    return float(value)


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f'expected true or false, got {value!r}')
    return value


def _sequence(value: Any) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise TypeError(f'expected a list, got {value!r}')
    return list(value)


def _strs(value: Any) -> tuple[str, ...]:
    return tuple(_str(item) for item in _sequence(value))


def _ints(value: Any) -> tuple[int, ...]:
    return tuple(_int(item) for item in _sequence(value))


def _labels(value: Any) -> tuple[ViewpointLabel, ...]:
    return tuple(ViewpointLabel(_str(item)) for item in _sequence(value))


def _floats(value: Any) -> tuple[float, ...]:
    return tuple(_float(item) for item in _sequence(value))


def _usage(value: Any) -> dict[str, int]:
    if not isinstance(value, Mapping):
        raise TypeError(f'expected an object, got {value!r}')
    return {_str(key): _int(count) for key, count in value.items()}
