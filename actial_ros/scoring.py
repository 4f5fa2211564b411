"""Running accuracy of viewpoint answers against ground truth, per question type, and latency stats."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from actial_ros.enums import AnswerStatus
from actial_ros.records import AnswerRecord, Record

__all__ = ['ScoreBoard', 'TypeScore']


@dataclass(frozen=True, slots=True)
class TypeScore:
    """Tallies for one question type.

    Attributes:
        asked: records seen (every status).
        answered, unparsed, abstained, errors: records by status.
        scored: records with a known truth and status answered or unparsed.
        correct: scored records whose answer equals the truth.
    """

    asked: int = 0
    answered: int = 0
    unparsed: int = 0
    abstained: int = 0
    errors: int = 0
    scored: int = 0
    correct: int = 0

    @property
    def accuracy(self) -> float | None:
        """``correct / scored`` in [0, 1], or ``None`` before anything was scored.

        Unparsed replies count as wrong (as in the paper's evaluation); abstentions and errors are
        excluded and reported separately.
        """
        return None if self.scored == 0 else self.correct / self.scored

    def plus(self, record: AnswerRecord) -> TypeScore:
        """These tallies with one more answer record (its ``status``, ``truth`` and ``correct``)."""
        return _tally(self, record)


class ScoreBoard:
    """Thread-safe running scores per question type plus latency percentiles.

    Args:
        latency_window: how many recent latencies are kept for percentiles.
    """

    def __init__(self, *, latency_window: int = 1000) -> None:
        self._lock = threading.Lock()
        self._scores: dict[str, TypeScore] = {}
        self._by_camera: dict[str, TypeScore] = {}
        self._latencies: deque[float] = deque(maxlen=latency_window)

    def add(self, record: Record) -> None:
        """Count one answer record (its ``question_type``, ``status``, ``truth``, ``correct``, ``latency_s``).
        Free-form asks only add their latency."""
        latency = record.latency_s
        with self._lock:
            if latency is not None and record.status != AnswerStatus.ERROR:
                self._latencies.append(float(latency))
            if not isinstance(record, AnswerRecord):
                return
            kind = record.question_type.value
            self._scores[kind] = _tally(self._scores.get(kind, TypeScore()), record)
            cameras = {record.camera_1, record.camera_2} - {''}
            for camera in cameras:
                self._by_camera[camera] = _tally(self._by_camera.get(camera, TypeScore()), record)

    def reset(self) -> int:
        """Forget every tally and latency (a new evaluation starts); returns how many questions had been
        asked."""
        with self._lock:
            asked = sum(score.asked for score in self._scores.values())
            self._scores.clear()
            self._by_camera.clear()
            self._latencies.clear()
        return asked

    def extend(self, records: Iterable[Record]) -> None:
        """Count several records."""
        for record in records:
            self.add(record)

    def scores(self) -> dict[str, TypeScore]:
        """Question type -> tallies (a copy)."""
        with self._lock:
            return dict(self._scores)

    def camera_scores(self) -> dict[str, TypeScore]:
        """Camera id -> tallies over every question about a pair that includes that camera (a copy)."""
        with self._lock:
            return dict(self._by_camera)

    def total(self) -> TypeScore:
        """Tallies summed over question types."""
        scores = self.scores().values()
        return TypeScore(
            **{
                name: sum(getattr(score, name) for score in scores)
                for name in ('asked', 'answered', 'unparsed', 'abstained', 'errors', 'scored', 'correct')
            }
        )

    def latency_percentiles(self, *quantiles: float) -> list[float | None]:
        """Latency percentiles in seconds (``quantiles`` in [0, 100]); ``None`` with no samples."""
        with self._lock:
            values = np.asarray(self._latencies, dtype=np.float64)
        if values.size == 0:
            return [None for _ in quantiles]
        return [float(np.percentile(values, q)) for q in quantiles]


def _tally(score: TypeScore, record: AnswerRecord) -> TypeScore:
    status = record.status
    scored = status in (AnswerStatus.ANSWERED, AnswerStatus.UNPARSED) and record.truth is not None
    return TypeScore(
        asked=score.asked + 1,
        answered=score.answered + (status == AnswerStatus.ANSWERED),
        unparsed=score.unparsed + (status == AnswerStatus.UNPARSED),
        abstained=score.abstained + (status == AnswerStatus.ABSTAINED),
        errors=score.errors + (status == AnswerStatus.ERROR),
        scored=score.scored + scored,
        correct=score.correct + (scored and bool(record.correct)),
    )
