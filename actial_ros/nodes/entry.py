"""The ``main()`` shared by the package's nodes: init, build, spin, clean shutdown, exit status.

A node never dies with a traceback on Ctrl-C, SIGTERM or an external shutdown; a configuration or input
error at start-up prints one line and exits with status 2.

Signals are handled in Python, not by rclpy's signal handlers (``SignalHandlerOptions.NO``): rclpy's
deferred signal thread walks the executors' SIGINT guard conditions without a lock
(``trigger_guard_conditions`` in rclpy's ``signal_handler.cpp``) while the main thread, already in the
clean-up that the same SIGINT started, shuts an executor down and frees its guard condition. On a loaded
machine that race was seen to end the node with SIGSEGV at shutdown (about one stop in seven with both
cores busy; the core showed ``rcl_trigger_guard_condition`` on rclpy's signal thread). Here SIGINT raises
``KeyboardInterrupt`` (Python's default) and SIGTERM does too, in the main thread, which then destroys the
node and shuts rclpy down in order; the spin loop wakes every ``_SPIN_PERIOD_S`` so that the signal is
seen within that time.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Sequence
from types import FrameType
from typing import TypeVar

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from actial_ros.errors import ActialError

__all__ = ['run_node']

N = TypeVar('N', bound=Node)


_SPIN_PERIOD_S = 0.1
"""Longest wait of one spin step (s): a signal is acted on within this time."""


def _spin_forever(node: Node) -> int:
    while rclpy.ok(context=node.context):
        rclpy.spin_once(node, timeout_sec=_SPIN_PERIOD_S)
    return 0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def run_node(
    factory: Callable[[], N],
    *,
    name: str,
    args: Sequence[str] | None = None,
    spin: Callable[[N], int] | None = None,
) -> int:
    """Initialise rclpy, build the node with ``factory``, spin it, always destroy it and shut down.

    Args:
        factory: builds the node (after ``rclpy.init``).
        name: the program name used in error messages.
        args: command-line arguments (``None``: ``sys.argv``), including ``--ros-args``.
        spin: runs the node and returns the exit status (default: spin steps of at most
            ``_SPIN_PERIOD_S`` until shutdown or a signal).

    Returns:
        0 on a normal end or Ctrl-C / external shutdown; 2 when the node raised an
        :class:`~actial_ros.errors.ActialError` (bad configuration or input); else ``spin``'s status.
    """
    rclpy.init(args=None if args is None else list(args), signal_handler_options=SignalHandlerOptions.NO)
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    node: N | None = None
    try:
        node = factory()
        return (spin or _spin_forever)(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        return 0
    except ActialError as error:
        print(f'{name}: {error}', file=sys.stderr)
        return 2
    finally:
        # The clean-up is bounded (engine threads are joined with a timeout); a second Ctrl-C or the
        # SIGTERM that ros2 launch sends after its SIGINT must not cut it short with a traceback.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.try_shutdown()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
