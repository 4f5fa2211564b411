"""``actial-ros reasoner``: run the spatial_reasoner node (as ``ros2 run actial_ros spatial_reasoner``).

actial-ros reasoner [--params-file config/spatial_reasoner.yaml] [-- ROS args...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from actial_ros.commands.ros_args import ros_arguments

__all__ = ['configure_parser', 'run']


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Flags of ``actial-ros reasoner``."""
    parser.add_argument('--params-file', type=Path, help='node parameter YAML')
    parser.add_argument('ros_args', nargs=argparse.REMAINDER, help='further ROS arguments after --')


def run(args: argparse.Namespace) -> int:
    """Run the node until Ctrl-C; its exit status (:func:`actial_ros.nodes.entry.run_node`)."""
    from actial_ros.nodes import spatial_reasoner

    ros = ['--ros-args'] + (['--params-file', str(args.params_file)] if args.params_file else [])
    return spatial_reasoner.main([sys.argv[0], *ros, *ros_arguments(args.ros_args)])
