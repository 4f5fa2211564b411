"""actial_ros.records: the typed answer records read the JSON written before they were typed, and write it back byte
for byte.

``test/data/demo_answers_before_typed_records.jsonl``: four lines of ``actial-ros demo --capture data/sample_capture
--backend geometry --out ...`` run with the code before the records were typed (abstained, answered right and wrong).
``test/data/node_records_before_typed_records.jsonl``: the node's ``~/answers_json`` lines (``json.dumps`` of the
engine's record dicts) that the code before then wrote for an unparsed reply, a failed request, a pair without
odometry, an answered ask and an ask before any frame.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import FrozenInstanceError
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from answer_records import VIEWPOINT, viewpoint

from actial_ros.backends.base import BackendAnswer
from actial_ros.enums import AnswerStatus, QuestionType, ViewpointLabel
from actial_ros.frame import Frame, Pair
from actial_ros.geometry import relative_pose
from actial_ros.questions import make_question
from actial_ros.records import (
    AnswerRecord,
    AnswerRow,
    AskRecord,
    answer_record,
    ask_record,
    record_from_json_dict,
)

DATA = Path(__file__).resolve().parent / 'data'
DEMO_ANSWERS = DATA / 'demo_answers_before_typed_records.jsonl'
NODE_RECORDS = DATA / 'node_records_before_typed_records.jsonl'


def _lines(path: Path) -> list[str]:
    lines = path.read_text(encoding='utf-8').splitlines()
    assert lines
    return lines


def test_demo_answers_written_before_parse_and_serialise_back_byte_for_byte() -> None:
    for line in _lines(DEMO_ANSWERS):
        row = AnswerRow.from_json_dict(json.loads(line))
        assert json.dumps(row.to_json_dict()) == line
        assert row.record.status in (AnswerStatus.ANSWERED, AnswerStatus.ABSTAINED)
        assert row.image_1.endswith('.JPG') and row.record.backend == 'geometry'
    rows = [AnswerRow.from_json_dict(json.loads(line)) for line in _lines(DEMO_ANSWERS)]
    assert {row.record.correct for row in rows} == {None, True, False}


def test_node_records_written_before_parse_and_serialise_back_byte_for_byte() -> None:
    records = [record_from_json_dict(json.loads(line)) for line in _lines(NODE_RECORDS)]
    for line, record in zip(_lines(NODE_RECORDS), records, strict=True):
        assert json.dumps(record.to_json_dict(), allow_nan=False) == line
    unparsed, failed, no_truth, asked, early = records
    assert isinstance(unparsed, AnswerRecord) and unparsed.status is AnswerStatus.UNPARSED
    assert unparsed.correct is False and unparsed.usage == {'prompt_tokens': 812, 'completion_tokens': 9}
    assert isinstance(failed, AnswerRecord) and failed.status is AnswerStatus.ERROR and failed.correct is None
    assert isinstance(no_truth, AnswerRecord) and no_truth.truth is None and no_truth.t12 is None
    assert no_truth.answer is ViewpointLabel.LEFT and no_truth.question_type is QuestionType.OBJECT_TRANSLATION
    assert isinstance(asked, AskRecord) and asked.stamps == (1_700_000_000_123_456_789, 1_700_000_000_623_456_789)
    assert isinstance(early, AskRecord) and early.status is AnswerStatus.ERROR and early.frames == ()


def _pair(relative: bool) -> Pair:
    image = np.zeros((4, 4, 3), np.uint8)
    first = Frame(image=image, stamp_ns=1_700_000_000_123_456_789, camera_id='front', name='IMG_1.JPG')
    second = Frame(image=image, stamp_ns=1_700_000_000_623_456_789, camera_id='left')
    pose = np.eye(4)
    yaw = math.radians(-33.3)
    pose[:3, :3] = np.array([[math.cos(yaw), 0, math.sin(yaw)], [0, 1, 0], [-math.sin(yaw), 0, math.cos(yaw)]])
    pose[:3, 3] = [0.4, 0.02, 0.1]
    return Pair(frame_1=first, frame_2=second, relative=relative_pose(np.eye(4), pose) if relative else None)


def test_the_engines_records_have_the_keys_of_before_in_their_order() -> None:
    before = [list(json.loads(line)) for line in _lines(NODE_RECORDS)]
    question = make_question(QuestionType.ROTATION, ViewpointLabel.LEFT, random.Random(0))
    reply = BackendAnswer('vllm', '<answer>x</answer>', None, 1.25, usage={'prompt_tokens': 3})
    record = answer_record(_pair(True), question, reply, backend='vllm')
    assert list(record.to_json_dict()) == before[0]
    assert record.status is AnswerStatus.UNPARSED and record.correct is False
    assert record.t12 == pytest.approx((0.4, 0.02, 0.1)) and record.yaw_deg == pytest.approx(-33.3)
    failed = answer_record(_pair(False), question, None, backend='vllm', error='down', latency_s=2.0)
    assert (failed.status, failed.reason, failed.latency_s, failed.yaw_deg) == (AnswerStatus.ERROR, 'down', 2.0, None)
    asked = ask_record('q1', 'What is left?', [_pair(True).frame_1], reply, 'vllm', None)
    assert list(asked.to_json_dict()) == before[3]
    assert asked.cameras == ('front',) and asked.status is AnswerStatus.ANSWERED


def test_a_row_puts_the_frames_names_and_the_summary_keys_first() -> None:
    row = AnswerRow(VIEWPOINT, image_1='a.jpg', image_2='b.jpg')
    data = row.to_json_dict()
    assert list(data)[:11] == [
        'image_1',
        'image_2',
        'stamp_1',
        'stamp_2',
        'question_type',
        'truth',
        'answer',
        'correct',
        'yaw_deg',
        'latency_s',
        'backend',
    ]
    assert set(data) == {'image_1', 'image_2', *VIEWPOINT.to_json_dict()}
    assert AnswerRow.from_json_dict(data) == row
    assert json.loads(json.dumps(data)) == data  # plain JSON values: enums as their values, tuples as lists


def test_records_are_frozen_and_their_kind_is_fixed() -> None:
    with pytest.raises(FrozenInstanceError):
        VIEWPOINT.status = AnswerStatus.ERROR  # type: ignore[misc]
    assert VIEWPOINT.kind == 'viewpoint' and VIEWPOINT.to_json_dict()['kind'] == 'viewpoint'


@pytest.mark.parametrize(
    ('change', 'message'),
    [
        ({'kind': 'ask'}, "got kind 'ask'"),
        ({'status': 'maybe'}, "'status'"),
        ({'pair_id': '7'}, "'pair_id'"),
        ({'correct': 1}, "'correct'"),
        ({'t12': [1.0, 2.0]}, 't12'),
        ({'option_labels': ['left', 'up', 'none']}, "'option_labels'"),
        ({'usage': {'prompt_tokens': 'many'}}, "'usage'"),
    ],
)
def test_a_malformed_record_is_refused_with_the_key(change: dict[str, Any], message: str) -> None:
    data = {**viewpoint().to_json_dict(), **change}
    with pytest.raises(ValueError, match=message):
        AnswerRecord.from_json_dict(data)


def test_a_missing_key_or_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match='unknown kind'):
        record_from_json_dict({**viewpoint().to_json_dict(), 'kind': 'other'})
    data = viewpoint().to_json_dict()
    del data['truth_letter']
    with pytest.raises(ValueError, match="no 'truth_letter'"):
        AnswerRecord.from_json_dict(data)
    with pytest.raises(ValueError, match="no 'image_1'"):
        AnswerRow.from_json_dict(viewpoint().to_json_dict())
