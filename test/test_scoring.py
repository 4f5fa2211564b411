"""Hand-counted tallies for actial_ros.scoring (the node's /diagnostics, the demo table, the sim report)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from answer_records import ask, viewpoint

from actial_ros.enums import AnswerStatus, QuestionType, ViewpointLabel
from actial_ros.records import AnswerRecord, Record
from actial_ros.scoring import ScoreBoard, TypeScore


def answer(
    kind: str, status: AnswerStatus, *, correct: bool = False, truth: str | None = 'left', **extra: Any
) -> AnswerRecord:
    """A viewpoint answer of question type ``kind`` (no cameras, no latency unless in ``extra``)."""
    label = None if truth is None else ViewpointLabel(truth)
    fields = {'camera_1': '', 'camera_2': '', 'latency_s': None, **extra}
    return viewpoint(question_type=QuestionType(kind), status=status, truth=label, correct=correct, **fields)


def record(kind: str | None, status: AnswerStatus, **extra: Any) -> Record:
    """:func:`answer`, or a free-form ask for ``kind=None``."""
    if kind is None:
        return ask(**{'status': status, 'latency_s': None, **extra})
    return answer(kind, status, **extra)


def test_type_score_counts_unparsed_as_wrong_and_excludes_abstentions_and_errors() -> None:
    score = TypeScore()
    for item in (
        answer('rotation', AnswerStatus.ANSWERED, correct=True),
        answer('rotation', AnswerStatus.ANSWERED, correct=False),
        answer('rotation', AnswerStatus.UNPARSED),
        answer('rotation', AnswerStatus.ABSTAINED),
        answer('rotation', AnswerStatus.ERROR),
        answer('rotation', AnswerStatus.ANSWERED, correct=True, truth=None),  # no odometry: not scored
    ):
        score = score.plus(item)
    assert score == TypeScore(asked=6, answered=3, unparsed=1, abstained=1, errors=1, scored=3, correct=1)
    assert score.accuracy == pytest.approx(1 / 3)
    assert TypeScore().accuracy is None


def test_score_board_per_type_per_camera_total_and_latency() -> None:
    board = ScoreBoard(latency_window=3)
    board.extend(
        [
            record('rotation', AnswerStatus.ANSWERED, correct=True, camera_1='left', camera_2='right', latency_s=0.1),
            record(
                'ego_translation', AnswerStatus.ANSWERED, correct=False, camera_1='left', camera_2='left', latency_s=0.2
            ),
            record('ego_translation', AnswerStatus.ERROR, latency_s=9.0),  # an error's latency is not a reply's
            record(None, AnswerStatus.ANSWERED, latency_s=0.3),  # free-form ~/ask: latency only
            record('rotation', AnswerStatus.ABSTAINED, latency_s=0.4),
        ]
    )
    scores = board.scores()
    assert set(scores) == {'rotation', 'ego_translation'}
    assert (scores['rotation'].asked, scores['rotation'].correct, scores['rotation'].abstained) == (2, 1, 1)
    assert (scores['ego_translation'].asked, scores['ego_translation'].errors) == (2, 1)
    cameras = board.camera_scores()
    assert cameras['left'].asked == 2 and cameras['right'].asked == 1  # a same-camera pair counts once
    total = board.total()
    assert (total.asked, total.scored, total.correct) == (4, 2, 1) and total.accuracy == 0.5
    # The window keeps the last three non-error latencies: 0.2, 0.3, 0.4.
    assert board.latency_percentiles(0, 50, 100) == pytest.approx([0.2, 0.3, 0.4])
    assert ScoreBoard().latency_percentiles(50) == [None]
    # reset (the node's ~/reset_scores): every tally and latency forgotten, then counting starts afresh.
    assert board.reset() == 4
    assert board.scores() == {} and board.camera_scores() == {} and board.total() == TypeScore()
    assert board.latency_percentiles(50) == [None]
    board.add(record('rotation', AnswerStatus.ANSWERED, correct=True, latency_s=0.5))
    assert board.total().correct == 1 and board.latency_percentiles(50) == pytest.approx([0.5])


def test_score_board_is_thread_safe() -> None:
    board = ScoreBoard()

    def add_many() -> None:
        for _ in range(500):
            board.add(record('rotation', AnswerStatus.ANSWERED, correct=True, latency_s=0.01))

    threads = [threading.Thread(target=add_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert board.scores()['rotation'].asked == 2000 and board.total().correct == 2000
