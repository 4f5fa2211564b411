"""Answer records for tests: a complete record (every field set) with the fields a test is about changed."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from actial_ros.enums import AnswerStatus, QuestionType, ViewpointLabel
from actial_ros.records import AnswerRecord, AskRecord

VIEWPOINT = AnswerRecord(
    id='7:rotation',
    pair_id=7,
    camera_1='camera',
    camera_2='camera',
    stamp_1=1_700_000_000_000_000_000,
    stamp_2=1_700_000_000_500_000_000,
    frame_1='',
    frame_2='',
    question_type=QuestionType.ROTATION,
    question='Did the camera rotate left or right?',
    options=('Rotated left', 'Did not rotate', 'Rotated right'),
    option_labels=(ViewpointLabel.LEFT, ViewpointLabel.NONE, ViewpointLabel.RIGHT),
    raw_text='A',
    answer_letter='A',
    answer=ViewpointLabel.LEFT,
    status=AnswerStatus.ANSWERED,
    reason=None,
    truth=ViewpointLabel.LEFT,
    truth_letter='A',
    correct=True,
    yaw_deg=-34.0,
    pitch_deg=0.0,
    roll_deg=0.0,
    t12=(-0.2, 0.0, 0.1),
    latency_s=0.1,
    backend='geometry',
    usage={},
)
"""A scored, correct rotation answer."""

ASK = AskRecord(
    id='q',
    question='What is ahead?',
    stamps=(1_700_000_000_000_000_000,),
    cameras=('camera',),
    frames=('',),
    raw_text='A door.',
    status=AnswerStatus.ANSWERED,
    reason=None,
    latency_s=0.1,
    backend='geometry',
    usage={},
)
"""An answered free-form ask about one frame."""


def viewpoint(**changes: Any) -> AnswerRecord:
    """:data:`VIEWPOINT` with ``changes`` (field name -> value)."""
    return replace(VIEWPOINT, **changes)


def ask(**changes: Any) -> AskRecord:
    """:data:`ASK` with ``changes`` (field name -> value)."""
    return replace(ASK, **changes)
