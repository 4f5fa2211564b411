"""What commands pass on to a node: the ROS arguments after ``--`` and ``-p NAME:=VALUE`` overrides."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

__all__ = ['add_parameter_overrides', 'ros_arguments']


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


def add_parameter_overrides(parser: argparse.ArgumentParser, help_text: str) -> None:
    """``-p/--param NAME:=VALUE`` (repeatable, as after ``ros2 run ... --ros-args``); the texts land in
    ``args.param`` (a list, empty by default)."""
    parser.add_argument('-p', '--param', action='append', default=[], metavar='NAME:=VALUE', help=help_text)
