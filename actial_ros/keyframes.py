"""Keyframe policy of the bag recorder (ROS-free): keep an image only when the camera pose changed enough.

A viewpoint pair needs two views 20 to 100 degrees apart; a camera streaming at 30 Hz while the robot
turns slowly gives hundreds of near-identical frames that only fill the disk. The recorder therefore
keeps an image when the camera pose at its stamp differs from the pose of the last KEPT image by at
least ``min_rotation_deg`` (the angle of the relative rotation, any axis) or ``min_translation_m``
(distance between the optical centres), or when ``max_interval_s`` passed since the last kept image
(0: never forced). The first posed image is always kept.

Poses follow ``../shared/notes/CONVENTIONS.md``: ``T_odom_camera = T_odom_base(stamp) @
T_base_camera_optical`` with ``T_odom_base(stamp)`` interpolated by
:class:`actial_ros.pairing.OdometryHistory` (the same matching the node and the dataset builder use).
An image newer than the newest odometry waits (bounded) for later odometry; one that cannot be posed is
dropped with the reason (``no_odometry``, ``odometry_gap``, ``odometry_timeout``, ``pending_full``,
``duplicate``).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt

from actial_ros.enums import DropReason
from actial_ros.errors import ConfigError, PoseError
from actial_ros.geometry import base_to_optical_extrinsic, relative_pose, validate_transform
from actial_ros.pairing import OdometryHistory, OdometryMatchPolicy

__all__ = ['KeyframeDecision', 'KeyframePolicy', 'KeyframeReason', 'KeyframeSelector', 'rotation_angle_deg']

T = TypeVar('T')
FloatArray = npt.NDArray[np.float64]
_NS = 1_000_000_000


class KeyframeReason:
    """Reasons of keyframe decisions (strings, for counters and logs)."""

    FIRST = 'first'
    ROTATION = 'rotation'
    TRANSLATION = 'translation'
    INTERVAL = 'interval'
    UNCHANGED = 'unchanged'
    DUPLICATE = 'duplicate'
    PENDING_FULL = 'pending_full'
    KEPT: frozenset[str] = frozenset({FIRST, ROTATION, TRANSLATION, INTERVAL})


@dataclass(frozen=True, slots=True)
class KeyframePolicy:
    """When an image is kept.

    Attributes:
        min_rotation_deg: keep when the relative rotation to the last kept pose reaches this angle (deg).
        min_translation_m: keep when the optical centre moved this far from the last kept one (m).
        max_interval_s: keep at least one image per this many seconds of stamp time (0: off).

    Raises:
        ConfigError: negative or non-finite values.
    """

    min_rotation_deg: float = 5.0
    min_translation_m: float = 0.1
    max_interval_s: float = 0.0

    def __post_init__(self) -> None:
        for name in ('min_rotation_deg', 'min_translation_m', 'max_interval_s'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f'{name} must be finite and >= 0, got {value}')


@dataclass(frozen=True, slots=True)
class KeyframeDecision(Generic[T]):
    """The decision about one image.

    Attributes:
        stamp_ns: the image's header stamp.
        payload: what the caller attached (e.g. the raw message).
        keep: write it or not.
        reason: a :class:`KeyframeReason` value or a :class:`~actial_ros.enums.DropReason` value.
        t_odom_camera: the camera pose at the stamp (``(4, 4)``), or ``None`` when it has none.
    """

    stamp_ns: int
    payload: T
    keep: bool
    reason: str
    t_odom_camera: FloatArray | None = None


def rotation_angle_deg(rotation: npt.ArrayLike) -> float:
    """Angle of a ``(3, 3)`` rotation matrix in degrees, in ``[0, 180]`` (``acos((trace - 1) / 2)``)."""
    trace = float(np.trace(np.asarray(rotation, dtype=np.float64)))
    return math.degrees(math.acos(min(1.0, max(-1.0, (trace - 1.0) / 2.0))))


class KeyframeSelector(Generic[T]):
    """Decides which images to keep from odometry. Not thread-safe (one writer thread owns it).

    Args:
        policy: thresholds.
        extrinsic: ``T_base_camera_optical`` ``(4, 4)``; default: forward-looking camera at the base origin.
        match_policy: odometry matching (interpolation gap, hold, pending timeout).
        max_pending: images waiting for odometry at most (oldest dropped beyond).

    Raises:
        PoseError: a malformed extrinsic. ConfigError: ``max_pending < 1``.
    """

    def __init__(
        self,
        policy: KeyframePolicy,
        *,
        extrinsic: npt.ArrayLike | None = None,
        match_policy: OdometryMatchPolicy | None = None,
        max_pending: int = 64,
    ) -> None:
        if max_pending < 1:
            raise ConfigError(f'max_pending must be >= 1, got {max_pending}')
        self.policy = policy
        self._extrinsic = base_to_optical_extrinsic() if extrinsic is None else validate_transform(extrinsic)
        self._match = match_policy or OdometryMatchPolicy()
        self._odometry = OdometryHistory(self._match)
        self._pending: list[tuple[int, T]] = []
        self._max_pending = max_pending
        self._newest_image_ns: int | None = None
        self._last_kept: tuple[int, FloatArray] | None = None
        self._decided: set[int] = set()
        self.counts: Counter[str] = Counter()
        """Decisions and odometry refusals by reason."""

    def reset(self) -> None:
        """Forget odometry, pending images and the last keyframe (after a time reset)."""
        self._odometry.clear()
        self._pending.clear()
        self._newest_image_ns = None
        self._last_kept = None
        self._decided.clear()

    def add_odometry(self, stamp_ns: int, t_odom_base: npt.ArrayLike) -> list[KeyframeDecision[T]]:
        """Add one odometry sample; returns decisions about images it lets be posed."""
        try:
            pose = validate_transform(t_odom_base, name='T_odom_base')
        except PoseError:
            self.counts[DropReason.BAD_ODOMETRY.value] += 1
            return []
        reason = self._odometry.add(stamp_ns, pose)
        if reason is not None:
            self.counts[reason.value] += 1
            return []
        return self._resolve(final=False)

    def add_image(self, stamp_ns: int, payload: T) -> list[KeyframeDecision[T]]:
        """Offer one image; returns the decisions now possible (this image's, or none while it waits)."""
        if stamp_ns in self._decided or any(stamp == stamp_ns for stamp, _ in self._pending):
            return [self._decision(stamp_ns, payload, False, KeyframeReason.DUPLICATE)]
        decisions: list[KeyframeDecision[T]] = []
        self._pending.append((stamp_ns, payload))
        if self._newest_image_ns is None or stamp_ns > self._newest_image_ns:
            self._newest_image_ns = stamp_ns
        if len(self._pending) > self._max_pending:
            self._pending.sort(key=lambda item: item[0])
            stamp, dropped = self._pending.pop(0)
            decisions.append(self._decision(stamp, dropped, False, KeyframeReason.PENDING_FULL))
        return decisions + self._resolve(final=False)

    def flush(self) -> list[KeyframeDecision[T]]:
        """Decide every waiting image now (hold the newest odometry within the hold limit, else drop)."""
        return self._resolve(final=True)

    @property
    def pending(self) -> int:
        """Images waiting for odometry."""
        return len(self._pending)

    def _decision(
        self, stamp_ns: int, payload: T, keep: bool, reason: str, pose: FloatArray | None = None
    ) -> KeyframeDecision[T]:
        self.counts[reason] += 1
        self._decided.add(stamp_ns)
        if len(self._decided) > 4 * self._max_pending + 1024:
            newest = max(self._decided)
            self._decided = {s for s in self._decided if newest - s < 60 * _NS}
        return KeyframeDecision(stamp_ns, payload, keep, reason, pose)

    def _resolve(self, *, final: bool) -> list[KeyframeDecision[T]]:
        decisions: list[KeyframeDecision[T]] = []
        waiting: list[tuple[int, T]] = []
        timeout_ns = self._match.pending_timeout_s * _NS
        for stamp, payload in sorted(self._pending, key=lambda item: item[0]):
            result = self._odometry.lookup(stamp)
            if result is None:
                newest = self._newest_image_ns if self._newest_image_ns is not None else stamp
                if final or newest - stamp > timeout_ns:
                    result = self._odometry.hold_newest(stamp)
                    if result is None:
                        drop = DropReason.NO_ODOMETRY if final else DropReason.ODOMETRY_TIMEOUT
                        decisions.append(self._decision(stamp, payload, False, drop.value))
                        continue
                else:
                    waiting.append((stamp, payload))
                    continue
            if isinstance(result, DropReason):
                decisions.append(self._decision(stamp, payload, False, result.value))
                continue
            pose = result @ self._extrinsic
            keep, reason = self._judge(stamp, pose)
            if keep:
                self._last_kept = (stamp, pose)
            decisions.append(self._decision(stamp, payload, keep, reason, pose))
        self._pending = waiting
        return decisions

    def _judge(self, stamp: int, pose: FloatArray) -> tuple[bool, str]:
        if self._last_kept is None:
            return True, KeyframeReason.FIRST
        last_stamp, last_pose = self._last_kept
        relative = relative_pose(last_pose, pose)
        if rotation_angle_deg(relative.rotation) >= self.policy.min_rotation_deg:
            return True, KeyframeReason.ROTATION
        if float(np.linalg.norm(relative.translation)) >= self.policy.min_translation_m:
            return True, KeyframeReason.TRANSLATION
        if self.policy.max_interval_s > 0 and abs(stamp - last_stamp) >= self.policy.max_interval_s * _NS:
            return True, KeyframeReason.INTERVAL
        return False, KeyframeReason.UNCHANGED
