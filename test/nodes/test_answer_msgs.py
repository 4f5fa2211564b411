"""Answer records <-> actial_ros_msgs/ViewpointAnswer: every field the message carries survives the round
trip through the message's CDR serialization (rclpy.serialization, what DDS carries), for viewpoint answers
(scored, unscored, failed) and asks (zero, one, two frames). Over real DDS: test_spatial_reasoner.py,
test_ask_action.py."""

from __future__ import annotations

from dataclasses import replace

import pytest

pytest.importorskip('rclpy')
from rclpy.serialization import deserialize_message, serialize_message

from actial_ros.enums import AnswerStatus, QuestionType, ViewpointLabel
from actial_ros.nodes.answer_msgs import answer_msg_to_record, record_to_answer_msg
from actial_ros.records import AnswerRecord, AskRecord
from actial_ros_msgs.msg import ViewpointAnswer

VIEWPOINT = AnswerRecord(
    id='7:rotation',
    pair_id=7,
    camera_1='front',
    camera_2='left',
    stamp_1=1_700_000_000_123_456_789,
    stamp_2=1_700_000_001_000_000_001,
    frame_1='IMG_1.JPG',
    frame_2='',
    question_type=QuestionType.ROTATION,
    question='The two images are taken by a camera. Did the camera rotate?',
    options=('Rotated left', 'Did not rotate', 'Rotated right'),
    option_labels=(ViewpointLabel.LEFT, ViewpointLabel.NONE, ViewpointLabel.RIGHT),
    raw_text='<think>...</think><answer>C</answer>',
    answer_letter='C',
    answer=ViewpointLabel.RIGHT,
    status=AnswerStatus.ANSWERED,
    reason=None,
    truth=ViewpointLabel.RIGHT,
    truth_letter='C',
    correct=True,
    yaw_deg=34.5,
    pitch_deg=-2.25,
    roll_deg=0.125,
    t12=(0.5, -0.01, 0.2),
    latency_s=1.5,
    backend='vllm',
    usage={'prompt_tokens': 812, 'completion_tokens': 64},
)


@pytest.mark.parametrize(
    'record',
    [
        VIEWPOINT,
        replace(VIEWPOINT, status=AnswerStatus.UNPARSED, answer_letter=None, answer=None, correct=False),
        replace(
            VIEWPOINT,
            status=AnswerStatus.ERROR,
            reason='connection refused',
            raw_text='',
            answer_letter=None,
            answer=None,
            correct=None,
            latency_s=None,
            usage={},
        ),
        replace(
            VIEWPOINT,
            truth=None,
            truth_letter=None,
            correct=None,
            yaw_deg=None,
            pitch_deg=None,
            roll_deg=None,
            t12=None,
        ),
    ],
    ids=['scored', 'unparsed', 'error', 'no-truth'],
)
def test_viewpoint_records_survive_the_round_trip(record: AnswerRecord) -> None:
    msg = record_to_answer_msg(record, stamp_ns=42)
    wire = deserialize_message(serialize_message(msg), ViewpointAnswer)
    assert answer_msg_to_record(wire) == record
    assert wire.header.stamp.nanosec == 42


@pytest.mark.parametrize('frames', [0, 1, 2])
def test_ask_records_survive_the_round_trip(frames: int) -> None:
    record = AskRecord(
        id='q1',
        question='What is left of the robot?',
        stamps=(10, 20)[:frames],
        cameras=('front', 'left')[:frames],
        frames=('a', '')[:frames],
        raw_text='A door.' if frames else '',
        status=AnswerStatus.ANSWERED if frames else AnswerStatus.ERROR,
        reason=None if frames else 'no frames received yet',
        latency_s=0.25 if frames else None,
        backend='vllm',
        usage={},
    )
    msg = record_to_answer_msg(record)
    assert msg.frame_count == frames and msg.kind == ViewpointAnswer.KIND_ASK
    assert answer_msg_to_record(deserialize_message(serialize_message(msg), ViewpointAnswer)) == record
