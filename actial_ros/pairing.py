"""Frame buffering, odometry matching and the pair policy (ROS-free).

Data flow: images (without pose) and odometry samples go in; posed frames are buffered per camera;
each newly posed frame is offered to the pair policy, which may return a :class:`~actial_ros.frame.Pair`.

Odometry matching follows ``../shared/notes/CONVENTIONS.md``: an image is paired with odometry by its
header stamp, interpolating (position lerp, rotation slerp) between the two nearest odometry samples;
it is never extrapolated beyond a configurable gap. The camera pose is
``T_odom_base(stamp) @ T_base_camera_optical``.

Everything dropped is counted with a :class:`~actial_ros.enums.DropReason`.

Why one module of about 700 lines: the buffer, the odometry matching and the pair policy share one state
machine (a frame waits for odometry, is posed, is offered to the policy, is evicted), its drop counters
and its timeline reset; split apart, each part would need the others' internals.
"""

from __future__ import annotations

import bisect
import math
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from actial_ros.enums import DropReason, StrEnum
from actial_ros.errors import ConfigError
from actial_ros.frame import Frame, Pair
from actial_ros.geometry import (
    base_to_optical_extrinsic,
    interpolate_transform,
    relative_pose,
    validate_transform,
    yaw_deg_from_forward,
)
from actial_ros.timeline import Jump, TimelineGuard

__all__ = [
    'DEFAULT_MAX_EXTRAPOLATION_S',
    'DEFAULT_MAX_INTERPOLATION_GAP_S',
    'DEFAULT_MAX_YAW_DEG',
    'DEFAULT_MIN_YAW_DEG',
    'DEFAULT_PENDING_TIMEOUT_S',
    'DEFAULT_TIME_RESET_S',
    'BufferLimits',
    'CameraStats',
    'DropCounter',
    'OdometryHistory',
    'OdometryMatchPolicy',
    'PairPolicy',
    'PairStrategy',
    'PairingBuffer',
    'validate_yaw_range',
]

FloatArray = npt.NDArray[np.float64]
_NS = 1_000_000_000

# The odometry-matching defaults (seconds), one home for the live node, the recorder and the bag sources.
DEFAULT_MAX_INTERPOLATION_GAP_S = 0.5
"""Largest gap between two odometry samples interpolated over (:attr:`OdometryMatchPolicy.max_interpolation_gap_s`)."""
DEFAULT_MAX_EXTRAPOLATION_S = 0.05
"""Farthest an odometry sample's pose is held (:attr:`OdometryMatchPolicy.max_extrapolation_s`)."""
DEFAULT_PENDING_TIMEOUT_S = 1.0
"""Longest an image waits for later odometry, in stamp time (:attr:`OdometryMatchPolicy.pending_timeout_s`)."""
DEFAULT_TIME_RESET_S = 1.0
"""A stamp jump that makes a stream's stamp a suspect (:attr:`OdometryMatchPolicy.time_reset_s`)."""


class PairStrategy(StrEnum):
    """Which candidate the pair policy picks among those that qualify."""

    RANDOM = 'random'
    """Uniformly at random (seeded): varied yaw over a pair range, like the paper's sampling."""
    NEWEST = 'newest'
    """The most recent qualifying frame (smallest time gap)."""
    WIDEST = 'widest'
    """The qualifying frame with the largest ``|yaw|``."""


class DropCounter:
    """Thread-safe counts of dropped items by :class:`DropReason`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def add(self, reason: DropReason | str, count: int = 1) -> None:
        """Count ``count`` drops under ``reason``."""
        if count:
            with self._lock:
                self._counts[str(reason)] += count

    def snapshot(self) -> dict[str, int]:
        """A copy of the counts, reason -> count (only reasons seen)."""
        with self._lock:
            return dict(self._counts)

    @property
    def total(self) -> int:
        """All drops counted so far."""
        with self._lock:
            return sum(self._counts.values())


@dataclass(frozen=True, slots=True)
class OdometryMatchPolicy:
    """How images are matched to odometry by stamp.

    Attributes:
        max_interpolation_gap_s: two bracketing odometry samples further apart than this (seconds)
            are not interpolated between (``odometry_gap``), unless one is within
            ``max_extrapolation_s`` of the image.
        max_extrapolation_s: an image may take the pose of an odometry sample at most this far
            (seconds) from its stamp when no bracketing pair exists (zero-order hold, never a linear
            extrapolation).
        pending_timeout_s: an image waits for later odometry at most this long, measured in stamp
            time against the newest image stamp of its camera (``odometry_timeout``).
        time_reset_s: a stamp further than this (seconds) from its stream's newest stamp, back or ahead,
            is a suspect (:class:`actial_ros.timeline.TimelineGuard`, one guard per stream: odometry and
            each camera): held until ``time_jump_confirmations`` agreeing suspects confirm the jump (back:
            a time reset, e.g. a simulation restart; all buffers are cleared and ``time_reset`` is
            counted), or dropped as ``time_outlier`` when an ordinary stamp follows (one bogus stamp
            costs only itself).
        time_jump_confirmations: consecutive agreeing suspects that confirm a jump (1: act on the
            first, as before the guard existed).
        history: odometry samples kept.
        reset_grace_s: for this long (wall-clock seconds) after a time reset, messages stamped more than
            ``time_reset_s`` after the new origin are late messages of the old timeline still in flight
            on other topics: they are dropped (``old_timeline``) instead of triggering another reset.
    """

    max_interpolation_gap_s: float = DEFAULT_MAX_INTERPOLATION_GAP_S
    max_extrapolation_s: float = DEFAULT_MAX_EXTRAPOLATION_S
    pending_timeout_s: float = DEFAULT_PENDING_TIMEOUT_S
    time_reset_s: float = DEFAULT_TIME_RESET_S
    time_jump_confirmations: int = 3
    history: int = 4000
    reset_grace_s: float = 2.0

    def __post_init__(self) -> None:
        for name in (
            'max_interpolation_gap_s',
            'max_extrapolation_s',
            'pending_timeout_s',
            'time_reset_s',
            'reset_grace_s',
        ):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f'{name} must be finite and >= 0, got {value}')
        if self.history < 2:
            raise ConfigError(f'history must be >= 2, got {self.history}')
        if self.time_jump_confirmations < 1:
            raise ConfigError(f'time_jump_confirmations must be >= 1, got {self.time_jump_confirmations}')


DEFAULT_MIN_YAW_DEG = 20.0
"""Smallest ``|yaw|`` of a pair (degrees): Viewpoint-100K pairs turn 20 to 100 degrees (ACTIAL.md)."""
DEFAULT_MAX_YAW_DEG = 100.0
"""Largest ``|yaw|`` of a pair (degrees), see :data:`DEFAULT_MIN_YAW_DEG`."""


def validate_yaw_range(min_yaw_deg: float, max_yaw_deg: float) -> None:
    """The pair yaw range rule, the node's and the dataset builder's alike: ``0 <= min < max <= 180`` degrees.

    Raises:
        ConfigError: the range breaks the rule.
    """
    if not 0.0 <= min_yaw_deg < max_yaw_deg <= 180.0:
        raise ConfigError(f'yaw range must satisfy 0 <= min < max <= 180, got [{min_yaw_deg}, {max_yaw_deg}]')


@dataclass(frozen=True, slots=True)
class PairPolicy:
    """Which posed frames form a pair.

    Attributes:
        min_yaw_deg, max_yaw_deg: ``|yaw|`` range of a pair in degrees (paper: 20 to 100).
        min_pair_interval_s: stamp time between two emitted pairs of one camera (seconds).
        max_pair_span_s: freshness: the two frames' stamps differ by at most this (seconds).
        max_frame_uses: a frame takes part in at most this many pairs.
        cross_camera: also pair frames of different cameras (at the same or different stamps).
        strategy: which qualifying candidate is chosen.
        seed: seed of the RNG of the ``random`` strategy.
    """

    min_yaw_deg: float = DEFAULT_MIN_YAW_DEG
    max_yaw_deg: float = DEFAULT_MAX_YAW_DEG
    min_pair_interval_s: float = 0.0
    max_pair_span_s: float = 60.0
    max_frame_uses: int = 3
    cross_camera: bool = True
    strategy: PairStrategy = PairStrategy.RANDOM
    seed: int = 0

    def __post_init__(self) -> None:
        validate_yaw_range(self.min_yaw_deg, self.max_yaw_deg)
        if not (math.isfinite(self.min_pair_interval_s) and self.min_pair_interval_s >= 0):
            raise ConfigError(f'min_pair_interval_s must be >= 0, got {self.min_pair_interval_s}')
        if not (math.isfinite(self.max_pair_span_s) and self.max_pair_span_s > 0):
            raise ConfigError(f'max_pair_span_s must be > 0, got {self.max_pair_span_s}')
        if self.max_frame_uses < 1:
            raise ConfigError(f'max_frame_uses must be >= 1, got {self.max_frame_uses}')
        object.__setattr__(self, 'strategy', PairStrategy(self.strategy))


@dataclass(frozen=True, slots=True)
class BufferLimits:
    """Bounds of the per-camera frame buffer.

    Attributes:
        max_frames: posed frames kept per camera (oldest evicted first).
        max_bytes: image bytes kept per camera (oldest evicted first).
        max_pending: images waiting for odometry, per camera (oldest dropped first).
    """

    max_frames: int = 64
    max_bytes: int = 256 * 1024 * 1024
    max_pending: int = 32

    def __post_init__(self) -> None:
        if self.max_frames < 2 or self.max_bytes < 1 or self.max_pending < 1:
            raise ConfigError(f'invalid buffer limits {self}')


class OdometryHistory:
    """Time-sorted odometry samples ``(stamp_ns, T_odom_base)`` with interpolation. Not thread-safe."""

    def __init__(self, policy: OdometryMatchPolicy) -> None:
        self._policy = policy
        self._stamps: list[int] = []
        self._poses: list[FloatArray] = []

    def __len__(self) -> int:
        return len(self._stamps)

    @property
    def newest_stamp_ns(self) -> int | None:
        """Stamp of the newest sample, or ``None`` when empty."""
        return self._stamps[-1] if self._stamps else None

    def clear(self) -> None:
        """Forget every sample."""
        self._stamps.clear()
        self._poses.clear()

    def add(self, stamp_ns: int, t_odom_base: FloatArray) -> DropReason | None:
        """Insert a sample in stamp order; returns the drop reason when it is refused.

        Out-of-order samples are inserted where they belong while they are newer than the oldest
        kept sample; older ones are refused (``odometry_out_of_order``); a repeated stamp is refused
        (``odometry_duplicate``). The pose must already be validated.
        """
        index = bisect.bisect_left(self._stamps, stamp_ns)
        if index < len(self._stamps) and self._stamps[index] == stamp_ns:
            return DropReason.ODOMETRY_DUPLICATE
        if index == 0 and self._stamps and len(self._stamps) >= self._policy.history:
            return DropReason.ODOMETRY_OUT_OF_ORDER
        self._stamps.insert(index, stamp_ns)
        self._poses.insert(index, t_odom_base)
        if len(self._stamps) > self._policy.history:
            del self._stamps[0]
            del self._poses[0]
        return None

    def lookup(self, stamp_ns: int) -> FloatArray | DropReason | None:
        """Pose of ``base_link`` in ``odom`` at ``stamp_ns``.

        Returns:
            A ``(4, 4)`` pose; a :class:`DropReason` when the stamp can never be matched
            (``no_odometry``: before the history with no sample close enough; ``odometry_gap``:
            bracketed by samples too far apart); or ``None`` when the answer depends on odometry not
            received yet (the stamp is newer than the newest sample).
        """
        if not self._stamps:
            return None
        policy = self._policy
        hold_ns = policy.max_extrapolation_s * _NS
        index = bisect.bisect_left(self._stamps, stamp_ns)
        if index < len(self._stamps) and self._stamps[index] == stamp_ns:
            return self._poses[index]
        if index == len(self._stamps):
            return None
        if index == 0:
            if self._stamps[0] - stamp_ns <= hold_ns:
                return self._poses[0]
            return DropReason.NO_ODOMETRY
        before, after = self._stamps[index - 1], self._stamps[index]
        if after - before <= policy.max_interpolation_gap_s * _NS:
            alpha = (stamp_ns - before) / (after - before)
            return interpolate_transform(self._poses[index - 1], self._poses[index], alpha)
        if stamp_ns - before <= hold_ns:
            return self._poses[index - 1]
        if after - stamp_ns <= hold_ns:
            return self._poses[index]
        return DropReason.ODOMETRY_GAP

    def hold_newest(self, stamp_ns: int) -> FloatArray | None:
        """The newest pose when it lies within ``max_extrapolation_s`` of ``stamp_ns``, else ``None``."""
        if self._stamps and abs(stamp_ns - self._stamps[-1]) <= self._policy.max_extrapolation_s * _NS:
            return self._poses[-1]
        return None


@dataclass(frozen=True, slots=True)
class CameraStats:
    """One camera's share of the buffer (:meth:`PairingBuffer.camera_stats`; the node's per-camera diagnostics).

    Attributes:
        frames: posed frames buffered.
        pending: frames waiting for odometry.
        posed: frames posed so far.
        pairs: pairs completed by its frames so far.
        drops: its frames dropped so far, by reason (:class:`~actial_ros.enums.DropReason` values; only reasons
            seen).
    """

    frames: int = 0
    pending: int = 0
    posed: int = 0
    pairs: int = 0
    drops: Mapping[str, int] = field(default_factory=dict)


@dataclass
class _CameraState:
    extrinsic: FloatArray
    frames: deque[Frame]
    pending: deque[Frame]
    drops: DropCounter
    guard: TimelineGuard[Frame]
    nbytes: int = 0
    posed: int = 0
    pairs: int = 0
    newest_stamp_ns: int | None = None
    last_pair_stamp_ns: int | None = None


class PairingBuffer:
    """Bounded per-camera frame buffer with odometry matching and the pair policy. Thread-safe.

    Args:
        extrinsics: ``T_base_camera_optical`` per camera id, ``(4, 4)`` each; a single transform is
            used for every camera; ``None`` means the default forward-looking camera at the base
            origin (:func:`actial_ros.geometry.base_to_optical_extrinsic`). Unknown camera ids get
            the default extrinsic.
        pair_policy: which frames form a pair.
        match_policy: odometry matching rules.
        limits: buffer bounds.

    Raises:
        PoseError: a malformed extrinsic.
    """

    def __init__(
        self,
        *,
        extrinsics: Mapping[str, npt.ArrayLike] | npt.ArrayLike | None = None,
        pair_policy: PairPolicy | None = None,
        match_policy: OdometryMatchPolicy | None = None,
        limits: BufferLimits | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._pair_policy = pair_policy or PairPolicy()
        self._match_policy = match_policy or OdometryMatchPolicy()
        self._limits = limits or BufferLimits()
        self._default_extrinsic = base_to_optical_extrinsic()
        self._extrinsics: dict[str, FloatArray] = {}
        if isinstance(extrinsics, Mapping):
            for camera_id, transform in extrinsics.items():
                self._extrinsics[camera_id] = validate_transform(transform, name=f'extrinsic {camera_id}')
        elif extrinsics is not None:
            self._default_extrinsic = validate_transform(extrinsics, name='T_base_camera_optical')
        self._odometry = OdometryHistory(self._match_policy)
        self._odometry_guard: TimelineGuard[FloatArray] = self._new_guard()
        self._cameras: dict[str, _CameraState] = {}
        self._rng = random.Random(self._pair_policy.seed)
        self._next_pair_id = 1
        self._latest_pair: Pair | None = None
        self.drops = DropCounter()
        """Counts of everything dropped, by reason."""
        self.frames_posed = 0
        """Frames that received a pose."""
        self.pairs_made = 0
        """Pairs emitted."""
        self.frames_evicted = 0
        """Posed frames evicted by the buffer bounds (normal operation, not a drop)."""
        self._uses: dict[tuple[str, int], int] = {}
        self._reset_origin_ns: int | None = None
        self._reset_at = 0.0

    # -- configuration -------------------------------------------------------------------------

    @property
    def pair_policy(self) -> PairPolicy:
        """The pair policy in force."""
        return self._pair_policy

    def set_pair_policy(self, policy: PairPolicy) -> None:
        """Replace the pair policy (takes effect for the next frame). Resets the RNG to its seed."""
        with self._lock:
            self._pair_policy = policy
            self._rng = random.Random(policy.seed)

    def set_match_policy(self, policy: OdometryMatchPolicy) -> None:
        """Replace the odometry matching policy (the history is kept)."""
        with self._lock:
            self._match_policy = policy
            self._odometry._policy = policy
            for guard in self._guards():
                guard.configure(jump_s=policy.time_reset_s, confirmations=policy.time_jump_confirmations)

    def set_extrinsic(self, camera_id: str, t_base_camera: npt.ArrayLike) -> None:
        """Set ``T_base_camera_optical`` of one camera (applies to frames posed from now on)."""
        transform = validate_transform(t_base_camera, name=f'extrinsic {camera_id}')
        with self._lock:
            self._extrinsics[camera_id] = transform
            if camera_id in self._cameras:
                self._cameras[camera_id].extrinsic = transform

    # -- queries -------------------------------------------------------------------------------

    def latest_frame(self, camera_id: str | None = None) -> Frame | None:
        """Newest posed frame (of one camera, or of any camera), or ``None``."""
        with self._lock:
            states = [self._cameras[camera_id]] if camera_id in self._cameras else list(self._cameras.values())
            frames = [state.frames[-1] for state in states if state.frames]
            return max(frames, key=lambda frame: frame.stamp_ns) if frames else None

    @property
    def latest_pair(self) -> Pair | None:
        """The most recently emitted pair, or ``None``."""
        with self._lock:
            return self._latest_pair

    def counts(self) -> dict[str, int]:
        """Buffered, pending and bytes held, summed over cameras, plus odometry samples."""
        with self._lock:
            return {
                'frames': sum(len(s.frames) for s in self._cameras.values()),
                'pending': sum(len(s.pending) for s in self._cameras.values()),
                'bytes': sum(s.nbytes for s in self._cameras.values()),
                'odometry': len(self._odometry),
            }

    def camera_stats(self) -> dict[str, CameraStats]:
        """Camera id -> its frames buffered, pending, posed, pairs completed by its frames, drops by reason."""
        with self._lock:
            return {
                camera_id: CameraStats(
                    frames=len(state.frames),
                    pending=len(state.pending),
                    posed=state.posed,
                    pairs=state.pairs,
                    drops=state.drops.snapshot(),
                )
                for camera_id, state in self._cameras.items()
            }

    # -- ingestion -----------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget all frames, pending images, held suspects and odometry (e.g. after a time jump)."""
        with self._lock:
            for guard in self._guards():
                guard.reset()
            self._reset_locked(None, keep=None)

    def _reset_locked(self, origin_ns: int | None, *, keep: TimelineGuard[Any] | None) -> list[Pair]:
        """Clear every buffer. ``keep``: the guard of the stream that confirmed the reset (already on the
        new timeline). The other streams' held suspects near ``origin_ns`` are new-timeline messages that
        arrived before the confirmation: they are replayed, not lost; returns the pairs they complete."""
        if origin_ns is not None:
            self.drops.add(DropReason.TIME_RESET)
        self._reset_origin_ns = origin_ns
        self._reset_at = time.monotonic()
        self._odometry.clear()
        for state in self._cameras.values():
            state.frames.clear()
            state.pending.clear()
            state.nbytes = 0
            state.newest_stamp_ns = None
            state.last_pair_stamp_ns = None
        self._uses.clear()
        self._latest_pair = None
        replay_odometry: list[tuple[int, FloatArray]] = []
        replay_frames: list[tuple[_CameraState, Frame]] = []
        near_ns = self._match_policy.time_reset_s * _NS
        if keep is not self._odometry_guard:
            for stamp_ns, pose in self._odometry_guard.reset():
                if origin_ns is not None and abs(stamp_ns - origin_ns) <= near_ns:
                    replay_odometry.append((stamp_ns, pose))
                else:
                    self.drops.add(DropReason.OLD_TIMELINE)
        for state in self._cameras.values():
            if keep is state.guard:
                continue
            for stamp_ns, frame in state.guard.reset():
                if origin_ns is not None and abs(stamp_ns - origin_ns) <= near_ns:
                    replay_frames.append((state, frame))
                else:
                    self._drop(state, DropReason.OLD_TIMELINE)
        pairs: list[Pair] = []
        for stamp_ns, pose in replay_odometry:
            pairs.extend(self._offer_odometry(stamp_ns, pose))
        for state, frame in replay_frames:
            pairs.extend(self._offer_frame(state, frame))
        return pairs

    def add_odometry(self, stamp_ns: int, t_odom_base: npt.ArrayLike) -> list[Pair]:
        """Add one odometry sample (``T_odom_base`` at ``stamp_ns``); returns pairs it completes.

        A malformed pose is counted as ``bad_odometry`` and ignored (never raises). The stamp passes the
        stream's :class:`~actial_ros.timeline.TimelineGuard` first (``time_outlier``, ``time_reset``).
        """
        try:
            pose = validate_transform(t_odom_base, name='T_odom_base')
        except ValueError:
            self.drops.add(DropReason.BAD_ODOMETRY)
            return []
        with self._lock:
            if self._from_old_timeline(stamp_ns):
                self.drops.add(DropReason.OLD_TIMELINE)
                return []
            return self._offer_odometry(stamp_ns, pose)

    def add_frame(self, frame: Frame) -> list[Pair]:
        """Add an image (its ``t_world_camera`` is ignored and set from odometry); returns new pairs.

        The frame is posed at once when odometry covers its stamp, or waits (bounded) for later
        odometry. Its stamp passes its camera's :class:`~actial_ros.timeline.TimelineGuard` first
        (``time_outlier``, ``time_reset``). Never raises for bad timing; drops are counted.
        """
        with self._lock:
            state = self._camera(frame.camera_id)
            if self._from_old_timeline(frame.stamp_ns):
                self._drop(state, DropReason.OLD_TIMELINE)
                return []
            return self._offer_frame(state, frame)

    # -- internals (lock held) -----------------------------------------------------------------

    def _new_guard(self) -> TimelineGuard[Any]:
        policy = self._match_policy
        return TimelineGuard(jump_s=policy.time_reset_s, confirmations=policy.time_jump_confirmations)

    def _guards(self) -> list[TimelineGuard[Any]]:
        return [self._odometry_guard, *(state.guard for state in self._cameras.values())]

    def _offer_odometry(self, stamp_ns: int, pose: FloatArray) -> list[Pair]:
        verdict = self._odometry_guard.offer(stamp_ns, pose)
        self.drops.add(DropReason.TIME_OUTLIER, len(verdict.outliers))
        pairs: list[Pair] = []
        if verdict.jump is Jump.BACKWARD:
            pairs.extend(self._reset_locked(verdict.accepted[0][0], keep=self._odometry_guard))
        for accepted_ns, accepted_pose in verdict.accepted:
            pairs.extend(self._store_odometry(accepted_ns, accepted_pose))
        return pairs

    def _store_odometry(self, stamp_ns: int, pose: FloatArray) -> list[Pair]:
        reason = self._odometry.add(stamp_ns, pose)
        if reason is not None:
            self.drops.add(reason)
            return []
        pairs: list[Pair] = []
        for state in self._cameras.values():
            pairs.extend(self._resolve_pending(state))
        return pairs

    def _offer_frame(self, state: _CameraState, frame: Frame) -> list[Pair]:
        verdict = state.guard.offer(frame.stamp_ns, frame)
        for _ in verdict.outliers:
            self._drop(state, DropReason.TIME_OUTLIER)
        pairs: list[Pair] = []
        if verdict.jump is Jump.BACKWARD:
            pairs.extend(self._reset_locked(verdict.accepted[0][0], keep=state.guard))
        for _, accepted in verdict.accepted:
            pairs.extend(self._pend(state, accepted))
        return pairs

    def _pend(self, state: _CameraState, frame: Frame) -> list[Pair]:
        if state.newest_stamp_ns is None or frame.stamp_ns > state.newest_stamp_ns:
            state.newest_stamp_ns = frame.stamp_ns
        if any(f.stamp_ns == frame.stamp_ns for f in state.frames) or any(
            f.stamp_ns == frame.stamp_ns for f in state.pending
        ):
            self._drop(state, DropReason.DUPLICATE_FRAME)
            return []
        if frame.nbytes > self._limits.max_bytes:
            self._drop(state, DropReason.BUFFER_BYTES)
            return []
        state.pending.append(frame)
        if len(state.pending) > self._limits.max_pending:
            state.pending.popleft()
            self._drop(state, DropReason.PENDING_FULL)
        return self._resolve_pending(state)

    def _from_old_timeline(self, stamp_ns: int) -> bool:
        """True for a late message from before a recent time reset (other topics still in flight)."""
        policy = self._match_policy
        return (
            self._reset_origin_ns is not None
            and time.monotonic() - self._reset_at < policy.reset_grace_s
            and stamp_ns - self._reset_origin_ns > policy.time_reset_s * _NS
        )

    def _drop(self, state: _CameraState, reason: DropReason) -> None:
        self.drops.add(reason)
        state.drops.add(reason)

    def _camera(self, camera_id: str) -> _CameraState:
        state = self._cameras.get(camera_id)
        if state is None:
            state = _CameraState(
                extrinsic=self._extrinsics.get(camera_id, self._default_extrinsic),
                frames=deque(),
                drops=DropCounter(),
                pending=deque(),
                guard=self._new_guard(),
            )
            self._cameras[camera_id] = state
        return state

    def _resolve_pending(self, state: _CameraState) -> list[Pair]:
        pairs: list[Pair] = []
        waiting: deque[Frame] = deque()
        timeout_ns = self._match_policy.pending_timeout_s * _NS
        for frame in sorted(state.pending, key=lambda f: f.stamp_ns):
            result = self._odometry.lookup(frame.stamp_ns)
            if result is None:
                newest = state.newest_stamp_ns if state.newest_stamp_ns is not None else frame.stamp_ns
                if newest - frame.stamp_ns > timeout_ns:
                    held = self._odometry.hold_newest(frame.stamp_ns)
                    if held is None:
                        self._drop(state, DropReason.ODOMETRY_TIMEOUT)
                        continue
                    result = held
                else:
                    waiting.append(frame)
                    continue
            if isinstance(result, DropReason):
                self._drop(state, result)
                continue
            posed = replace(frame, t_world_camera=result @ state.extrinsic)
            self.frames_posed += 1
            state.posed += 1
            pair = self._select_pair(state, posed)
            if pair is not None:
                pairs.append(pair)
            self._store(state, posed)
        state.pending = waiting
        return pairs

    def _store(self, state: _CameraState, frame: Frame) -> None:
        index = len(state.frames)
        while index > 0 and state.frames[index - 1].stamp_ns > frame.stamp_ns:
            index -= 1
        state.frames.insert(index, frame)
        state.nbytes += frame.nbytes
        while len(state.frames) > self._limits.max_frames or state.nbytes > self._limits.max_bytes:
            evicted = state.frames.popleft()
            state.nbytes -= evicted.nbytes
            self._uses.pop((evicted.camera_id, evicted.stamp_ns), None)
            self.frames_evicted += 1

    def _select_pair(self, state: _CameraState, frame: Frame) -> Pair | None:
        policy = self._pair_policy
        if (
            state.last_pair_stamp_ns is not None
            and abs(frame.stamp_ns - state.last_pair_stamp_ns) < policy.min_pair_interval_s * _NS
        ):
            return None
        assert frame.t_world_camera is not None
        span_ns = policy.max_pair_span_s * _NS
        # |yaw| of every candidate from the optical axes alone (cheap); the full relative pose is
        # computed only for the chosen one. yaw = atan2(f.x, f.z), f = R1^T z2 (CONVENTIONS.md).
        candidates: list[tuple[Frame, Frame, float]] = []
        key = (frame.camera_id, frame.stamp_ns)
        states = self._cameras.values() if policy.cross_camera else (state,)
        for other in (f for s in states for f in s.frames):
            if other.t_world_camera is None or (other.camera_id, other.stamp_ns) == key:
                continue
            if abs(frame.stamp_ns - other.stamp_ns) > span_ns:
                continue
            if self._uses.get((other.camera_id, other.stamp_ns), 0) >= policy.max_frame_uses:
                continue
            # Frame 1 is the earlier view; at equal stamps (a synchronised rig), the camera named first.
            first, second = sorted((other, frame), key=lambda f: (f.stamp_ns, f.camera_id))
            assert first.t_world_camera is not None and second.t_world_camera is not None
            forward = first.t_world_camera[:3, :3].T @ second.t_world_camera[:3, 2]
            abs_yaw = abs(float(yaw_deg_from_forward(forward[0], forward[2])))
            if policy.min_yaw_deg <= abs_yaw <= policy.max_yaw_deg:
                candidates.append((first, second, abs_yaw))
        if not candidates:
            return None
        if policy.strategy is PairStrategy.NEWEST:
            first, second, _ = max(candidates, key=lambda c: min(c[0].stamp_ns, c[1].stamp_ns))
        elif policy.strategy is PairStrategy.WIDEST:
            first, second, _ = max(candidates, key=lambda c: c[2])
        else:
            first, second, _ = candidates[self._rng.randrange(len(candidates))]
        assert first.t_world_camera is not None and second.t_world_camera is not None
        pose = relative_pose(first.t_world_camera, second.t_world_camera)
        for used in (first, second):
            used_key = (used.camera_id, used.stamp_ns)
            self._uses[used_key] = self._uses.get(used_key, 0) + 1
        state.last_pair_stamp_ns = frame.stamp_ns
        pair = Pair(frame_1=first, frame_2=second, relative=pose, pair_id=self._next_pair_id)
        self._next_pair_id += 1
        self.pairs_made += 1
        state.pairs += 1
        self._latest_pair = pair
        return pair
