"""The ROS arguments a command passes on to a node: what follows ``--`` on the command line."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ['ros_arguments']


def ros_arguments(rest: Sequence[str]) -> list[str]:
    """The arguments after ``--`` (argparse's ``REMAINDER``), without a leading ``--`` or ``--ros-args`` (the
    command starts the node's ``--ros-args`` itself): ``['--', '--ros-args', '-p', 'a:=1']`` ->
    ``['-p', 'a:=1']``."""
    args = list(rest)
    if args and args[0] == '--':
        args = args[1:]
    if args and args[0] == '--ros-args':
        args = args[1:]
    return args
