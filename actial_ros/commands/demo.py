"""``actial-ros demo``: run the spatial_reasoner node on a capture or a bag over ROS 2, score its answers
against the capture's poses (or the bag's odometry), and write them (JSON lines; optionally an HTML report).

    actial-ros demo --capture DIR [--backend geometry|vllm|transformers] [--out answers.jsonl] [--rate 4]
    actial-ros demo --bag PATH [--camera NAME:IMAGE_TOPIC[:INFO_TOPIC]] [--extrinsic NAME:TX,TY,TZ,QX,QY,QZ,QW]
                    [--speed 1]

The run itself is :func:`actial_ros.demo.run_demo`; this module only maps flags onto
:class:`actial_ros.demo.DemoOptions`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from actial_ros.backends.defaults import DEFAULT_BASE_URL, DEFAULT_MODEL
from actial_ros.commands.ros_args import add_parameter_overrides
from actial_ros.enums import IMAGE_TRANSPORTS

__all__ = ['configure_parser', 'run']


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Flags of ``actial-ros demo``."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        '--capture',
        type=Path,
        action='append',
        help='LLFF capture directory; repeat for a rig of several cameras sharing one world frame',
    )
    _add_bag_args(parser, source)
    parser.add_argument(
        '--backend',
        choices=('geometry', 'vllm', 'transformers'),
        default='vllm' if os.environ.get('ACTIAL_VLLM_URL') else 'geometry',
        help='model backend (default: vllm when ACTIAL_VLLM_URL is set, else geometry)',
    )
    parser.add_argument('--out', type=Path, default=Path('answers.jsonl'), help='JSON-lines output file')
    parser.add_argument(
        '--report', type=Path, metavar='PATH.html', help='also write a self-contained HTML report (frames and answers)'
    )
    parser.add_argument('--rate', type=float, default=4.0, help='replay rate in frames per second')
    parser.add_argument('--transport', choices=IMAGE_TRANSPORTS, default='raw', help='image transport')
    parser.add_argument(
        '--vllm-url',
        default=os.environ.get('ACTIAL_VLLM_URL', DEFAULT_BASE_URL),
        help='OpenAI-compatible base URL (default: $ACTIAL_VLLM_URL)',
    )
    parser.add_argument(
        '--model',
        default=os.environ.get('ACTIAL_VLLM_MODEL', DEFAULT_MODEL),
        help='served model name (default: $ACTIAL_VLLM_MODEL or actial-7b)',
    )
    parser.add_argument(
        '--transformers-model', default='', metavar='DIR', help='Qwen2.5-VL checkpoint for --backend transformers'
    )
    parser.add_argument('--params-file', type=Path, help='node parameter YAML applied before the overrides')
    add_parameter_overrides(parser, 'extra node parameter override (repeatable)')
    parser.add_argument('--domain-id', type=int, help='ROS domain id (default: derived from the process id)')
    parser.add_argument('--timeout', type=float, default=600.0, help='seconds to wait for answers')
    parser.add_argument('--no-progress', action='store_true', help='no live progress display')


def _add_bag_args(parser: Any, source: Any) -> None:
    source.add_argument(
        '--bag',
        type=Path,
        help='rosbag2 recording (folder, .mcap or split recording) replayed by bag_replay; frames named CAMERA@STAMP',
    )
    parser.add_argument(
        '--camera',
        action='append',
        default=[],
        metavar='NAME:IMAGE_TOPIC[:CAMERA_INFO_TOPIC]',
        help='a camera of the bag (repeatable; default: recording.json, or the one image topic)',
    )
    parser.add_argument(
        '--extrinsic',
        action='append',
        default=[],
        metavar='NAME:TX,TY,TZ,QX,QY,QZ,QW',
        help="a bag camera's T_base_camera_optical (m, base_link; quaternion x,y,z,w)",
    )
    parser.add_argument('--camera-file', type=Path, help='JSON/YAML camera list of the bag (or a recording.json)')
    parser.add_argument('--speed', type=float, default=1.0, help='bag playback speed factor (1: as recorded)')
    parser.add_argument(
        '--restamp', action='store_true', help="stamp the bag's messages with the current time (one offset)"
    )


def _bag_demo_options(args: argparse.Namespace) -> dict[str, Any]:
    """The bag fields of DemoOptions (raises ConfigError for malformed camera flags)."""
    from actial_ros.bags.camera_specs import bag_cameras_from_args

    if args.bag is None:
        return {}
    cameras = bag_cameras_from_args(args.camera, args.extrinsic, args.camera_file)
    return {'bag': args.bag, 'cameras': cameras, 'speed': args.speed, 'restamp': args.restamp}


def run(args: argparse.Namespace) -> int:
    """Run ``actial-ros demo``: 0 when frames were published and answers written, 1 when the run failed,
    2 on malformed camera flags."""
    from rich.console import Console

    from actial_ros.demo import DemoOptions, run_demo, summary_table
    from actial_ros.errors import ActialError

    console = Console(width=None if sys.stdout.isatty() else 140)
    try:
        bag_options = _bag_demo_options(args)
    except ActialError as error:
        console.print(f'[red]demo failed:[/red] {error}')
        return 2
    options = DemoOptions(
        capture=args.capture[0] if args.capture else None,
        extra_captures=tuple(args.capture[1:]) if args.capture else (),
        out=args.out,
        backend=args.backend,
        rate_hz=args.rate,
        transport=args.transport,
        vllm_base_url=args.vllm_url,
        vllm_model=args.model,
        transformers_model=args.transformers_model,
        params_file=args.params_file,
        node_parameters=tuple(args.param),
        domain_id=args.domain_id,
        timeout_s=args.timeout,
        progress=not args.no_progress,
        report=args.report,
        **bag_options,
    )
    try:
        result = run_demo(options, console=Console(stderr=True))
    except ActialError as error:
        console.print(f'[red]demo failed:[/red] {error}')
        return 1
    console.print(summary_table(result))
    console.print(f'{len(result.rows)} answers written to {args.out}')
    if args.report is not None:
        console.print(f'report: {args.report}')
    return 0 if result.frames_published > 0 else 1
