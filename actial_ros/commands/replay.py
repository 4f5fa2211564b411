"""``actial-ros replay``: publish an LLFF capture as ROS 2 topics (the capture_replay node).

actial-ros replay --capture DIR [--rate 2] [--transport raw|compressed] [--loops 1] [-- ROS args...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from actial_ros.commands.ros_args import ros_arguments
from actial_ros.enums import IMAGE_TRANSPORTS

__all__ = ['configure_parser', 'run']


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Flags of ``actial-ros replay``."""
    parser.add_argument('--capture', type=Path, required=True, help='LLFF capture directory')
    parser.add_argument('--rate', type=float, default=2.0, help='frames per second')
    parser.add_argument('--transport', choices=IMAGE_TRANSPORTS, default='raw', help='image transport')
    parser.add_argument('--loops', type=int, default=1, help='times the capture is published')
    parser.add_argument('ros_args', nargs=argparse.REMAINDER, help='further ROS arguments after --')


def run(args: argparse.Namespace) -> int:
    """Run the replay node until the capture is published ``--loops`` times; its exit status."""
    from actial_ros.nodes import capture_replay

    ros = [
        '--ros-args',
        '-p',
        f'capture:={args.capture.resolve()}',
        '-p',
        f'rate_hz:={float(args.rate)}',
        '-p',
        f'image_transport:={args.transport}',
        '-p',
        f'loops:={args.loops}',
    ]
    if args.transport == 'compressed':
        ros += ['-p', 'image_topic:=/camera/image_raw/compressed']
    return capture_replay.main([sys.argv[0], *ros, *ros_arguments(args.ros_args)])
