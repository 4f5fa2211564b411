"""Trajectories of the simulated base: ``T_world_base`` as a pure function of simulated time.

The base follows REP 103 (``base_link``: x forward, y left, z up) and stays level (no roll or pitch); the
camera is mounted on it through ``T_base_camera_optical`` (:mod:`actial_ros.simulation.mount`), so a
camera that looks down at an object is a mount with a pitch, exactly as on a robot.

* :class:`OrbitTrajectory`: a circle around a target at a fixed height, the base yawed to face the
  target; positive speed is counter-clockwise seen from above, which moves the camera to its RIGHT
  (and turns it left to keep the target in view).
* :class:`ArcTrajectory`: the same circle between two angles, back and forth.
* :class:`RandomWalkTrajectory`: seeded random waypoints (angle, radius and height around the target),
  smoothly interpolated, the base always yawed to look at the target.
* :class:`DriveTrajectory`: a wheeled (unicycle) base driving segments of constant linear and angular
  speed, e.g. straight past objects, a turn, straight again; it holds its last pose afterwards.

Every trajectory is defined for all ``t >= 0``; :attr:`Trajectory.natural_duration_s` is the time after
which nothing changes any more (``None``: endless, e.g. an orbit).
"""

from __future__ import annotations

import math
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from actial_ros.errors import ConfigError

__all__ = [
    'TRAJECTORY_KINDS',
    'ArcTrajectory',
    'DriveSegment',
    'DriveTrajectory',
    'OrbitTrajectory',
    'RandomWalkTrajectory',
    'Trajectory',
    'base_twist',
    'make_trajectory',
    'planar_pose',
]

FloatArray = npt.NDArray[np.float64]

TRAJECTORY_KINDS = ('orbit', 'arc', 'random_walk', 'drive')
"""Names accepted by :func:`make_trajectory` (and the node's ``trajectory`` parameter)."""


def planar_pose(x: float, y: float, z: float, yaw_rad: float) -> FloatArray:
    """``T_world_base`` of a level base at ``(x, y, z)`` with heading ``yaw_rad`` about +z."""
    c, s = math.cos(yaw_rad), math.sin(yaw_rad)
    pose = np.eye(4)
    pose[:3, :3] = ((c, -s, 0.0), (s, c, 0.0), (0.0, 0.0, 1.0))
    pose[:3, 3] = (x, y, z)
    return pose


def _finite(name: str, *values: float) -> None:
    if not all(math.isfinite(float(v)) for v in values):
        raise ConfigError(f'{name} must be finite, got {values}')


class Trajectory(ABC):
    """A base trajectory: :meth:`base_pose` at any simulated time ``t >= 0`` (seconds)."""

    kind: str = ''

    @abstractmethod
    def base_pose(self, t_s: float) -> FloatArray:
        """``T_world_base`` ``(4, 4)`` at time ``t_s`` (negative times are clamped to 0)."""

    @property
    def natural_duration_s(self) -> float | None:
        """Time after which the base no longer moves; ``None`` when endless."""
        return None

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """JSON-ready description (kind and options), written into the pose record."""


@dataclass(frozen=True)
class OrbitTrajectory(Trajectory):
    """A circle of ``radius_m`` around ``target`` (x, y) at base height ``height_m``, facing the target.

    ``speed_deg_s`` > 0 is counter-clockwise seen from above (the camera moves to its right); the base
    starts at azimuth ``start_deg`` (0: on the target's +x side).
    """

    target: tuple[float, float] = (0.0, 0.0)
    radius_m: float = 1.5
    height_m: float = 0.3
    speed_deg_s: float = 30.0
    start_deg: float = 0.0
    kind: str = field(default='orbit', init=False)

    def __post_init__(self) -> None:
        _finite('orbit options', *self.target, self.radius_m, self.height_m, self.speed_deg_s, self.start_deg)
        if self.radius_m <= 0:
            raise ConfigError(f'orbit radius must be > 0, got {self.radius_m}')

    def azimuth_rad(self, t_s: float) -> float:
        """Azimuth of the base around the target at ``t_s`` (radians)."""
        return math.radians(self.start_deg + self.speed_deg_s * max(0.0, t_s))

    def pose_at_azimuth(self, azimuth_rad: float) -> FloatArray:
        """Base pose at an azimuth, facing the target."""
        x = self.target[0] + self.radius_m * math.cos(azimuth_rad)
        y = self.target[1] + self.radius_m * math.sin(azimuth_rad)
        return planar_pose(x, y, self.height_m, azimuth_rad + math.pi)

    def base_pose(self, t_s: float) -> FloatArray:
        return self.pose_at_azimuth(self.azimuth_rad(t_s))

    def describe(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ArcTrajectory(Trajectory):
    """An orbit between azimuths ``start_deg`` and ``end_deg``, swept back and forth at ``speed_deg_s``."""

    target: tuple[float, float] = (0.0, 0.0)
    radius_m: float = 1.5
    height_m: float = 0.3
    speed_deg_s: float = 30.0
    start_deg: float = -60.0
    end_deg: float = 60.0
    kind: str = field(default='arc', init=False)

    def __post_init__(self) -> None:
        _finite(
            'arc options', *self.target, self.radius_m, self.height_m, self.speed_deg_s, self.start_deg, self.end_deg
        )
        if self.radius_m <= 0:
            raise ConfigError(f'arc radius must be > 0, got {self.radius_m}')
        if self.speed_deg_s <= 0 or self.start_deg == self.end_deg:
            raise ConfigError('an arc needs speed_deg_s > 0 and start_deg != end_deg')

    def azimuth_deg(self, t_s: float) -> float:
        """Azimuth at ``t_s``: a triangle wave between the two ends (degrees)."""
        span = abs(self.end_deg - self.start_deg)
        travelled = (self.speed_deg_s * max(0.0, t_s)) % (2.0 * span)
        along = travelled if travelled <= span else 2.0 * span - travelled
        return self.start_deg + math.copysign(along, self.end_deg - self.start_deg)

    def base_pose(self, t_s: float) -> FloatArray:
        orbit = OrbitTrajectory(self.target, self.radius_m, self.height_m, 0.0, 0.0)
        return orbit.pose_at_azimuth(math.radians(self.azimuth_deg(t_s)))

    def describe(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RandomWalkTrajectory(Trajectory):
    """Seeded random waypoints around ``target``, smoothly interpolated, always looking at the target.

    Waypoint ``k`` (at ``k * waypoint_interval_s``) has an azimuth that moves by a normal step of
    standard deviation ``step_deg`` from the previous one, a radius uniform in ``radius_range_m`` and a
    base height uniform in ``height_range_m``; between waypoints each coordinate follows a cosine ease
    (zero velocity at waypoints). The same seed gives the same path.
    """

    target: tuple[float, float] = (0.0, 0.0)
    radius_range_m: tuple[float, float] = (1.2, 2.0)
    height_range_m: tuple[float, float] = (0.25, 0.45)
    step_deg: float = 35.0
    waypoint_interval_s: float = 1.5
    seed: int = 0
    kind: str = field(default='random_walk', init=False)
    _waypoints: list[tuple[float, float, float]] = field(default_factory=list, init=False, repr=False, compare=False)
    _rng: list[np.random.Generator] = field(default_factory=list, init=False, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _finite(
            'random walk options',
            *self.target,
            *self.radius_range_m,
            *self.height_range_m,
            self.step_deg,
            self.waypoint_interval_s,
        )
        low, high = self.radius_range_m
        if not 0 < low <= high:
            raise ConfigError(f'radius range must satisfy 0 < min <= max, got {self.radius_range_m}')
        if self.height_range_m[0] > self.height_range_m[1]:
            raise ConfigError(f'height range must satisfy min <= max, got {self.height_range_m}')
        if self.waypoint_interval_s <= 0 or self.step_deg < 0:
            raise ConfigError('waypoint_interval_s must be > 0 and step_deg >= 0')

    def waypoint(self, index: int) -> tuple[float, float, float]:
        """Waypoint ``index`` as (azimuth radians, radius, height), generated in order from the seed."""
        with self._lock:
            if not self._waypoints:
                self._rng.append(np.random.default_rng([int(self.seed), 0x5EED]))
                self._waypoints.append((0.0, float(np.mean(self.radius_range_m)), float(np.mean(self.height_range_m))))
            rng = self._rng[0]
            while len(self._waypoints) <= index:
                azimuth = self._waypoints[-1][0] + math.radians(float(rng.normal(0.0, self.step_deg)))
                radius = float(rng.uniform(*self.radius_range_m))
                height = float(rng.uniform(*self.height_range_m))
                self._waypoints.append((azimuth, radius, height))
            return self._waypoints[index]

    def base_pose(self, t_s: float) -> FloatArray:
        position = max(0.0, t_s) / self.waypoint_interval_s
        index = math.floor(position)
        ease = 0.5 - 0.5 * math.cos(math.pi * (position - index))
        a0, r0, z0 = self.waypoint(index)
        a1, r1, z1 = self.waypoint(index + 1)
        azimuth, radius, height = a0 + ease * (a1 - a0), r0 + ease * (r1 - r0), z0 + ease * (z1 - z0)
        x = self.target[0] + radius * math.cos(azimuth)
        y = self.target[1] + radius * math.sin(azimuth)
        return planar_pose(x, y, height, azimuth + math.pi)  # facing the target

    def describe(self) -> dict[str, Any]:
        return {
            'kind': self.kind,
            'target': list(self.target),
            'radius_range_m': list(self.radius_range_m),
            'height_range_m': list(self.height_range_m),
            'step_deg': self.step_deg,
            'waypoint_interval_s': self.waypoint_interval_s,
            'seed': self.seed,
        }


@dataclass(frozen=True)
class DriveSegment:
    """``duration_s`` of driving at ``linear_m_s`` (forward) and ``angular_deg_s`` (positive: turning left)."""

    duration_s: float
    linear_m_s: float
    angular_deg_s: float = 0.0

    def __post_init__(self) -> None:
        _finite('drive segment', self.duration_s, self.linear_m_s, self.angular_deg_s)
        if self.duration_s <= 0:
            raise ConfigError(f'drive segment duration must be > 0, got {self.duration_s}')


_DEFAULT_SEGMENTS = (DriveSegment(4.0, 0.5, 0.0), DriveSegment(3.0, 0.3, 30.0), DriveSegment(4.0, 0.5, 0.0))


@dataclass(frozen=True)
class DriveTrajectory(Trajectory):
    """A unicycle (differential-drive) base starting at ``start`` (x, y) with heading ``start_yaw_deg``,
    driving ``segments`` one after the other (integrated in closed form), then standing still.

    The default drives 2 m straight along +x past the scene, turns 90 degrees left on a 0.57 m radius
    while rolling, and drives 2 m straight on; mount the camera sideways (``yaw_deg=90`` in
    :func:`actial_ros.simulation.mount.camera_mount`) to look at the objects while passing them.
    """

    start: tuple[float, float] = (-1.0, -1.0)
    start_yaw_deg: float = 0.0
    height_m: float = 0.3
    segments: tuple[DriveSegment, ...] = _DEFAULT_SEGMENTS
    kind: str = field(default='drive', init=False)

    def __post_init__(self) -> None:
        _finite('drive options', *self.start, self.start_yaw_deg, self.height_m)
        if not self.segments:
            raise ConfigError('a drive needs at least one segment')

    @property
    def natural_duration_s(self) -> float | None:
        return float(sum(segment.duration_s for segment in self.segments))

    def base_pose(self, t_s: float) -> FloatArray:
        x, y, yaw = float(self.start[0]), float(self.start[1]), math.radians(self.start_yaw_deg)
        remaining = max(0.0, t_s)
        for segment in self.segments:
            dt = min(remaining, segment.duration_s)
            v, w = segment.linear_m_s, math.radians(segment.angular_deg_s)
            if abs(w) < 1e-12:
                x, y = x + v * dt * math.cos(yaw), y + v * dt * math.sin(yaw)
            else:
                x += v / w * (math.sin(yaw + w * dt) - math.sin(yaw))
                y -= v / w * (math.cos(yaw + w * dt) - math.cos(yaw))
            yaw += w * dt
            remaining -= dt
            if remaining <= 0:
                break
        return planar_pose(x, y, self.height_m, yaw)

    def describe(self) -> dict[str, Any]:
        return {
            'kind': self.kind,
            'start': list(self.start),
            'start_yaw_deg': self.start_yaw_deg,
            'height_m': self.height_m,
            'segments': [asdict(s) for s in self.segments],
        }


def base_twist(trajectory: Trajectory, t_s: float, dt_s: float = 1e-4) -> tuple[FloatArray, FloatArray]:
    """Linear (m/s) and angular (rad/s) velocity of the base at ``t_s``, both in ``base_link`` (as in
    ``nav_msgs/Odometry.twist``), by a central difference of the pose over ``2 dt_s``."""
    before = trajectory.base_pose(max(0.0, t_s - dt_s))
    after = trajectory.base_pose(t_s + dt_s)
    span = (t_s + dt_s) - max(0.0, t_s - dt_s)
    rotation = trajectory.base_pose(t_s)[:3, :3]
    linear = rotation.T @ (after[:3, 3] - before[:3, 3]) / span
    delta = before[:3, :3].T @ after[:3, :3]
    angle = math.acos(max(-1.0, min(1.0, (float(np.trace(delta)) - 1.0) / 2.0)))
    axis = np.array([delta[2, 1] - delta[1, 2], delta[0, 2] - delta[2, 0], delta[1, 0] - delta[0, 1]])
    norm = float(np.linalg.norm(axis))
    angular = axis / norm * angle / span if norm > 1e-12 else np.zeros(3)
    return linear, angular


def _pair(value: Any, name: str) -> tuple[float, float]:
    values = [float(v) for v in value]
    if len(values) != 2:
        raise ConfigError(f'{name} needs 2 values, got {values}')
    return values[0], values[1]


def make_trajectory(kind: str, options: Mapping[str, Any] | None = None) -> Trajectory:
    """Build a trajectory by name from an options mapping (unknown keys are refused).

    Args:
        kind: one of :data:`TRAJECTORY_KINDS`.
        options: the dataclass fields of that trajectory (``target``, ``radius_m``, ``height_m``, ...);
            ``segments`` of a drive may be :class:`DriveSegment` objects, triples, or a flat list of
            ``duration, linear, angular`` triples.

    Raises:
        ConfigError: unknown kind, unknown option, or an invalid value.
    """
    opts = dict(options or {})
    classes: dict[str, type[Trajectory]] = {
        'orbit': OrbitTrajectory,
        'arc': ArcTrajectory,
        'random_walk': RandomWalkTrajectory,
        'drive': DriveTrajectory,
    }
    if kind not in classes:
        raise ConfigError(f'unknown trajectory {kind!r}; use one of {", ".join(TRAJECTORY_KINDS)}')
    for key in ('target', 'start'):
        if key in opts:
            opts[key] = _pair(opts[key], key)
    for key in ('radius_range_m', 'height_range_m'):
        if key in opts:
            opts[key] = _pair(opts[key], key)
    if 'segments' in opts:
        opts['segments'] = _segments(opts['segments'])
    if 'seed' in opts:
        opts['seed'] = int(opts['seed'])
    try:
        return classes[kind](**opts)
    except TypeError as error:
        raise ConfigError(f'invalid options for trajectory {kind!r}: {error}') from None


def _segments(value: Sequence[Any]) -> tuple[DriveSegment, ...]:
    items = list(value)
    if items and all(isinstance(v, (int, float)) for v in items):
        if len(items) % 3:
            raise ConfigError(f'drive segments need (duration, linear, angular) triples, got {len(items)} values')
        return tuple(DriveSegment(*map(float, items[i : i + 3])) for i in range(0, len(items), 3))
    return tuple(s if isinstance(s, DriveSegment) else DriveSegment(*map(float, s)) for s in items)
