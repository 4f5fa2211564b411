"""Stamp outliers versus real time jumps, per message stream (ROS-free).

A stream's header stamps normally move forward in small steps. A stamp that lands far from the stream's
newest accepted stamp (more than ``jump_s`` seconds back OR ahead) is either an isolated bogus stamp (a
driver glitch, a publisher with a broken clock) or the first message of a real jump (a simulation or
bag restart sends time back; a paused stream resumes far ahead). One message cannot tell them apart, so
:class:`TimelineGuard` holds such a message as a *suspect* instead of acting on it:

* ``confirmations`` consecutive suspects that agree with each other (all on the same side of the
  newest accepted stamp, none more than ``jump_s`` behind the previous suspect) confirm the jump:
  they are released, in order, and the caller learns whether time went back (a reset: clear the
  buffers) or forward (nothing to clear);
* an ordinary message (within ``jump_s`` of the newest accepted stamp) arriving while suspects are held
  proves them outliers: they are returned as dropped, and the ordinary message is accepted.

So one bogus stamp costs exactly that message, and a real reset costs ``confirmations - 1`` messages of
latency, none lost. A stream slower than one message per ``jump_s`` has every message suspect: it is
delivered in runs of ``confirmations`` (nothing lost, but late), so ``jump_s`` should exceed the slowest
stream's period. ``confirmations = 1`` acts on the first suspect (the behaviour before this guard).
Under ``use_sim_time`` a ``/clock`` that goes back is itself the evidence; the node's streams still pass
through this guard, which then confirms after ``confirmations`` messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Generic, TypeVar

from actial_ros.errors import ConfigError

__all__ = ['Jump', 'StampVerdict', 'TimelineGuard']

T = TypeVar('T')
_NS = 1_000_000_000


class Jump(Enum):
    """What a confirmed run of suspects means."""

    NONE = 'none'
    BACKWARD = 'backward'
    """Time went back: a reset (buffers of the old timeline must go)."""
    FORWARD = 'forward'
    """Time went forward past ``jump_s`` (a pause, a skipped stretch): nothing to clear."""


@dataclass(slots=True)
class StampVerdict(Generic[T]):
    """The outcome of offering one message to :meth:`TimelineGuard.offer`.

    Attributes:
        accepted: ``(stamp_ns, item)`` to process now, in arrival order (the offered message, or a run
            of released suspects; empty while the message is held).
        outliers: items dropped as isolated outliers (count them, e.g. as ``time_outlier``).
        jump: :attr:`Jump.BACKWARD` / :attr:`Jump.FORWARD` when ``accepted`` starts a confirmed jump.
    """

    accepted: list[tuple[int, T]] = field(default_factory=list)
    outliers: list[T] = field(default_factory=list)
    jump: Jump = Jump.NONE


class TimelineGuard(Generic[T]):
    """Tells isolated outlier stamps from real time jumps on one stream. Not thread-safe (callers lock).

    Args:
        jump_s: a stamp further than this (seconds) from the newest accepted one is a suspect.
        confirmations: consecutive agreeing suspects that confirm a jump (>= 1).

    Raises:
        ConfigError: ``jump_s < 0`` or ``confirmations < 1``.
    """

    def __init__(self, *, jump_s: float, confirmations: int) -> None:
        if not jump_s >= 0:
            raise ConfigError(f'jump_s must be >= 0, got {jump_s}')
        if confirmations < 1:
            raise ConfigError(f'confirmations must be >= 1, got {confirmations}')
        self._jump_ns = int(jump_s * _NS)
        self._confirmations = int(confirmations)
        self._newest_ns: int | None = None
        self._suspects: list[tuple[int, T]] = []

    @property
    def newest_ns(self) -> int | None:
        """The newest accepted stamp (ns), or ``None`` before the first message / after :meth:`reset`."""
        return self._newest_ns

    @property
    def held(self) -> int:
        """Suspects held, waiting for confirmation or refutation."""
        return len(self._suspects)

    def configure(self, *, jump_s: float, confirmations: int) -> None:
        """Change the thresholds (held suspects stay held)."""
        TimelineGuard(jump_s=jump_s, confirmations=confirmations)  # validates
        self._jump_ns = int(jump_s * _NS)
        self._confirmations = int(confirmations)

    def reset(self) -> list[tuple[int, T]]:
        """Forget the timeline (the next message is accepted as is); returns the held suspects
        ``(stamp_ns, item)``, released to the caller (to drop or to offer again)."""
        held = self._suspects
        self._suspects = []
        self._newest_ns = None
        return held

    def _agrees(self, stamp_ns: int, newest: int) -> bool:
        """A suspect continues the held run: on the same side of the newest accepted stamp as the run,
        and not more than ``jump_s`` behind the run's last stamp (a new timeline moves forward, with
        jitter; a slow stream moves forward in steps longer than ``jump_s``)."""
        first, last = self._suspects[0][0], self._suspects[-1][0]
        return (stamp_ns < newest) == (first < newest) and stamp_ns - last >= -self._jump_ns

    def offer(self, stamp_ns: int, item: T) -> StampVerdict[T]:
        """Offer one message; see the module docstring for what is accepted, held and dropped."""
        verdict: StampVerdict[T] = StampVerdict()
        newest = self._newest_ns
        if newest is None or abs(stamp_ns - newest) <= self._jump_ns:
            verdict.outliers = [held for _, held in self._suspects]
            self._suspects = []
            verdict.accepted.append((stamp_ns, item))
            self._newest_ns = stamp_ns if newest is None else max(newest, stamp_ns)
            return verdict
        if self._suspects and not self._agrees(stamp_ns, newest):
            verdict.outliers = [held for _, held in self._suspects]  # disagree: the earlier ones were outliers
            self._suspects = []
        self._suspects.append((stamp_ns, item))
        if len(self._suspects) >= self._confirmations:
            verdict.accepted = self._suspects
            verdict.jump = Jump.BACKWARD if self._suspects[0][0] < newest else Jump.FORWARD
            self._suspects = []
            self._newest_ns = max(stamp for stamp, _ in verdict.accepted)
        return verdict
