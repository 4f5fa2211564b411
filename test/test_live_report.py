"""The node's own report (actial_ros.live_report): the latest pairs' answers and both frames, in bounded memory."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from answer_records import viewpoint
from browser import report_dom

from actial_ros.enums import AnswerStatus, QuestionType, ViewpointLabel
from actial_ros.frame import Frame, Pair
from actial_ros.live_report import LiveReport, frame_name
from actial_ros.records import AnswerRecord


def _frame(k: int, size: tuple[int, int] = (480, 640)) -> Frame:
    image = np.full((*size, 3), (10 * k) % 250, dtype=np.uint8)
    return Frame(image=image, stamp_ns=1_000_000_000 + k * 250_000_000, camera_id='front')


def _record(pair: Pair, kind: str) -> AnswerRecord:
    return viewpoint(
        id=f'{pair.pair_id}:{kind}',
        pair_id=pair.pair_id,
        camera_1=pair.frame_1.camera_id,
        camera_2=pair.frame_2.camera_id,
        stamp_1=pair.frame_1.stamp_ns,
        stamp_2=pair.frame_2.stamp_ns,
        frame_1=pair.frame_1.name,
        frame_2=pair.frame_2.name,
        question_type=QuestionType(kind),
        question=f'{kind}?',
        status=AnswerStatus.ANSWERED,
        answer=ViewpointLabel.LEFT,
        truth=ViewpointLabel.LEFT,
        correct=True,
        yaw_deg=-30.0,
        t12=(0.2, 0.0, 0.1),
    )


def test_frames_are_named_by_camera_and_stamp_unless_they_have_a_name() -> None:
    assert frame_name(_frame(2)) == 'front@1500000000'
    named = Frame(image=np.zeros((2, 2, 3), np.uint8), stamp_ns=5, camera_id='front', name='img_0001.jpg')
    assert frame_name(named) == 'img_0001.jpg'


def test_the_latest_pairs_are_kept_with_their_frames_and_older_ones_dropped(tmp_path: Path) -> None:
    report = LiveReport(max_pairs=3)
    frames = [_frame(k) for k in range(8)]
    for k in range(7):  # pair k: frame k -> frame k + 1, so neighbouring pairs share a frame
        pair = Pair(frame_1=frames[k], frame_2=frames[k + 1], relative=None, pair_id=k)
        for kind in ('rotation', 'ego_translation'):
            report.add(pair, _record(pair, kind))

    assert report.pairs_held == 3 and report.pairs_dropped == 4
    rows = report.rows()
    assert [row.record.pair_id for row in rows] == [4, 4, 5, 5, 6, 6]
    assert rows[0].image_1 == 'front@2000000000' and rows[-1].image_2 == 'front@2750000000'
    # Only the kept pairs' frames are held (4 distinct frames for pairs 4-6), each a thumbnail of 320x240.
    for k in range(8):
        image = report.load_frame('front', frame_name(frames[k]))
        if k < 4:
            assert image is None, k
        else:
            assert image is not None and image.shape == (240, 320, 3)
            assert abs(int(image.mean()) - (10 * k) % 250) <= 2  # the frame's own pixels (JPEG aside)
    assert 0 < report.bytes_held < 4 * 320 * 240 * 3

    page = report_dom(report.write(tmp_path / 'report.html', title='live'))
    assert page.pair_images == {'pair-4': 2, 'pair-5': 2, 'pair-6': 2}
    assert len(page.verdicts) == 6 and page.external == []
    assert '4 older pairs not kept' in (tmp_path / 'report.html').read_text()


def test_workers_adding_answers_at_once_lose_nothing() -> None:
    report = LiveReport(max_pairs=100)
    frames = [_frame(k, (120, 160)) for k in range(41)]
    pairs = [Pair(frame_1=frames[k], frame_2=frames[k + 1], relative=None, pair_id=k) for k in range(40)]

    def work(offset: int) -> None:
        for pair in pairs[offset::4]:
            for kind in ('rotation', 'ego_translation', 'object_translation'):
                report.add(pair, _record(pair, kind))

    threads = [threading.Thread(target=work, args=(offset,)) for offset in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert report.pairs_held == 40 and len(report.rows()) == 120
    assert all(report.load_frame('front', frame_name(frame)) is not None for frame in frames)


def test_a_report_keeps_at_least_one_pair() -> None:
    with pytest.raises(ValueError, match='at least 1'):
        LiveReport(max_pairs=0)


def test_a_late_answer_of_a_dropped_pair_does_not_bring_it_back() -> None:
    report = LiveReport(max_pairs=2)
    frames = [_frame(k, (60, 80)) for k in range(4)]
    pairs = [Pair(frame_1=frames[k], frame_2=frames[k + 1], relative=None, pair_id=k) for k in range(3)]
    for pair in pairs:
        report.add(pair, _record(pair, 'rotation'))
    assert report.pairs_held == 2 and report.pairs_dropped == 1
    report.add(pairs[0], _record(pairs[0], 'ego_translation'))  # a slow worker's answer of the dropped pair 0
    assert report.pairs_held == 2 and report.pairs_dropped == 1
    assert [row.record.pair_id for row in report.rows()] == [1, 2]
    assert report.load_frame('front', frame_name(frames[0])) is None
