"""The demo's HTML report, opened in headless Chromium (Debian's chromium; scripts/install_test_browser.sh
installs it in `make test`): the page shows the accuracy table, one card per pair with both frames' images
actually displayed, and each question's answer, truth and verdict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
from answer_records import viewpoint
from browser import Dom, chromium, needs_chromium

from actial_ros.enums import AnswerStatus, QuestionType, ViewpointLabel
from actial_ros.records import AnswerRow
from actial_ros.report import write_report

MAGENTA = (255, 0, 255)
CYAN = (0, 255, 255)


def _row(pair_id: int, kind: str, answer: str | None, truth: str, correct: bool | None) -> AnswerRow:
    record = viewpoint(
        pair_id=pair_id,
        camera_1='camera',
        camera_2='camera',
        question_type=QuestionType(kind),
        question=f'Did the camera {kind}? <b>not bold</b>',
        answer_letter=None if answer is None else 'A',
        answer=None if answer is None else ViewpointLabel(answer),
        status=AnswerStatus.ANSWERED if answer else AnswerStatus.ABSTAINED,
        truth=ViewpointLabel(truth),
        correct=correct,
        yaw_deg=-30.0,
        t12=(0.3, -0.05, 0.4),  # to the right and ahead (camera 1 optical frame: x right, z forward)
        latency_s=0.1,
        backend='geometry',
    )
    return AnswerRow(record, image_1=f'a{pair_id}.jpg', image_2=f'b{pair_id}.jpg')


ROWS = [
    _row(1, 'rotation', 'left', 'left', True),
    _row(1, 'ego_translation', 'left', 'right', False),
    _row(2, 'rotation', None, 'right', None),
]


def load_frame(camera: str, name: str) -> Any:
    colour = MAGENTA if name.startswith('a') else CYAN
    return np.full((240, 320, 3), colour, dtype=np.uint8)


@needs_chromium
def test_report_shows_accuracy_pairs_frames_and_verdicts(tmp_path: Path) -> None:
    report = write_report(tmp_path / 'report.html', ROWS, load_frame=load_frame, title='test report')
    dom = chromium('--dump-dom', report.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    parsed = Dom()
    parsed.feed(dom.stdout)
    accuracy = ' '.join(parsed.texts['accuracy'])
    assert 'rotation' in accuracy and '100.0 % (1/1)' in accuracy  # pair 2's rotation abstained
    assert 'ego_translation' in accuracy and '0.0 % (0/1)' in accuracy
    assert '50.0 % (1/2)' in accuracy  # all
    assert 'pair-1' in parsed.texts and 'pair-2' in parsed.texts
    assert parsed.images == 4 and parsed.pair_images == {'pair-1': 2, 'pair-2': 2}
    assert parsed.external == []  # one file: nothing fetched from anywhere

    # Both cameras from above: camera 1 at the centre facing up; camera 2 along (x, z) = (0.3, 0.4), i.e.
    # right and up on the page, turned 30 degrees to its left (the wedge opens up and to the left).
    for first, second in zip(parsed.polygons['camera-1'], parsed.polygons['camera-2'], strict=True):
        apex_1, *base_1 = (np.array([float(v) for v in p.split(',')]) for p in first.split())
        apex_2, *base_2 = (np.array([float(v) for v in p.split(',')]) for p in second.split())
        np.testing.assert_allclose(
            (np.mean(base_1, axis=0) - apex_1) / np.linalg.norm(np.mean(base_1, axis=0) - apex_1), [0, -1], atol=1e-3
        )
        offset = apex_2 - apex_1
        np.testing.assert_allclose(offset / np.linalg.norm(offset), [0.6, -0.8], atol=1e-3)
        axis = np.mean(base_2, axis=0) - apex_2
        np.testing.assert_allclose(axis / np.linalg.norm(axis), [-0.5, -np.sqrt(3) / 2], atol=1e-3)
    assert len(parsed.polygons['camera-2']) == 2
    assert parsed.verdicts == ['correct', 'wrong', 'unscored']
    assert '<b>not bold</b>' in ' '.join(parsed.texts['question-text'])  # escaped text, not markup

    # The browser displays the embedded frames: the screenshot holds both solid colours, each about the
    # area of two 320x240 thumbnails (JPEG edges and scaling aside).
    shot = tmp_path / 'shot.png'
    result = chromium('--window-size=1200,2400', f'--screenshot={shot}', report.as_uri())
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    bgr = cv2.imread(str(shot))
    assert bgr is not None
    pixels = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(int)
    for colour in (MAGENTA, CYAN):
        near = (np.abs(pixels - np.array(colour)).sum(axis=2) < 40).sum()
        assert near > 1.5 * 320 * 240, (colour, near)
