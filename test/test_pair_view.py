"""Tests of actial_ros.pair_view.render_pair_view: layout, pixels, verdict colours, errors."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from answer_records import viewpoint

from actial_ros.enums import AnswerStatus, QuestionType, ViewpointLabel
from actial_ros.errors import ImageError
from actial_ros.pair_view import CORRECT_RGB, GAP, PANEL_HEIGHT, UNSCORED_RGB, WRONG_RGB, render_pair_view

RECORD = viewpoint(
    question_type=QuestionType.ROTATION,
    question='Did the camera rotate left or right?',
    answer_letter='A',
    answer=ViewpointLabel.LEFT,
    status=AnswerStatus.ANSWERED,
    truth=ViewpointLabel.LEFT,
    correct=True,
    yaw_deg=-34.0,
    backend='vllm',
)


def test_layout_and_pixels() -> None:
    first = np.full((120, 160, 3), 50, np.uint8)  # 4:3, scaled up to 240 x 320
    second = np.full((480, 320, 3), 200, np.uint8)  # 2:3, scaled down to 240 x 160
    view = render_pair_view(first, second, RECORD)
    assert view.dtype == np.uint8 and view.shape[1] == 320 + GAP + 160 and view.shape[0] > PANEL_HEIGHT
    assert (view[:PANEL_HEIGHT, :320] == 50).all()
    assert (view[:PANEL_HEIGHT, 320 + GAP :] == 200).all()
    assert tuple(view[PANEL_HEIGHT + 1, 1]) == CORRECT_RGB  # the text band's border tells the verdict
    text = view[PANEL_HEIGHT + 8 : -8, 8:-8]
    assert (text > 200).any(), 'no text drawn'


@pytest.mark.parametrize(('correct', 'colour'), [(True, CORRECT_RGB), (False, WRONG_RGB), (None, UNSCORED_RGB)])
def test_verdict_colours(correct: bool | None, colour: tuple[int, int, int]) -> None:
    frame = np.zeros((24, 32, 3), np.uint8)
    view = render_pair_view(frame, frame, replace(RECORD, correct=correct))
    assert tuple(view[-1, 0]) == colour


def test_bad_frames_raise() -> None:
    with pytest.raises(ImageError):
        render_pair_view(np.zeros((24, 32), np.uint8), np.zeros((24, 32, 3), np.uint8), RECORD)
