"""The ROS-free reasoner engine: ingestion off the caller's thread, bounded concurrency, stale drops,
error handling and scoring.

The backend here is a scripted test double (``ScriptedBackend``): the engine's concurrency and failure
handling are what is under test, and a real server cannot be made slow or broken on demand. The real
backends have their own tests (test/backends/), and the node runs end to end in test/nodes/.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import pytest
from captures import SAMPLE_CAPTURE

from actial_ros.backends.base import Backend, BackendAnswer
from actial_ros.enums import AnswerStatus, DropReason, QuestionType
from actial_ros.errors import BackendError, ImageError
from actial_ros.frame import CameraIntrinsics, Frame, Pair
from actial_ros.geometry import base_to_optical_extrinsic, invert_transform
from actial_ros.pairing import PairPolicy
from actial_ros.questions import Question
from actial_ros.reasoner import ReasonerConfig, SpatialReasoner
from actial_ros.records import Record
from actial_ros.sources.llff import LlffCapture

_T = TypeVar('_T')


def constant(value: _T) -> Callable[[], _T]:
    """A decode callback returning ``value`` (what the node's callbacks hand the engine)."""
    return lambda: value


class ScriptedBackend(Backend):
    """Test double: answers the truth (or a fixed letter), optionally slowly or by raising."""

    name = 'scripted'

    def __init__(self, *, delay_s: float = 0.0, fail: bool = False, letter: str | None = None) -> None:
        self.delay_s = delay_s
        self.fail = fail
        self.letter = letter
        self.calls = 0
        self.concurrent = 0
        self.max_concurrent = 0
        self._lock = threading.Lock()
        self.release = threading.Event()
        self.release.set()

    def answer(self, pair: Pair, question: Question) -> BackendAnswer:
        with self._lock:
            self.calls += 1
            self.concurrent += 1
            self.max_concurrent = max(self.max_concurrent, self.concurrent)
        try:
            self.release.wait(30)
            time.sleep(self.delay_s)
            if self.fail:
                raise BackendError('scripted failure')
            letter = self.letter if self.letter is not None else question.answer_letter
            return BackendAnswer(
                backend=self.name, raw_text=f'<answer>{letter}</answer>', letter=letter, latency_s=self.delay_s
            )
        finally:
            with self._lock:
                self.concurrent -= 1

    def ask(self, frames: list[Frame], prompt: str) -> BackendAnswer:
        return BackendAnswer(backend=self.name, raw_text=f'{len(frames)} images: {prompt}', letter=None, latency_s=0.0)


def feed_capture(engine: SpatialReasoner, *, period_ns: int = 250_000_000) -> int:
    """Submit the bundled capture as odometry + images, like the replay does."""
    capture = LlffCapture.open(SAMPLE_CAPTURE)
    base_from_camera = invert_transform(base_to_optical_extrinsic())
    for index in range(len(capture)):
        frame = capture.load_frame(index)
        stamp = (index + 1) * period_ns
        assert frame.t_world_camera is not None
        pose = frame.t_world_camera @ base_from_camera
        engine.submit_odometry(stamp_ns=stamp, decode=constant(pose))
        engine.submit_image(
            camera_id='camera',
            stamp_ns=stamp,
            decode=constant(frame.image),
            intrinsics=frame.intrinsics,
            name=frame.name,
        )
    return len(capture)


def wait_idle(engine: SpatialReasoner, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not engine.idle():
        assert time.monotonic() < deadline, 'engine did not become idle'
        time.sleep(0.01)


def run_engine(backend: Backend, **config: Any) -> tuple[SpatialReasoner, list[dict[str, Any]]]:
    records: list[dict[str, Any]] = []
    lock = threading.Lock()

    def on_answer(record: Record) -> None:
        with lock:
            records.append(record.to_json_dict())

    engine = SpatialReasoner(backend=backend, config=ReasonerConfig(**config), on_answer=on_answer)
    engine.start()
    return engine, records


def test_truthful_backend_scores_100_percent_on_the_capture() -> None:
    engine, records = run_engine(ScriptedBackend())
    try:
        feed_capture(engine)
        wait_idle(engine)
    finally:
        engine.stop()
    stats = engine.stats()
    assert stats.pairs_made > 5
    assert len(records) == 3 * stats.pairs_made
    assert {r['question_type'] for r in records} == {t.value for t in QuestionType}
    for record in records:
        assert record['status'] == AnswerStatus.ANSWERED
        assert record['correct'] is True and record['answer'] == record['truth']
        assert 20 <= abs(record['yaw_deg']) <= 100
        assert record['frame_1'].endswith('.JPG') and record['stamp_1'] < record['stamp_2']
    for score in engine.scores.scores().values():
        assert score.accuracy == 1.0
    # Orbiting the object: the camera's translation and rotation are opposite on every pair.
    by_pair: dict[int, dict[str, str]] = {}
    for record in records:
        by_pair.setdefault(record['pair_id'], {})[record['question_type']] = record['truth']
    for truths in by_pair.values():
        assert truths['ego_translation'] != truths['rotation']
        assert truths['ego_translation'] != truths['object_translation']


def test_wrong_letters_are_scored_wrong_and_unparsed_counted() -> None:
    engine, records = run_engine(ScriptedBackend(letter='Z'))
    try:
        feed_capture(engine)
        wait_idle(engine)
    finally:
        engine.stop()
    assert records and all(r['status'] == AnswerStatus.UNPARSED and r['correct'] is False for r in records)
    assert engine.scores.total().accuracy == 0.0


def test_in_flight_bound_and_queue_bound_hold_with_a_slow_backend() -> None:
    backend = ScriptedBackend()
    backend.release.clear()  # every request blocks until released
    engine, records = run_engine(backend, max_in_flight=2, max_queue=5, pair_policy=PairPolicy(max_frame_uses=10))
    try:
        submitted_at = time.monotonic()
        feed_capture(engine)
        submit_time = time.monotonic() - submitted_at
        time.sleep(0.5)
        stats = engine.stats()
        assert stats.in_flight == 2 and stats.questions_queued == 5
        assert stats.drops.get(DropReason.QUEUE_FULL.value, 0) > 0
        backend.release.set()
        wait_idle(engine)
    finally:
        engine.stop()
    assert backend.max_concurrent == 2
    assert len(records) == 7
    # Submitting never waited for the model (loading the capture from disk dominates).
    assert submit_time < 10.0


def test_stale_requests_are_dropped() -> None:
    backend = ScriptedBackend(delay_s=0.3)
    engine, records = run_engine(backend, max_in_flight=1, max_request_age_s=0.2)
    try:
        feed_capture(engine)
        wait_idle(engine)
    finally:
        engine.stop()
    drops = engine.stats().drops
    assert drops.get(DropReason.STALE.value, 0) > 0
    assert len(records) + drops[DropReason.STALE.value] == 3 * engine.stats().pairs_made


def test_failing_backend_yields_error_records_and_keeps_ingesting() -> None:
    engine, records = run_engine(ScriptedBackend(fail=True))
    try:
        count = feed_capture(engine)
        wait_idle(engine)
    finally:
        engine.stop()
    stats = engine.stats()
    assert stats.frames_posed == count
    assert records and all(r['status'] == AnswerStatus.ERROR and r['correct'] is None for r in records)
    assert stats.drops[DropReason.BACKEND_ERROR.value] == len(records)
    assert 'scripted failure' in stats.last_error


def test_bad_images_and_odometry_are_counted_not_fatal() -> None:
    engine, records = run_engine(ScriptedBackend())

    def bad_image() -> npt.NDArray[np.uint8]:
        raise ImageError('truncated JPEG')

    def bad_pose() -> npt.NDArray[np.float64]:
        raise ValueError('NaN in pose')

    try:
        engine.submit_image(camera_id='camera', stamp_ns=1, decode=bad_image, intrinsics=None)
        engine.submit_odometry(stamp_ns=1, decode=bad_pose)
        feed_capture(engine)
        wait_idle(engine)
    finally:
        engine.stop()
    drops = engine.stats().drops
    assert drops[DropReason.BAD_IMAGE.value] == 1 and drops[DropReason.BAD_ODOMETRY.value] == 1
    assert records


def test_free_form_ask_uses_the_latest_pair() -> None:
    engine, records = run_engine(ScriptedBackend())
    try:
        engine.submit_ask(ask_id='early', prompt='where is the head?')
        wait_idle(engine)
        feed_capture(engine)
        wait_idle(engine)
        engine.submit_ask(ask_id='q1', prompt='Is the camera closer in the second image?')
        engine.submit_ask(ask_id='q2', prompt='Describe the view.', target='frame')
        wait_idle(engine)
    finally:
        engine.stop()
    asks = {r['id']: r for r in records if r['kind'] == 'ask'}
    assert asks['early']['status'] == AnswerStatus.ERROR and 'no frames' in asks['early']['reason']
    assert asks['q1']['raw_text'].startswith('2 images') and len(asks['q1']['stamps']) == 2
    assert asks['q2']['raw_text'].startswith('1 images')


def test_an_ask_whose_callback_fails_is_still_answered() -> None:
    """An exception escaping the worker (here the ask's own ``on_stage``) is counted as ``internal_error``
    and the ask still gets its (error) answer, so an action goal waiting on it is not left to time out."""

    def failing_stage(stage: str) -> None:
        raise RuntimeError(f'stage {stage} broke')

    engine, records = run_engine(ScriptedBackend())
    try:
        feed_capture(engine)
        wait_idle(engine)
        engine.submit_ask(ask_id='q', prompt='Describe the view.', target='frame', on_stage=failing_stage)
        wait_idle(engine)
    finally:
        engine.stop()
    asks = [r for r in records if r['kind'] == 'ask' and r['id'] == 'q']
    assert len(asks) == 1, asks
    assert asks[0]['status'] == AnswerStatus.ERROR
    assert asks[0]['reason'] == 'internal error: RuntimeError: stage asking broke'
    assert engine.stats().drops[DropReason.INTERNAL_ERROR.value] == 1


@pytest.mark.parametrize(
    ('policy', 'info_size', 'posed', 'dropped', 'rescaled'),
    [
        ('rescale', (64, 48), 1, 0, 1),  # same 4:3 aspect: the intrinsics follow the image
        ('rescale', (1920, 1080), 0, 1, 0),  # 16:9 calibration for a 4:3 image: refused
        ('refuse', (64, 48), 0, 1, 0),
        ('refuse', (32, 24), 1, 0, 0),  # sizes agree: nothing to decide
    ],
)
def test_camera_info_size_policy(
    policy: str, info_size: tuple[int, int], posed: int, dropped: int, rescaled: int
) -> None:
    engine, _ = run_engine(ScriptedBackend(), camera_info_size_policy=policy)
    width, height = info_size
    intrinsics = CameraIntrinsics(fx=width, fy=width, cx=width / 2, cy=height / 2, width=width, height=height)
    try:
        engine.submit_odometry(stamp_ns=0, decode=constant(np.eye(4)))
        engine.submit_image(
            camera_id='camera', stamp_ns=0, decode=constant(np.zeros((24, 32, 3), np.uint8)), intrinsics=intrinsics
        )
        wait_idle(engine)
    finally:
        engine.stop()
    stats = engine.stats()
    assert stats.frames_posed == posed
    assert stats.drops.get(DropReason.CAMERA_INFO_SIZE_MISMATCH.value, 0) == dropped
    assert stats.warnings.get('camera_info_rescaled', 0) == rescaled
    frame = engine.buffer.latest_frame()
    if posed:
        assert frame is not None and frame.intrinsics is not None
        assert (frame.intrinsics.width, frame.intrinsics.height) == (32, 24)
        assert frame.intrinsics.fx == pytest.approx(32.0)


@pytest.mark.parametrize(
    'bad',
    [
        {'max_in_flight': 0},
        {'question_types': ()},
        {'max_request_age_s': 0.0},
        {'camera_info_size_policy': 'stretch'},
    ],
)
def test_invalid_config(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ReasonerConfig(**bad)
