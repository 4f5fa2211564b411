"""The ``actial-ros`` command: demo, reasoner (the node), replay, fastdds-profile.

actial-ros demo --capture DIR [--backend geometry|vllm] [--out answers.jsonl] [--rate 4]
actial-ros reasoner [--params-file config/spatial_reasoner.yaml] [-- ROS args...]
actial-ros replay --capture DIR [--rate 2] [--transport raw|compressed] [--loops 1]
actial-ros fastdds-profile [--out FILE]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ['main']


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='actial-ros', description="Actial's viewpoint reasoning for ROS 2 robots.")
    commands = parser.add_subparsers(dest='command', required=True)

    demo = commands.add_parser('demo', help='run the node on a capture over ROS 2 and score its answers')
    demo.add_argument(
        '--capture',
        type=Path,
        required=True,
        action='append',
        help='LLFF capture directory; repeat for a rig of several cameras sharing one world frame',
    )
    demo.add_argument(
        '--backend',
        choices=('geometry', 'vllm'),
        default='vllm' if os.environ.get('ACTIAL_VLLM_URL') else 'geometry',
        help='model backend (default: vllm when ACTIAL_VLLM_URL is set, else geometry)',
    )
    demo.add_argument('--out', type=Path, default=Path('answers.jsonl'), help='JSON-lines output file')
    demo.add_argument('--rate', type=float, default=4.0, help='replay rate in frames per second')
    demo.add_argument('--transport', choices=('raw', 'compressed'), default='raw', help='image transport')
    demo.add_argument(
        '--vllm-url',
        default=os.environ.get('ACTIAL_VLLM_URL', 'http://127.0.0.1:8000/v1'),
        help='OpenAI-compatible base URL (default: $ACTIAL_VLLM_URL)',
    )
    demo.add_argument(
        '--model',
        default=os.environ.get('ACTIAL_VLLM_MODEL', 'actial-7b'),
        help='served model name (default: $ACTIAL_VLLM_MODEL or actial-7b)',
    )
    demo.add_argument('--params-file', type=Path, help='node parameter YAML applied before the overrides')
    demo.add_argument(
        '-p',
        '--param',
        action='append',
        default=[],
        metavar='NAME:=VALUE',
        help='extra node parameter override (repeatable)',
    )
    demo.add_argument('--domain-id', type=int, help='ROS domain id (default: derived from the process id)')
    demo.add_argument('--timeout', type=float, default=600.0, help='seconds to wait for answers')
    demo.add_argument('--no-progress', action='store_true', help='no live progress display')

    reasoner = commands.add_parser('reasoner', help='run the spatial_reasoner node')
    reasoner.add_argument('--params-file', type=Path, help='node parameter YAML')
    reasoner.add_argument('ros_args', nargs=argparse.REMAINDER, help='further ROS arguments after --')

    replay = commands.add_parser('replay', help='publish an LLFF capture as ROS 2 topics')
    replay.add_argument('--capture', type=Path, required=True)
    replay.add_argument('--rate', type=float, default=2.0)
    replay.add_argument('--transport', choices=('raw', 'compressed'), default='raw')
    replay.add_argument('--loops', type=int, default=1)
    replay.add_argument('ros_args', nargs=argparse.REMAINDER, help='further ROS arguments after --')

    profile = commands.add_parser('fastdds-profile', help='print or write the 16 MB shared-memory Fast DDS profile')
    profile.add_argument('--out', type=Path)
    return parser


def _remainder(args: Sequence[str]) -> list[str]:
    rest = list(args)
    if rest and rest[0] == '--':
        rest = rest[1:]
    return rest


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``actial-ros``; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command == 'demo':
        from rich.console import Console

        from actial_ros.demo import DemoOptions, run_demo, summary_table
        from actial_ros.errors import ActialError

        console = Console(width=None if sys.stdout.isatty() else 140)
        options = DemoOptions(
            capture=args.capture[0],
            extra_captures=tuple(args.capture[1:]),
            out=args.out,
            backend=args.backend,
            rate_hz=args.rate,
            transport=args.transport,
            vllm_base_url=args.vllm_url,
            vllm_model=args.model,
            params_file=args.params_file,
            node_parameters=tuple(args.param),
            domain_id=args.domain_id,
            timeout_s=args.timeout,
            progress=not args.no_progress,
        )
        try:
            result = run_demo(options, console=Console(stderr=True))
        except ActialError as error:
            console.print(f'[red]demo failed:[/red] {error}')
            return 1
        console.print(summary_table(result))
        console.print(f'{len(result.rows)} answers written to {args.out}')
        return 0 if result.frames_published > 0 else 1
    if args.command == 'reasoner':
        from actial_ros.nodes import spatial_reasoner

        ros = ['--ros-args'] + (['--params-file', str(args.params_file)] if args.params_file else [])
        rest = _remainder(args.ros_args)
        if rest and rest[0] == '--ros-args':
            rest = rest[1:]
        return spatial_reasoner.main([sys.argv[0], *ros, *rest])
    if args.command == 'replay':
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
        rest = _remainder(args.ros_args)
        if rest and rest[0] == '--ros-args':
            rest = rest[1:]
        return capture_replay.main([sys.argv[0], *ros, *rest])
    if args.command == 'fastdds-profile':
        from actial_ros.dds import FASTDDS_SHM_PROFILE_XML

        if args.out:
            args.out.write_text(FASTDDS_SHM_PROFILE_XML)
        else:
            sys.stdout.write(FASTDDS_SHM_PROFILE_XML)
        return 0
    return 2


if __name__ == '__main__':
    sys.exit(main())
