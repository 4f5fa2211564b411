"""Checking answers against the rig's own ground truth, and the accuracy of a backend per yaw bin.

The ``spatial_reasoner`` node derives each answer's truth from odometry; in simulation the rig's pose
record holds the exact camera poses, so every answer's ``yaw_deg``, ``t12`` and ``truth`` can be
recomputed with :func:`actial_ros.geometry.relative_pose` and :func:`actial_ros.geometry.viewpoint_label`
and must agree.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from actial_ros.geometry import LabelThresholds, relative_pose, viewpoint_label
from actial_ros.records import AnswerRecord, Record
from actial_ros.scoring import TypeScore
from actial_ros.simulation.record import PoseRecord

__all__ = ['YAW_BINS', 'YawBinStats', 'accuracy_by_yaw_bin', 'check_answers']

YAW_BINS: tuple[tuple[float, float], ...] = ((20.0, 40.0), (40.0, 60.0), (60.0, 80.0), (80.0, 100.0))
"""Default ``|yaw|`` bins (degrees, ``[low, high)``; the last bin includes its upper edge)."""


def check_answers(
    answers: Iterable[Record],
    record: PoseRecord,
    thresholds: LabelThresholds | None = None,
    *,
    yaw_tol_deg: float = 1e-6,
    translation_tol: float = 1e-6,
) -> list[str]:
    """Compare viewpoint answer records (the node's ``~/answers``, as
    :func:`actial_ros.nodes.answer_msgs.answer_msg_to_record` gives them, or the JSON mirror read with
    :func:`actial_ros.records.record_from_json_dict`) with the pose record.

    For each viewpoint answer (asks are skipped): both stamps must be frames of the record, and the
    answer's ``yaw_deg``, ``t12`` and ``truth`` must equal those computed from the recorded camera poses
    (same thresholds as the node's).

    Returns:
        A list of human-readable mismatches; empty when everything agrees.
    """
    limits = thresholds or LabelThresholds()
    frames = record.by_stamp()
    problems: list[str] = []
    for answer in answers:
        if not isinstance(answer, AnswerRecord):
            continue
        ident = answer.id
        first, second = frames.get(answer.stamp_1), frames.get(answer.stamp_2)
        if first is None or second is None:
            problems.append(f'{ident}: stamps {answer.stamp_1}, {answer.stamp_2} are not frames of the record')
            continue
        expected = relative_pose(first.t_world_camera, second.t_world_camera)
        label = viewpoint_label(answer.question_type, expected, limits).value
        yaw = answer.yaw_deg
        if yaw is None or not math.isclose(yaw, expected.yaw_deg, abs_tol=yaw_tol_deg):
            problems.append(f'{ident}: yaw {yaw} != {expected.yaw_deg} from the record')
        t12 = None if answer.t12 is None else list(answer.t12)
        if t12 is None or not np.allclose(t12, expected.translation, atol=translation_tol, rtol=0.0):
            problems.append(f'{ident}: t12 {t12} != {expected.translation.tolist()} from the record')
        truth = None if answer.truth is None else answer.truth.value
        if truth != label:
            problems.append(f'{ident}: truth {truth!r} != {label!r} from the record')
    return problems


@dataclass(frozen=True)
class YawBinStats:
    """Answers of one ``|yaw|`` bin, tallied as the node and the demo tally them
    (:class:`actial_ros.scoring.TypeScore`).

    Attributes:
        low, high: bin edges (degrees).
        score: the tallies: ``asked`` (every status), ``answered``, ``unparsed``, ``abstained``, ``errors``,
            ``scored`` (answered or unparsed with a known truth) and ``correct``.
    """

    low: float
    high: float
    score: TypeScore = field(default_factory=TypeScore)

    @property
    def asked(self) -> int:
        return self.score.asked

    @property
    def answered(self) -> int:
        return self.score.answered

    @property
    def correct(self) -> int:
        return self.score.correct

    @property
    def abstained(self) -> int:
        return self.score.abstained

    @property
    def unparsed(self) -> int:
        return self.score.unparsed

    @property
    def errors(self) -> int:
        return self.score.errors

    @property
    def accuracy(self) -> float | None:
        """``correct / scored``: unparsed replies count as wrong, abstentions and errors are excluded (as in
        the node's /diagnostics and the demo table); ``None`` when nothing was scored."""
        return self.score.accuracy

    @property
    def abstention_rate(self) -> float | None:
        """``abstained / asked``; ``None`` when nothing was asked."""
        return self.abstained / self.asked if self.asked else None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict with the derived rates."""
        return {
            'bin_deg': [self.low, self.high],
            'asked': self.asked,
            'answered': self.answered,
            'correct': self.correct,
            'abstained': self.abstained,
            'unparsed': self.unparsed,
            'errors': self.errors,
            'accuracy': self.accuracy,
            'abstention_rate': self.abstention_rate,
        }


def accuracy_by_yaw_bin(
    answers: Iterable[Record],
    bins: Sequence[tuple[float, float]] = YAW_BINS,
    *,
    question_type: str | None = None,
) -> list[YawBinStats]:
    """Accuracy and abstention per ``|yaw|`` bin of viewpoint answer records (optionally one question type).

    Tallied by their ``yaw_deg``, ``status``, ``truth`` and ``correct``; asks, answers without a relative pose
    and those outside every bin are ignored.
    """
    scores = [TypeScore() for _ in bins]
    for answer in answers:
        if not isinstance(answer, AnswerRecord) or answer.yaw_deg is None:
            continue
        if question_type is not None and answer.question_type != question_type:
            continue
        yaw = abs(answer.yaw_deg)
        for index, (low, high) in enumerate(bins):
            last = index == len(bins) - 1
            if low <= yaw < high or (last and yaw == high):
                scores[index] = scores[index].plus(answer)
                break
    return [
        YawBinStats(low=float(low), high=float(high), score=score)
        for (low, high), score in zip(bins, scores, strict=True)
    ]
