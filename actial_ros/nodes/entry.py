"""The ``main()`` shared by the package's nodes: init, build, spin, clean shutdown, exit status.

A node never dies with a traceback on Ctrl-C or an external shutdown; a configuration or input error
at start-up prints one line and exits with status 2.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TypeVar

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

from actial_ros.errors import ActialError

__all__ = ['run_node']

N = TypeVar('N', bound=Node)


def _spin_forever(node: Node) -> int:
    rclpy.spin(node)
    return 0


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
        spin: runs the node and returns the exit status (default: ``rclpy.spin`` until shutdown).

    Returns:
        0 on a normal end or Ctrl-C / external shutdown; 2 when the node raised an
        :class:`~actial_ros.errors.ActialError` (bad configuration or input); else ``spin``'s status.
    """
    rclpy.init(args=None if args is None else list(args))
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
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.try_shutdown()
