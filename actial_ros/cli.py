"""The ``actial-ros`` command: demo, reasoner (the node), replay, fastdds-profile.

actial-ros demo --capture DIR [--backend geometry|vllm] [--out answers.jsonl] [--rate 4]
actial-ros demo --bag PATH [--camera NAME:IMAGE_TOPIC[:INFO_TOPIC] --extrinsic NAME:TX,TY,TZ,QX,QY,QZ,QW] [--speed 1]
actial-ros reasoner [--params-file config/spatial_reasoner.yaml] [-- ROS args...]
actial-ros replay --capture DIR [--rate 2] [--transport raw|compressed] [--loops 1]
actial-ros fastdds-profile [--out FILE]
actial-ros sim [--trajectory orbit|arc|random_walk|drive] [--duration S] [--bag DIR] [-p NAME:=VALUE] [-- ROS args...]
actial-ros serve MODEL [--served-model-name actial-7b] [--port 8000] [--api-key-env VAR] [--run] [--vllm-args '...']
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from actial_ros.backends.defaults import DEFAULT_BASE_URL, DEFAULT_MODEL

__all__ = ['main']


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='actial-ros', description="Actial's viewpoint reasoning for ROS 2 robots.")
    commands = parser.add_subparsers(dest='command', required=True)

    demo = commands.add_parser('demo', help='run the node on a capture or a bag over ROS 2 and score its answers')
    source = demo.add_mutually_exclusive_group(required=True)
    source.add_argument(
        '--capture',
        type=Path,
        action='append',
        help='LLFF capture directory; repeat for a rig of several cameras sharing one world frame',
    )
    _add_bag_demo_args(demo, source)
    demo.add_argument(
        '--backend',
        choices=('geometry', 'vllm', 'transformers'),
        default='vllm' if os.environ.get('ACTIAL_VLLM_URL') else 'geometry',
        help='model backend (default: vllm when ACTIAL_VLLM_URL is set, else geometry)',
    )
    demo.add_argument('--out', type=Path, default=Path('answers.jsonl'), help='JSON-lines output file')
    demo.add_argument(
        '--report', type=Path, metavar='PATH.html', help='also write a self-contained HTML report (frames and answers)'
    )
    demo.add_argument('--rate', type=float, default=4.0, help='replay rate in frames per second')
    demo.add_argument('--transport', choices=('raw', 'compressed'), default='raw', help='image transport')
    demo.add_argument(
        '--vllm-url',
        default=os.environ.get('ACTIAL_VLLM_URL', DEFAULT_BASE_URL),
        help='OpenAI-compatible base URL (default: $ACTIAL_VLLM_URL)',
    )
    demo.add_argument(
        '--model',
        default=os.environ.get('ACTIAL_VLLM_MODEL', DEFAULT_MODEL),
        help='served model name (default: $ACTIAL_VLLM_MODEL or actial-7b)',
    )
    demo.add_argument(
        '--transformers-model', default='', metavar='DIR', help='Qwen2.5-VL checkpoint for --backend transformers'
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

    from actial_ros.commands.sim import configure_parser as configure_sim

    configure_sim(commands.add_parser('sim', help='a simulated camera rig (pybullet CPU renderer): ROS 2 or a bag'))

    profile = commands.add_parser('fastdds-profile', help='print or write the 16 MB shared-memory Fast DDS profile')
    profile.add_argument('--out', type=Path)

    _add_serve_parser(commands)
    return parser


def _add_serve_parser(commands: Any) -> None:
    serve = commands.add_parser(
        'serve',
        help='print (or start with --run) the vllm serve command for a Qwen2.5-VL checkpoint',
        description='Print the vllm serve command that serves MODEL the way the spatial_reasoner node '
        'expects (two images per prompt, served model name, context length, API key from a variable); '
        'with --run, start it. See docs/serving.md.',
    )
    serve.add_argument('model', help='Qwen2.5-VL checkpoint directory or hub id')
    serve.add_argument(
        '--served-model-name', default=DEFAULT_MODEL, help=f"the node's vllm_model (default {DEFAULT_MODEL})"
    )
    serve.add_argument('--host', default='127.0.0.1', help='listen address (0.0.0.0: all interfaces)')
    serve.add_argument('--port', type=int, default=8000)
    serve.add_argument(
        '--api-key-env',
        default=None,
        metavar='VAR',
        help='environment variable holding the API key; passed as VLLM_API_KEY, never echoed',
    )
    serve.add_argument('--max-model-len', type=int, default=8192, help='context length (tokens)')
    serve.add_argument(
        '--limit-mm-per-prompt', default='image=2,video=0', help='items per prompt (image=2,video=0 or JSON)'
    )
    serve.add_argument('--dtype', default='auto', help='auto, bfloat16, float16 or float32')
    serve.add_argument('--gpu-memory-utilization', type=float, default=None)
    serve.add_argument('--tensor-parallel-size', type=int, default=None)
    serve.add_argument('--max-num-seqs', type=int, default=None)
    serve.add_argument('--enforce-eager', action='store_true', help='no graph capture (faster start; CPU)')
    serve.add_argument('--cpu-kv-cache-gib', type=int, default=None, help='CPU builds: KV cache size (GiB)')
    serve.add_argument('--vllm', default='vllm', help='the vllm executable (default: vllm on PATH)')
    serve.add_argument('--run', action='store_true', help='start the server instead of printing the command')
    serve.add_argument(
        '--vllm-args',
        action='append',
        default=[],
        metavar='ARGS',
        help="further vllm serve arguments, shell-quoted in one string (repeatable), e.g. '--max-num-seqs 8'",
    )


def _serve(args: argparse.Namespace) -> int:
    import shlex

    from actial_ros.errors import ConfigError
    from actial_ros.serving import exec_server, format_serve_command, options_from_args

    try:
        options = options_from_args(
            args.model,
            served_model_name=args.served_model_name,
            host=args.host,
            port=args.port,
            api_key_env=args.api_key_env,
            max_model_len=args.max_model_len,
            limit_mm_per_prompt=args.limit_mm_per_prompt,
            dtype=args.dtype,
            gpu_memory_utilization=args.gpu_memory_utilization,
            tensor_parallel_size=args.tensor_parallel_size,
            max_num_seqs=args.max_num_seqs,
            enforce_eager=args.enforce_eager,
            cpu_kv_cache_gib=args.cpu_kv_cache_gib,
            extra_args=[arg for text in args.vllm_args for arg in shlex.split(text)],
            executable=args.vllm,
        )
        if not args.run:
            print(format_serve_command(options))
            print(
                f'# node: -p backend:=vllm -p vllm_base_url:={options.base_url} '
                f'-p vllm_model:={options.served_model_name}'
                + (f' -p vllm_api_key_env:={options.api_key_env}' if options.api_key_env else ''),
                file=sys.stderr,
            )
            return 0
        print(format_serve_command(options), file=sys.stderr, flush=True)
        exec_server(options)
    except ConfigError as error:
        print(f'actial-ros serve: {error}', file=sys.stderr)
        return 2
    return 0  # not reached: exec_server replaces the process


def _add_bag_demo_args(demo: Any, source: Any) -> None:
    source.add_argument(
        '--bag',
        type=Path,
        help='rosbag2 recording (folder, .mcap or split recording) replayed by bag_replay; frames named CAMERA@STAMP',
    )
    demo.add_argument(
        '--camera',
        action='append',
        default=[],
        metavar='NAME:IMAGE_TOPIC[:CAMERA_INFO_TOPIC]',
        help='a camera of the bag (repeatable; default: recording.json, or the one image topic)',
    )
    demo.add_argument(
        '--extrinsic',
        action='append',
        default=[],
        metavar='NAME:TX,TY,TZ,QX,QY,QZ,QW',
        help="a bag camera's T_base_camera_optical (m, base_link; quaternion x,y,z,w)",
    )
    demo.add_argument('--camera-file', type=Path, help='JSON/YAML camera list of the bag (or a recording.json)')
    demo.add_argument('--speed', type=float, default=1.0, help='bag playback speed factor (1: as recorded)')
    demo.add_argument(
        '--restamp', action='store_true', help="stamp the bag's messages with the current time (one offset)"
    )


def _bag_demo_options(args: argparse.Namespace) -> dict[str, Any]:
    """The bag fields of DemoOptions (raises ConfigError for malformed camera flags)."""
    from actial_ros.sources.rosbag import bag_cameras_from_args

    if args.bag is None:
        return {}
    cameras = bag_cameras_from_args(args.camera, args.extrinsic, args.camera_file)
    return {'bag': args.bag, 'cameras': cameras, 'speed': args.speed, 'restamp': args.restamp}


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
    if args.command == 'sim':
        from actial_ros.commands.sim import run as run_sim

        return run_sim(args)
    if args.command == 'fastdds-profile':
        from actial_ros.dds import FASTDDS_SHM_PROFILE_XML

        if args.out:
            args.out.write_text(FASTDDS_SHM_PROFILE_XML)
        else:
            sys.stdout.write(FASTDDS_SHM_PROFILE_XML)
        return 0
    if args.command == 'serve':
        return _serve(args)
    return 2


if __name__ == '__main__':
    sys.exit(main())
