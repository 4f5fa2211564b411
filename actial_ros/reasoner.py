"""The spatial reasoner engine: ingestion, pairing, questions, concurrent backend calls, scoring.

ROS-free: the rclpy node (:mod:`actial_ros.nodes.spatial_reasoner`) is a thin adapter that feeds it
messages and publishes what it emits. Threading model:

* ``submit_*`` methods are O(1): they put a closure on a bounded ingest queue and return, so ROS
  subscription callbacks never decode images, match odometry or wait for a model.
* One ingest thread decodes images, matches odometry, selects pairs and turns each pair into
  questions on the bounded request queue (oldest dropped when full: ``queue_full``).
* ``max_in_flight`` worker threads call the backend. Requests older than ``max_request_age_s`` when a
  worker picks them up are dropped (``stale``). A failing backend only produces ``error`` records.
* Every answer record (:class:`~actial_ros.records.AnswerRecord` or :class:`~actial_ros.records.AskRecord`) goes to
  the ``on_answer`` callback from a worker thread.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

from actial_ros.backends.base import Backend, BackendAnswer
from actial_ros.enums import DropReason, QuestionType
from actial_ros.errors import ActialError, ConfigError
from actial_ros.frame import CameraIntrinsics, Frame, Pair
from actial_ros.geometry import LabelThresholds, viewpoint_label
from actial_ros.pairing import BufferLimits, DropCounter, OdometryMatchPolicy, PairingBuffer, PairPolicy
from actial_ros.questions import Question, make_question
from actial_ros.records import AnswerRecord, Record, answer_record, ask_record, internal_error_reason
from actial_ros.scoring import ScoreBoard

__all__ = [
    'ASPECT_TOLERANCE',
    'CAMERA_INFO_SIZE_POLICIES',
    'ReasonerConfig',
    'ReasonerStats',
    'SpatialReasoner',
]

_LOG = logging.getLogger(__name__)

AnswerCallback = Callable[[Record], None]

CAMERA_INFO_SIZE_POLICIES = ('rescale', 'refuse')
"""Values of :attr:`ReasonerConfig.camera_info_size_policy`."""
ASPECT_TOLERANCE = 0.01
"""Largest relative difference of width/height between an image and its CameraInfo that is rescaled (1 %:
a resize rounds a side by at most a pixel or two; a crop or another camera's calibration differs more)."""


class _Mismatch:
    """Marks an image whose size its CameraInfo does not fit (:meth:`SpatialReasoner._fit_intrinsics`)."""


_MISMATCH = _Mismatch()


@dataclass(frozen=True, slots=True)
class ReasonerConfig:
    """Configuration of :class:`SpatialReasoner` (the node maps its parameters onto this).

    Attributes:
        question_types: viewpoint questions asked about every pair.
        thresholds: label thresholds for the ground truth.
        pair_policy, match_policy, limits: see :mod:`actial_ros.pairing`.
        max_in_flight: backend requests running at once (worker threads).
        max_queue: questions waiting for a worker; the oldest is dropped beyond it.
        max_request_age_s: a question older than this (seconds, wall clock) when a worker is free is
            dropped as stale.
        ingest_queue_size: messages waiting for the ingest thread; newer ones are dropped beyond it.
        seed: seeds the option shuffling.
        camera_info_size_policy: what to do with an image whose size differs from its CameraInfo's
            ``width`` x ``height`` (a driver publishing a binned or resized stream with the sensor's
            calibration): ``'rescale'`` scales the intrinsics when the aspect ratios agree within
            :data:`ASPECT_TOLERANCE` (counted as the warning ``camera_info_rescaled``) and drops the image
            otherwise; ``'refuse'`` drops every such image. Drops count as ``camera_info_size_mismatch``.
    """

    question_types: tuple[QuestionType, ...] = tuple(QuestionType)
    thresholds: LabelThresholds = field(default_factory=LabelThresholds)
    pair_policy: PairPolicy = field(default_factory=PairPolicy)
    match_policy: OdometryMatchPolicy = field(default_factory=OdometryMatchPolicy)
    limits: BufferLimits = field(default_factory=BufferLimits)
    max_in_flight: int = 4
    max_queue: int = 64
    max_request_age_s: float = 30.0
    ingest_queue_size: int = 256
    seed: int = 0
    camera_info_size_policy: str = 'rescale'

    def __post_init__(self) -> None:
        if not self.question_types:
            raise ConfigError('at least one question type is required')
        if self.max_in_flight < 1 or self.max_queue < 1 or self.ingest_queue_size < 1:
            raise ConfigError('max_in_flight, max_queue and ingest_queue_size must be >= 1')
        if not self.max_request_age_s > 0:
            raise ConfigError(f'max_request_age_s must be > 0, got {self.max_request_age_s}')
        if self.camera_info_size_policy not in CAMERA_INFO_SIZE_POLICIES:
            raise ConfigError(
                f'camera_info_size_policy must be one of {list(CAMERA_INFO_SIZE_POLICIES)}, '
                f'got {self.camera_info_size_policy!r}'
            )


@dataclass(frozen=True, slots=True)
class ReasonerStats:
    """A snapshot for diagnostics.

    Attributes:
        images_received, odometry_received: messages submitted.
        frames_posed, pairs_made: frames that got a pose; pairs emitted.
        questions_queued, in_flight, requests_done: request queue depth, running requests, finished.
        drops: drop counts by reason (ingestion, pairing and requests).
        warnings: counts of handled irregularities that lost nothing (e.g. ``camera_info_rescaled``).
        buffer: frames, pending, bytes and odometry samples held.
        last_error: the last backend error message, or ''.
    """

    images_received: int
    odometry_received: int
    frames_posed: int
    pairs_made: int
    questions_queued: int
    in_flight: int
    requests_done: int
    drops: dict[str, int]
    buffer: dict[str, int]
    last_error: str
    warnings: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _ViewpointRequest:
    """A viewpoint question about a pair (``created``: :func:`time.monotonic` when queued)."""

    pair: Pair
    question: Question
    created: float


@dataclass(frozen=True, slots=True)
class _AskRequest:
    """A free-form question about ``frames`` (see :meth:`SpatialReasoner.submit_ask`); always answered."""

    ask_id: str
    prompt: str
    frames: list[Frame]
    created: float
    on_stage: Callable[[str], None] | None = None
    on_text: Callable[[str], None] | None = None


_Request: TypeAlias = _ViewpointRequest | _AskRequest


class SpatialReasoner:
    """Turns a stream of images and odometry into scored viewpoint answers.

    Args:
        backend: the model backend (thread-safe).
        config: engine configuration.
        on_answer: called with every answer record (from a worker thread; must not block long).
        extrinsics: ``T_base_camera_optical`` per camera id (or one for all); ``None``: default.
        on_pair_answer: also called, after ``on_answer``, with the pair (its frames: images and poses) and
            the record of every viewpoint answer, from a worker thread (visualisation: keep it cheap or
            skip it when nobody looks).

    Call :meth:`start` before submitting and :meth:`stop` at the end.
    """

    def __init__(
        self,
        *,
        backend: Backend,
        config: ReasonerConfig,
        on_answer: AnswerCallback,
        extrinsics: Any = None,
        on_pair_answer: Callable[[Pair, AnswerRecord], None] | None = None,
    ) -> None:
        self._backend = backend
        self._config = config
        self._on_answer = on_answer
        self._on_pair_answer = on_pair_answer
        self.buffer = PairingBuffer(
            extrinsics=extrinsics,
            pair_policy=config.pair_policy,
            match_policy=config.match_policy,
            limits=config.limits,
        )
        self.scores = ScoreBoard()
        self._drops = DropCounter()
        """The drops the engine and its caller cause (the buffer counts its own): see :meth:`drops`."""
        self.warnings = DropCounter()
        """Counts of handled irregularities that lost nothing, by name (see :class:`ReasonerStats`)."""
        self._rng = random.Random(config.seed)
        self._ingest: queue.Queue[Callable[[], None] | None] = queue.Queue(maxsize=config.ingest_queue_size)
        self._requests: deque[_Request] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._in_flight = 0
        self._done = 0
        self._images = 0
        self._odometry = 0
        self._last_error = ''
        self._threads: list[threading.Thread] = []

    # -- life cycle ----------------------------------------------------------------------------

    @property
    def config(self) -> ReasonerConfig:
        """The configuration in force."""
        return self._config

    def reconfigure(self, config: ReasonerConfig) -> None:
        """Apply a new configuration live (policies, thresholds, bounds except ``max_in_flight``,
        ``ingest_queue_size`` and ``limits``, which need a restart)."""
        self.buffer.set_pair_policy(config.pair_policy)
        self.buffer.set_match_policy(config.match_policy)
        with self._cond:
            self._config = config

    def start(self) -> None:
        """Start the ingest thread and ``max_in_flight`` worker threads (daemon threads)."""
        if self._threads:
            return
        ingest = threading.Thread(target=self._ingest_loop, name='actial-ingest', daemon=True)
        self._threads.append(ingest)
        for index in range(self._config.max_in_flight):
            worker = threading.Thread(target=self._worker_loop, name=f'actial-worker-{index}', daemon=True)
            self._threads.append(worker)
        for thread in self._threads:
            thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop threads; queued questions are dropped (``shutdown``). Waits up to ``timeout_s`` for
        running requests. Idempotent."""
        with self._cond:
            if self._stopping:
                return
            self._stopping = True
            dropped = len(self._requests)
            self._requests.clear()
            self._cond.notify_all()
        if dropped:
            self.count_drop(DropReason.SHUTDOWN, dropped)
        with contextlib.suppress(queue.Full):
            self._ingest.put_nowait(None)
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    # -- submission (O(1), safe from ROS callbacks) ----------------------------------------------

    def submit_image(
        self,
        *,
        camera_id: str,
        stamp_ns: int,
        decode: Callable[[], npt.NDArray[np.uint8]],
        intrinsics: CameraIntrinsics | None,
        name: str = '',
    ) -> bool:
        """Queue an image for ingestion; ``decode`` runs later on the ingest thread.

        ``decode`` returns ``(H, W, 3)`` uint8 RGB or raises :class:`ActialError` (``bad_image``).
        Returns False when the ingest queue is full (counted as ``ingest_queue_full``).
        """
        self._images += 1

        def ingest() -> None:
            try:
                image = decode()
                fitted = self._fit_intrinsics(intrinsics, image)
                if fitted is _MISMATCH:
                    self.count_drop(DropReason.CAMERA_INFO_SIZE_MISMATCH)
                    _LOG.warning(
                        'dropped an image from %s at %d: %dx%d, CameraInfo says %s (camera_info_size_policy=%s)',
                        camera_id,
                        stamp_ns,
                        image.shape[1],
                        image.shape[0],
                        intrinsics and f'{intrinsics.width}x{intrinsics.height}',
                        self._config.camera_info_size_policy,
                    )
                    return
                assert not isinstance(fitted, _Mismatch)
                frame = Frame(image=image, stamp_ns=stamp_ns, intrinsics=fitted, camera_id=camera_id, name=name)
            except (ActialError, ValueError) as error:
                self.count_drop(DropReason.BAD_IMAGE)
                _LOG.warning('dropped an image from %s at %d: %s', camera_id, stamp_ns, error)
                return
            self._enqueue_pairs(self.buffer.add_frame(frame))

        return self._put(ingest)

    def submit_odometry(self, *, stamp_ns: int, decode: Callable[[], npt.NDArray[np.float64]]) -> bool:
        """Queue an odometry sample; ``decode`` returns ``T_odom_base`` ``(4, 4)`` or raises
        :class:`ActialError` / ``ValueError`` (``bad_odometry``)."""
        self._odometry += 1

        def ingest() -> None:
            try:
                pose = decode()
            except (ActialError, ValueError) as error:
                self.count_drop(DropReason.BAD_ODOMETRY)
                _LOG.warning('dropped odometry at %d: %s', stamp_ns, error)
                return
            self._enqueue_pairs(self.buffer.add_odometry(stamp_ns, pose))

        return self._put(ingest)

    def submit_ask(
        self,
        *,
        ask_id: str,
        prompt: str,
        target: str = 'pair',
        camera_id: str | None = None,
        on_stage: Callable[[str], None] | None = None,
        on_text: Callable[[str], None] | None = None,
    ) -> bool:
        """Queue a free-form question about the latest pair (``target='pair'``) or frame
        (``'frame'``; of ``camera_id`` when given). Answered on ``on_answer`` with ``kind='ask'`` and the
        same id, always: also when no frame exists yet, the request goes stale, the queue overflows or the
        engine stops (``status`` ``error`` with the reason). ``on_stage('asking')`` is called from the
        worker thread when the backend starts on it; ``on_text(reply so far)`` as a streaming backend
        (:attr:`~actial_ros.backends.base.Backend.streams`) generates it. Returns False when the ingest
        queue is full (then nothing is emitted: the caller answers)."""

        def ingest() -> None:
            frames: list[Frame] = []
            pair = self.buffer.latest_pair if target == 'pair' else None
            if pair is not None:
                frames = [pair.frame_1, pair.frame_2]
            else:
                latest = self.buffer.latest_frame(camera_id)
                if latest is not None and (camera_id is None or latest.camera_id == camera_id):
                    frames = [latest]
            if not frames:
                self._emit(ask_record(ask_id, prompt, [], None, self._backend.name, 'no frames received yet'))
                return
            self._push(
                _AskRequest(
                    ask_id=ask_id,
                    prompt=prompt,
                    frames=frames,
                    created=time.monotonic(),
                    on_stage=on_stage,
                    on_text=on_text,
                )
            )

        return self._put(ingest)

    # -- introspection -------------------------------------------------------------------------

    def stats(self) -> ReasonerStats:
        """A consistent-enough snapshot for diagnostics."""
        with self._cond:
            queued, in_flight, done, last_error = len(self._requests), self._in_flight, self._done, self._last_error
        return ReasonerStats(
            images_received=self._images,
            odometry_received=self._odometry,
            frames_posed=self.buffer.frames_posed,
            pairs_made=self.buffer.pairs_made,
            questions_queued=queued,
            in_flight=in_flight,
            requests_done=done,
            drops=self.drops(),
            buffer=self.buffer.counts(),
            last_error=last_error,
            warnings=self.warnings.snapshot(),
        )

    def count_drop(self, reason: DropReason, count: int = 1) -> None:
        """Count ``count`` drops under ``reason`` that happened outside the pairing buffer: in the engine
        (stale, queue full, backend error, ...) or in its caller before submission (the node: a bad stamp,
        no extrinsic, no CameraInfo)."""
        self._drops.add(reason, count)

    def drops(self) -> dict[str, int]:
        """All drops so far by reason (only reasons seen): the pairing buffer's and :meth:`count_drop`'s
        together. The one reading of drop counts (:attr:`ReasonerStats.drops` is this)."""
        merged = Counter(self.buffer.drops.snapshot())
        merged.update(self._drops.snapshot())
        return dict(merged)

    def idle(self) -> bool:
        """True when nothing is waiting to be ingested, queued or running."""
        with self._cond:
            busy = bool(self._requests) or self._in_flight > 0
        return not busy and self._ingest.unfinished_tasks == 0

    # -- internals -----------------------------------------------------------------------------

    def _fit_intrinsics(
        self, intrinsics: CameraIntrinsics | None, image: npt.NDArray[np.uint8]
    ) -> CameraIntrinsics | _Mismatch | None:
        """Intrinsics for the decoded image's size per ``camera_info_size_policy``, or :data:`_MISMATCH`."""
        if intrinsics is None:
            return None
        height, width = image.shape[:2]
        if (intrinsics.width, intrinsics.height) == (width, height):
            return intrinsics
        if self._config.camera_info_size_policy == 'refuse':
            return _MISMATCH
        aspect_image, aspect_info = width / height, intrinsics.width / intrinsics.height
        if abs(aspect_image / aspect_info - 1.0) > ASPECT_TOLERANCE:
            return _MISMATCH
        self.warnings.add('camera_info_rescaled')
        return intrinsics.scaled(width, height)

    def _put(self, job: Callable[[], None]) -> bool:
        try:
            self._ingest.put_nowait(job)
        except queue.Full:
            self.count_drop(DropReason.INGEST_QUEUE_FULL)
            return False
        return True

    def _ingest_loop(self) -> None:
        while True:
            job = self._ingest.get()
            try:
                if job is None:
                    return
                job()
            except Exception:  # a bug must not kill ingestion: counted, logged with its traceback
                self.count_drop(DropReason.INTERNAL_ERROR)
                _LOG.exception('ingest job failed')
            finally:
                self._ingest.task_done()

    def _enqueue_pairs(self, pairs: Sequence[Pair]) -> None:
        config = self._config
        for pair in pairs:
            for kind in config.question_types:
                truth = None if pair.relative is None else viewpoint_label(kind, pair.relative, config.thresholds)
                question = make_question(kind, truth, self._rng)
                self._push(_ViewpointRequest(pair=pair, question=question, created=time.monotonic()))

    def _push(self, request: _Request) -> None:
        with self._cond:
            if self._stopping:
                self._drop_request(request, DropReason.SHUTDOWN)
                return
            self._requests.append(request)
            while len(self._requests) > self._config.max_queue:
                self._drop_request(self._requests.popleft(), DropReason.QUEUE_FULL)
            self._cond.notify()

    def _drop_request(self, request: _Request, reason: DropReason) -> None:
        """Count a dropped request; a free-form ask still gets its (error) answer."""
        self.count_drop(reason)
        if isinstance(request, _AskRequest):
            self._emit_ask_error(request, f'dropped: {reason.value}')

    def _emit_ask_error(self, request: _AskRequest, reason: str) -> None:
        """Answer ``request`` with an error (its waiter is told ``reason``)."""
        self._emit(ask_record(request.ask_id, request.prompt, request.frames, None, self._backend.name, reason))

    def _worker_loop(self) -> None:
        while True:
            with self._cond:
                while not self._requests and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                request = self._requests.popleft()
                if time.monotonic() - request.created > self._config.max_request_age_s:
                    self._drop_request(request, DropReason.STALE)
                    continue
                self._in_flight += 1
            try:
                if isinstance(request, _AskRequest):
                    self._run_ask(request)
                else:
                    self._run_viewpoint(request)
            except Exception as exc:  # never let a worker die: counted, logged with its traceback
                self.count_drop(DropReason.INTERNAL_ERROR)
                _LOG.exception('request failed unexpectedly')
                if isinstance(request, _AskRequest):  # every ask is answered, also this one (its waiter is told why)
                    self._emit_ask_error(request, internal_error_reason(exc))
            finally:
                with self._cond:
                    self._in_flight -= 1
                    self._done += 1

    def _run_ask(self, request: _AskRequest) -> None:
        if request.on_stage is not None:
            request.on_stage('asking')
        backend = self._backend
        started = time.monotonic()
        try:
            if request.on_text is not None and backend.streams:
                reply: BackendAnswer | None = backend.ask(request.frames, request.prompt, on_text=request.on_text)  # type: ignore[call-arg]
            else:
                reply = backend.ask(request.frames, request.prompt)
            error = None
        except ActialError as exc:
            reply, error = None, str(exc)
            self._note_error(error)
        self._emit(
            ask_record(
                request.ask_id,
                request.prompt,
                request.frames,
                reply,
                backend.name,
                error,
                time.monotonic() - started,
            )
        )

    def _run_viewpoint(self, request: _ViewpointRequest) -> None:
        backend = self._backend
        started = time.monotonic()
        try:
            reply: BackendAnswer | None = backend.answer(request.pair, request.question)
            error = None
        except ActialError as exc:
            reply, error = None, str(exc)
            self.count_drop(DropReason.BACKEND_ERROR)
            self._note_error(error)
        record = answer_record(
            request.pair,
            request.question,
            reply,
            backend=backend.name,
            error=error,
            latency_s=time.monotonic() - started,
        )
        self.scores.add(record)
        self._emit(record)
        if self._on_pair_answer is not None:
            try:
                self._on_pair_answer(request.pair, record)
            except Exception:
                _LOG.exception('pair answer callback failed')

    def _note_error(self, message: str) -> None:
        with self._cond:
            self._last_error = message

    def _emit(self, record: Record) -> None:
        try:
            self._on_answer(record)
        except Exception:
            _LOG.exception('answer callback failed')
