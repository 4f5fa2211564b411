"""Pseudo chain-of-thought (correct by construction) and the teacher mode against a fake endpoint."""

from __future__ import annotations

import json
import random
import re
from typing import Any

import numpy as np
import pytest
from actial_ros.training.dataset.cot import pseudo_cot
from actial_ros.training.dataset.pair_selection import yaw_bin_edges
from actial_ros.training.dataset.teacher import Teacher, TeacherConfig, TeacherRequest, TeacherStatus, ground_truth_hint
from actial_ros.training.dataset.viewpoint import YAW_BIN_QUESTION, make_row_question, preamble
from captures import SHARED_CAPTURE
from fake_openai_server import FakeOpenAIServer
from scipy.spatial.transform import Rotation

from actial_ros.answers import matches_output_format, parse_answer
from actial_ros.enums import QuestionType, ViewpointLabel
from actial_ros.geometry import LabelThresholds, relative_pose, viewpoint_label
from actial_ros.sources.llff import LlffPosedCapture

TYPES = [t.value for t in QuestionType] + [YAW_BIN_QUESTION]
EDGES = yaw_bin_edges()
THRESHOLDS = LabelThresholds(translation_m=0.08, yaw_deg=2.0)


@pytest.fixture(scope='module')
def pairs() -> list[Any]:
    if not (SHARED_CAPTURE / 'poses_bounds.npy').is_file():
        pytest.skip('no shared capture')
    poses = LlffPosedCapture.open(SHARED_CAPTURE).poses
    result = []
    for i in range(0, len(poses), 3):
        for j in range(len(poses)):
            rel = relative_pose(poses[i], poses[j])
            if 20 <= rel.abs_yaw_deg <= 100:
                result.append(rel)
    return result


def test_yaw_bin_question() -> None:
    pose = relative_pose(np.eye(4), _turned(-50.0))  # turned LEFT by 50 degrees: bin 3 (46.7-60)
    question = make_row_question(YAW_BIN_QUESTION, pose, THRESHOLDS, EDGES, random.Random(1))
    assert question.answer_label == 'left_3' and len(question.options) == 12 and question.letters == 'ABCDEFGHIJKL'
    assert (
        question.options[question.letters.index(question.answer)]
        == 'The camera rotated to the left by 46.7 to 60.0 degrees'
    )
    assert question.text.startswith(preamble()) and 'L. The camera rotated' in question.text
    assert preamble().startswith('The two images were taken by the same camera')


def _turned(yaw_deg: float, shift_x: float = 0.0) -> np.ndarray:
    """A camera turned by ``yaw_deg`` about its (down-pointing) y axis: positive = to the right."""
    pose = np.eye(4)
    pose[:3, :3] = Rotation.from_euler('y', yaw_deg, degrees=True).as_matrix()
    pose[0, 3] = shift_x
    return pose


def test_cot_is_correct_by_construction_on_real_pairs(pairs: list[Any]) -> None:
    assert len(pairs) > 500
    for index, pose in enumerate(pairs):
        kind = TYPES[index % len(TYPES)]
        rng = random.Random(index)
        question = make_row_question(kind, pose, THRESHOLDS, EDGES, rng)
        cot = pseudo_cot(question, pose, THRESHOLDS, rng)
        assert matches_output_format(cot), cot
        assert parse_answer(cot, letters=question.letters).letter == question.answer
        think = cot.split('</think>')[0]
        assert all(f'Step {k}' in think for k in range(1, 6))
        ego = viewpoint_label(QuestionType.EGO_TRANSLATION, pose, THRESHOLDS)
        rotation = viewpoint_label(QuestionType.ROTATION, pose, THRESHOLDS)
        assert f'a move to the {ego.value}' in think
        assert f'turned to its {rotation.value}' in think
        if {ego, rotation} == {ViewpointLabel.LEFT, ViewpointLabel.RIGHT}:
            sense = 'counter-clockwise' if ego is ViewpointLabel.RIGHT else 'clockwise'
            assert re.search(rf'(?<!-){sense}', think)
        step5 = think.split('Step 5')[1]
        option = question.options[question.letters.index(question.answer)]
        assert f"option {question.answer} ('{option}')" in step5
        if kind == QuestionType.OBJECT_TRANSLATION.value:
            assert f"object's {question.answer_label}" in step5
        elif kind != YAW_BIN_QUESTION:
            assert question.answer_label in step5
    wordings = {
        pseudo_cot(
            make_row_question('rotation', pairs[0], THRESHOLDS, EDGES, random.Random(s)),
            pairs[0],
            THRESHOLDS,
            random.Random(s),
        )
        for s in range(20)
    }
    assert len(wordings) > 5  # varied wording


def test_cot_for_a_camera_turning_in_place() -> None:
    pose = relative_pose(np.eye(4), _turned(30.0))
    rng = random.Random(0)
    question = make_row_question('ego_translation', pose, THRESHOLDS, EDGES, rng)
    assert question.answer_label == 'none'
    cot = pseudo_cot(question, pose, THRESHOLDS, rng, unit='m')
    assert 'did not move sideways' in cot and 'almost in place' in cot and 'turned to its right' in cot
    assert parse_answer(cot).letter == question.answer


def test_teacher_accepts_only_correct_well_formatted_answers() -> None:
    pose = relative_pose(np.eye(4), _turned(-40.0, shift_x=0.5))
    question = make_row_question('rotation', pose, THRESHOLDS, EDGES, random.Random(3))
    wrong = next(letter for letter in question.letters if letter != question.answer)
    hint = ground_truth_hint(question, pose, 'm')
    assert f'option {question.answer}' in hint and 'yaw -40.0 deg' in hint
    request = TeacherRequest(b'\xff\xd8jpeg1\xff\xd9', b'\xff\xd8jpeg2\xff\xd9', question, hint)
    with FakeOpenAIServer(api_key='k', model='teacher') as server:
        config = TeacherConfig(
            base_url=server.base_url, model='teacher', api_key_env='TEST_TEACHER_KEY', max_retries=0, timeout_s=10.0
        )
        import os

        os.environ['TEST_TEACHER_KEY'] = 'k'
        teacher = Teacher(config)
        replies = [
            f'<think> Step 1 ... Step 5: it turned left. </think> <answer>{question.answer}</answer>',
            f'<think> Step 5: it turned right. </think> <answer>{wrong}</answer>',
            f'The answer is {question.answer}',
            '<think> ok </think>',
        ]
        server.reply = lambda body: replies[len(server.requests) - 1]
        results = [teacher.ask(request) for _ in replies]
        server.fail_next(1)
        results.append(teacher.ask(request))
        teacher.close()
    assert [r.status for r in results] == [
        TeacherStatus.ACCEPTED,
        TeacherStatus.WRONG_ANSWER,
        TeacherStatus.BAD_FORMAT,
        TeacherStatus.BAD_FORMAT,
        TeacherStatus.ERROR,
    ]
    assert results[0].text == replies[0] and all(r.text is None for r in results[1:])
    body = server.requests[0]
    assert body['model'] == 'teacher' and body['temperature'] == 0.0
    content = body['messages'][1]['content']
    assert [part['type'] for part in content] == ['image_url', 'image_url', 'text']
    assert content[0]['image_url']['url'].startswith('data:image/jpeg;base64,')
    assert question.text in content[2]['text'] and hint in content[2]['text']
    assert 'five steps' in body['messages'][0]['content']
    json.dumps(body)  # the request is plain JSON
