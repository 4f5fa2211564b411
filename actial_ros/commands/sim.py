"""``actial-ros sim``: run the simulated rig as a ROS 2 node, or render a run into a rosbag2 without ROS.

    actial-ros sim [--trajectory orbit|arc|random_walk|drive] [--duration S] [--rate HZ] [--size 320x240]
                   [--realtime-factor X] [--camera-pitch DEG] [--camera-height M] [--record FILE]
                   [-p NAME:=VALUE ...] [-- ROS args...]
    actial-ros sim --bag DIR --duration S [...]          # offline: no ROS needed, writes DIR (mcap)

Options map onto the node's parameters (:data:`actial_ros.simulation.parameters.RIG_PARAMETERS`); ``-p``
sets any of them (values in YAML, as after ``ros2 run ... -p``). ``--camera-pitch``/``--camera-yaw``/
``--camera-height`` compute the extrinsic and print the matching ``spatial_reasoner`` parameters.
This module imports neither rclpy nor pybullet until a run starts.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from actial_ros.commands.ros_args import add_parameter_overrides
from actial_ros.errors import ActialError, ConfigError

__all__ = ['configure_parser', 'rig_values_from_args', 'run']

# option dest -> rig parameter
_DIRECT = {
    'trajectory': 'trajectory',
    'duration': 'duration_s',
    'rate': 'camera_rate_hz',
    'step_rate': 'step_rate_hz',
    'odometry_rate': 'odometry_rate_hz',
    'realtime_factor': 'real_time_factor',
    'fov': 'fov_v_deg',
    'floor': 'floor',
    'backdrop': 'backdrop',
    'seed': 'seed',
    'noise': 'noise_std',
    'radius': 'radius_m',
    'height': 'height_m',
    'speed': 'speed_deg_s',
    'record': 'record',
    'on_end': 'on_end',
}


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the ``sim`` options to ``parser``."""
    parser.add_argument('--trajectory', choices=('orbit', 'arc', 'random_walk', 'drive'), help='default: orbit')
    parser.add_argument('--duration', type=float, help="simulated seconds of motion (0: the trajectory's own)")
    parser.add_argument('--rate', type=float, help='camera frames per simulated second (default 10)')
    parser.add_argument('--step-rate', type=float, help='simulation steps and /clock per simulated second (100)')
    parser.add_argument('--odometry-rate', type=float, help='odometry per simulated second (50)')
    parser.add_argument('--realtime-factor', type=float, help='simulated s per wall s; 0: as fast as possible (1)')
    parser.add_argument('--size', help='image size WIDTHxHEIGHT (default 320x240)')
    parser.add_argument('--fov', type=float, help='vertical field of view in degrees (60)')
    parser.add_argument('--objects', nargs='+', metavar='SPEC', help="object specs 'PATH[;size=m][;x=m]...'")
    parser.add_argument('--floor', help="'noise', 'checker', 'none' or an image file")
    parser.add_argument(
        '--backdrop',
        help="'none', 'panorama' (walls whose hue follows azimuth), 'noise' (a seeded wall, no colour map) or an image",
    )
    parser.add_argument('--seed', type=int)
    parser.add_argument('--noise', type=float, help='Gaussian pixel noise (8-bit units)')
    parser.add_argument('--shadows', action='store_true', default=None)
    parser.add_argument('--depth', action='store_true', default=None, help='also render and publish depth')
    parser.add_argument('--radius', type=float, help='orbit/arc radius (m)')
    parser.add_argument('--height', type=float, help='base height for orbit, arc and drive (m)')
    parser.add_argument('--speed', type=float, help='orbit/arc angular speed (deg/s)')
    parser.add_argument('--camera-pitch', type=float, help='camera pitched DOWN by this many degrees')
    parser.add_argument('--camera-yaw', type=float, help='camera turned LEFT by this many degrees (90: sideways)')
    parser.add_argument('--camera-height', type=float, help='camera height above base_link (m)')
    parser.add_argument('--record', type=Path, help='write the ground-truth pose record (JSON lines) here')
    parser.add_argument('--on-end', choices=('hold', 'exit'), help='after a finite run (node mode; default hold)')
    add_parameter_overrides(parser, 'any sim_rig parameter (repeatable; YAML values)')
    parser.add_argument('--bag', type=Path, help='render the run into this new rosbag2 directory instead (no ROS)')
    parser.add_argument('--storage', choices=('mcap', 'sqlite3'), default='mcap', help='bag storage (--bag)')
    parser.add_argument('ros_args', nargs=argparse.REMAINDER, help='further ROS arguments after -- (node mode)')


def rig_values_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The rig parameter values the options set (only those given).

    Raises:
        ConfigError: a malformed ``--size`` or ``-p``, or invalid camera mount angles.
    """
    values: dict[str, Any] = {}
    for dest, name in _DIRECT.items():
        value = getattr(args, dest, None)
        if value is not None:
            values[name] = str(value) if isinstance(value, Path) else value
    if args.size is not None:
        width, sep, height = str(args.size).lower().partition('x')
        if not sep or not width.isdigit() or not height.isdigit():
            raise ConfigError(f'--size must be WIDTHxHEIGHT, got {args.size!r}')
        values['width'], values['height'] = int(width), int(height)
    if args.objects is not None:
        values['objects'] = list(args.objects)
    for flag in ('shadows', 'depth'):
        if getattr(args, flag):
            values[flag] = True
    if any(v is not None for v in (args.camera_pitch, args.camera_yaw, args.camera_height)):
        from actial_ros.simulation.mount import camera_mount, mount_parameters

        mount = camera_mount(
            (0.0, 0.0, args.camera_height or 0.0),
            pitch_down_deg=args.camera_pitch or 0.0,
            yaw_deg=args.camera_yaw or 0.0,
        )
        values.update(mount_parameters(mount))
    for item in args.param:
        name, sep, text = str(item).partition(':=')
        if not sep or not name.strip():
            raise ConfigError(f'-p expects NAME:=VALUE, got {item!r}')
        try:
            values[name.strip()] = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ConfigError(f'-p {name}: not a YAML value: {error}') from None
    return values


def _ros_args(values: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for name, value in values.items():
        out += ['-p', f'{name}:={json.dumps(value)}']
    return out


def run(args: argparse.Namespace) -> int:
    """Run ``actial-ros sim`` (node mode, or ``--bag`` offline); returns the exit status."""
    try:
        values = rig_values_from_args(args)
        if 'extrinsic_rotation_xyzw' in values:
            reasoner = ' '.join(
                f'-p {name}:={json.dumps([round(v, 9) for v in values[name]])}'
                for name in ('extrinsic_translation', 'extrinsic_rotation_xyzw')
            )
            print(f'camera mount; give the spatial_reasoner the same: {reasoner}', file=sys.stderr)
        if args.bag is not None:
            return _write_bag(args, values)
    except ActialError as error:
        print(f'actial-ros sim: {error}', file=sys.stderr)
        return 2
    from actial_ros.nodes import sim_rig

    rest = list(args.ros_args)
    if rest and rest[0] == '--':
        rest = rest[1:]
    if rest and rest[0] == '--ros-args':
        rest = rest[1:]
    return sim_rig.main([sys.argv[0], '--ros-args', *_ros_args(values), *rest])


def _write_bag(args: argparse.Namespace, values: dict[str, Any]) -> int:
    from actial_ros.simulation.bag import write_sim_bag
    from actial_ros.simulation.parameters import rig_config_from_values
    from actial_ros.simulation.rig import SimRig

    values.pop('record', None)
    values.pop('on_end', None)
    config = rig_config_from_values(values)
    if config.effective_duration_s is None:
        raise ConfigError('--bag needs a finite run: give --duration (an orbit never ends)')
    with SimRig(config) as rig:
        summary = write_sim_bag(args.bag, rig, storage=args.storage, record=args.record)
    counts = ', '.join(f'{topic} {count}' for topic, count in sorted(summary.counts.items()))
    print(f'wrote {summary.frames} frames to {summary.path} ({counts})')
    if args.record is not None:
        print(f'pose record: {args.record}')
    return 0
