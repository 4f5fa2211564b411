"""Simulated time: the step schedule (which step publishes the clock, odometry, a camera frame) and
pacing of steps against the wall clock with a real-time factor.

Step ``k`` happens at simulated time ``start_ns + k * step_ns`` (integer nanoseconds, so stamps never
drift). The clock is published every step; odometry every ``odometry_every`` steps AND at every camera
step, so that each image has an odometry sample with exactly its stamp; a camera frame every
``camera_every`` steps. Both rates must divide the step rate.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from actial_ros.errors import ConfigError

__all__ = ['Pacer', 'SimTiming']

_NS = 1_000_000_000


def _every(step_hz: float, rate_hz: float, name: str) -> int:
    if not (math.isfinite(rate_hz) and 0 < rate_hz <= step_hz):
        raise ConfigError(f'{name} must be in (0, step_rate_hz = {step_hz:g}], got {rate_hz}')
    ratio = step_hz / rate_hz
    every = round(ratio)
    if abs(ratio - every) > 1e-6 * ratio:
        raise ConfigError(f'{name} ({rate_hz:g} Hz) must divide step_rate_hz ({step_hz:g} Hz)')
    return int(every)


@dataclass(frozen=True)
class SimTiming:
    """Rates of the simulation (Hz) and its start time.

    Attributes:
        step_rate_hz: simulation steps (and /clock messages) per simulated second.
        camera_rate_hz: camera frames per simulated second (divides ``step_rate_hz``).
        odometry_rate_hz: odometry messages per simulated second (divides ``step_rate_hz``).
        start_ns: simulated time of step 0 (ns).

    Raises:
        ConfigError: on construction, for rates that do not divide the step rate, a step period that is
            not a whole number of nanoseconds, or a negative start.
    """

    step_rate_hz: float = 100.0
    camera_rate_hz: float = 10.0
    odometry_rate_hz: float = 50.0
    start_ns: int = 0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.step_rate_hz) and self.step_rate_hz > 0):
            raise ConfigError(f'step_rate_hz must be > 0, got {self.step_rate_hz}')
        step_ns = _NS / self.step_rate_hz
        if abs(step_ns - round(step_ns)) > 1e-6:
            raise ConfigError(f'1e9 / step_rate_hz must be a whole number of nanoseconds, got {step_ns}')
        _every(self.step_rate_hz, self.camera_rate_hz, 'camera_rate_hz')
        _every(self.step_rate_hz, self.odometry_rate_hz, 'odometry_rate_hz')
        if self.start_ns < 0:
            raise ConfigError(f'start time must be >= 0, got {self.start_ns} ns')

    @property
    def step_ns(self) -> int:
        """Simulated nanoseconds per step."""
        return round(_NS / self.step_rate_hz)

    @property
    def camera_every(self) -> int:
        """Steps between camera frames."""
        return _every(self.step_rate_hz, self.camera_rate_hz, 'camera_rate_hz')

    @property
    def odometry_every(self) -> int:
        """Steps between regular odometry messages."""
        return _every(self.step_rate_hz, self.odometry_rate_hz, 'odometry_rate_hz')

    def stamp_ns(self, step: int) -> int:
        """Simulated time of ``step`` (ns)."""
        return self.start_ns + step * self.step_ns

    def elapsed_s(self, step: int) -> float:
        """Simulated seconds since the start at ``step`` (the trajectory's time)."""
        return step * self.step_ns / _NS

    def is_camera_step(self, step: int) -> bool:
        """Whether a camera frame is rendered at ``step``."""
        return step % self.camera_every == 0

    def is_odometry_step(self, step: int) -> bool:
        """Whether odometry is published at ``step`` (its own rate, and every camera step)."""
        return step % self.odometry_every == 0 or self.is_camera_step(step)

    def steps_for(self, duration_s: float) -> int:
        """Number of steps covering ``[0, duration_s]`` (the last one at ``duration_s`` or just before)."""
        return math.floor(duration_s * _NS / self.step_ns + 1e-9) + 1

    def describe(self) -> dict[str, float | int]:
        """JSON-ready description."""
        return {
            'step_rate_hz': self.step_rate_hz,
            'camera_rate_hz': self.camera_rate_hz,
            'odometry_rate_hz': self.odometry_rate_hz,
            'start_ns': self.start_ns,
            'step_ns': self.step_ns,
        }


class Pacer:
    """Paces simulation steps against the wall clock.

    Step ``k`` is released at ``wall_start + k * step_s / real_time_factor``; with a factor <= 0 it runs
    as fast as possible. When behind, steps are released at once (no sleeping), never skipped.

    Args:
        step_s: simulated seconds per step.
        real_time_factor: simulated seconds per wall second (1: real time; <= 0: as fast as possible).
        stop: an event that interrupts waiting.
    """

    def __init__(self, step_s: float, real_time_factor: float, stop: threading.Event | None = None) -> None:
        if not (math.isfinite(step_s) and step_s > 0 and math.isfinite(real_time_factor)):
            raise ConfigError(f'invalid pacing: step {step_s} s, real-time factor {real_time_factor}')
        self.step_s = step_s
        self.real_time_factor = real_time_factor
        self.stop = stop or threading.Event()
        self._start: float | None = None
        self._first_step = 0

    def start(self, step: int = 0) -> None:
        """Start (or restart) the wall clock at ``step``."""
        self._start = time.monotonic()
        self._first_step = step

    def wait(self, step: int) -> bool:
        """Block until ``step`` is due; returns False when stopped."""
        if self._start is None:
            self.start(step)
        if self.real_time_factor <= 0:
            return not self.stop.is_set()
        assert self._start is not None
        due = self._start + (step - self._first_step) * self.step_s / self.real_time_factor
        delay = due - time.monotonic()
        if delay > 0:
            return not self.stop.wait(delay)
        return not self.stop.is_set()
