"""The ground-truth pose record (JSON lines) and checking answers against it."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from answer_records import ask, viewpoint

from actial_ros.enums import AnswerStatus, QuestionType, ViewpointLabel
from actial_ros.errors import ConfigError, PoseError
from actial_ros.geometry import LabelThresholds, base_to_optical_extrinsic, camera_pose_from_odometry, relative_pose
from actial_ros.geometry import viewpoint_label as label_of
from actial_ros.records import AnswerRecord, Record
from actial_ros.simulation.record import PoseRecord, PoseRecordWriter, read_pose_record
from actial_ros.simulation.trajectory import OrbitTrajectory
from actial_ros.simulation.truth import YAW_BINS, accuracy_by_yaw_bin, check_answers

EXTRINSIC = base_to_optical_extrinsic()
ORBIT = OrbitTrajectory(radius_m=1.5, speed_deg_s=30.0)


def _write(path: Path, frames: int = 10, *, complete: bool = True) -> None:
    writer = PoseRecordWriter(path, {'extrinsic': [float(v) for v in EXTRINSIC.reshape(-1)], 'note': 'x'})
    for i in range(frames):
        base = ORBIT.base_pose(i * 0.5)
        writer.add(i, 1_000_000_000 + i * 500_000_000, camera_pose_from_odometry(base, EXTRINSIC), base)
    writer.close(complete=complete)


def test_record_round_trip_and_partial_reads(tmp_path: Path) -> None:
    path = tmp_path / 'sub' / 'record.jsonl'
    _write(path)
    record = read_pose_record(path)
    assert record.complete and len(record) == 10 and record.meta['note'] == 'x' and record.meta['version'] == 1
    np.testing.assert_array_equal(record.extrinsic, EXTRINSIC)
    frame = record.by_stamp()[1_500_000_000]
    assert frame.index == 1
    np.testing.assert_allclose(frame.t_world_base, ORBIT.base_pose(0.5), atol=1e-15)
    lines = path.read_text().splitlines()
    assert json.loads(lines[-1]) == {'kind': 'end', 'frames': 10}
    # A run still being written: the last line is incomplete and ignored; no end line yet.
    partial = tmp_path / 'partial.jsonl'
    partial.write_text('\n'.join(lines[:4]) + '\n' + lines[4][:30])
    assert [f.index for f in read_pose_record(partial)] == [0, 1, 2] and not read_pose_record(partial).complete
    broken = tmp_path / 'broken.jsonl'
    broken.write_text(lines[0] + '\n{"kind": "frame"}\n')
    with pytest.raises(ConfigError, match=':2'):
        read_pose_record(broken)
    (tmp_path / 'nometa.jsonl').write_text(lines[1] + '\n')
    with pytest.raises(ConfigError, match='meta'):
        read_pose_record(tmp_path / 'nometa.jsonl')
    writer = PoseRecordWriter(tmp_path / 'w.jsonl', {})
    with pytest.raises(PoseError):
        writer.add(0, 0, np.eye(3), np.eye(4))
    writer.close()
    with pytest.raises(ConfigError, match='closed'):
        writer.add(1, 1, np.eye(4), np.eye(4))
    with pytest.raises(RuntimeError), PoseRecordWriter(tmp_path / 'failed.jsonl', {}):
        raise RuntimeError  # the writer exits with an exception: no end line
    assert not read_pose_record(tmp_path / 'failed.jsonl').complete


def _answer(
    record: PoseRecord, i: int, j: int, kind: str, *, status: str = 'answered', answer: str | None = None
) -> AnswerRecord:
    frames = record.frames
    pose = relative_pose(frames[i].t_world_camera, frames[j].t_world_camera)
    truth = label_of(kind, pose, LabelThresholds())
    x, y, z = pose.translation.tolist()
    return viewpoint(
        id=f'{i}-{j}:{kind}',
        stamp_1=frames[i].stamp_ns,
        stamp_2=frames[j].stamp_ns,
        question_type=QuestionType(kind),
        yaw_deg=pose.yaw_deg,
        t12=(x, y, z),
        truth=truth,
        status=AnswerStatus(status),
        answer=truth if answer is None else ViewpointLabel(answer),
    )


def test_answers_are_checked_against_the_record(tmp_path: Path) -> None:
    _write(tmp_path / 'r.jsonl')
    record = read_pose_record(tmp_path / 'r.jsonl')
    good: list[Record] = [
        _answer(record, 0, 2, 'rotation'),
        _answer(record, 1, 5, 'ego_translation'),
        _answer(record, 3, 4, 'object_translation'),
        ask(id='q'),
    ]
    assert check_answers(good, record) == []
    first, second, third = (answer for answer in good if isinstance(answer, AnswerRecord))
    wrong_truth = replace(first, truth=ViewpointLabel.RIGHT)
    wrong_yaw = replace(second, yaw_deg=float(second.yaw_deg or 0.0) + 0.01)
    wrong_t12 = replace(third, t12=(0.0, 0.0, 0.0))
    unknown = replace(first, stamp_2=123)
    problems = check_answers([wrong_truth, wrong_yaw, wrong_t12, unknown], record)
    assert len(problems) == 4
    assert 'truth' in problems[0] and 'yaw' in problems[1] and 't12' in problems[2] and 'not frames' in problems[3]


def test_accuracy_per_yaw_bin() -> None:
    def answer(yaw: float, status: str, correct: bool = True) -> AnswerRecord:
        return viewpoint(
            yaw_deg=yaw,
            status=AnswerStatus(status),
            truth=ViewpointLabel.LEFT,
            answer=(ViewpointLabel.LEFT if correct else ViewpointLabel.RIGHT) if status == 'answered' else None,
            correct=status == 'answered' and correct,
            question_type=QuestionType.ROTATION,
        )

    answers = [
        answer(-25, 'answered'),
        answer(30, 'answered', False),
        answer(39.9, 'abstained'),
        answer(45, 'abstained'),
        answer(100, 'answered'),
        answer(10, 'answered'),
        answer(70, 'unparsed'),
        answer(75, 'error'),
    ]
    stats = accuracy_by_yaw_bin(answers)
    assert [(s.low, s.high) for s in stats] == list(YAW_BINS)
    first, second, third, fourth = stats
    assert (first.asked, first.answered, first.correct, first.abstained) == (3, 2, 1, 1)
    assert first.accuracy == 0.5 and first.abstention_rate == pytest.approx(1 / 3)
    assert (second.asked, second.abstained, second.accuracy, second.abstention_rate) == (1, 1, None, 1.0)
    assert (third.unparsed, third.errors) == (1, 1)
    assert third.accuracy == 0.0  # an unparsed reply counts as wrong, as in the node's and the demo's tallies
    assert fourth.asked == 1 and fourth.accuracy == 1.0  # 100 degrees belongs to the last bin
    assert fourth.as_dict()['bin_deg'] == [80.0, 100.0]
    assert accuracy_by_yaw_bin(answers, question_type='ego_translation')[0].asked == 0
