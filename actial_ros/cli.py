"""The ``actial-ros`` command: one subcommand per module of :mod:`actial_ros.commands`.

    actial-ros demo --capture DIR | --bag PATH [...]       run the node on a capture or a bag and score it
    actial-ros reasoner [--params-file FILE] [-- ROS args]   the spatial_reasoner node
    actial-ros replay --capture DIR [...]                    publish a capture as ROS 2 topics
    actial-ros sim [...] | sim --bag DIR [...]               the simulated camera rig (ROS 2, or a bag)
    actial-ros serve MODEL [--run] [...]                     the vllm serve command for a checkpoint
    actial-ros report ANSWERS --bag PATH | --capture DIR     the HTML report of a run, again
    actial-ros fastdds-profile [--out FILE]                  the 16 MB shared-memory Fast DDS profile

Each command module has ``configure_parser(parser)`` and ``run(args) -> exit status``; the modules are
imported when the parser is built, and they import nodes, rclpy or pybullet only when they run.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ['COMMANDS', 'main']

COMMANDS: dict[str, tuple[str, str]] = {
    'demo': ('demo', 'run the node on a capture or a bag over ROS 2 and score its answers'),
    'reasoner': ('reasoner', 'run the spatial_reasoner node'),
    'replay': ('replay', 'publish an LLFF capture as ROS 2 topics'),
    'sim': ('sim', 'a simulated camera rig (pybullet CPU renderer): ROS 2 or a bag'),
    'fastdds-profile': ('fastdds_profile', 'print or write the 16 MB shared-memory Fast DDS profile'),
    'serve': ('serve', 'print (or start with --run) the vllm serve command for a Qwen2.5-VL checkpoint'),
    'report': ('report', "re-render a run's HTML report from its answers file and its bag or capture"),
}
"""Subcommand -> (module of :mod:`actial_ros.commands`, one-line help)."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='actial-ros', description="Actial's viewpoint reasoning for ROS 2 robots.")
    commands = parser.add_subparsers(dest='command', required=True)
    for name, (module, help_text) in COMMANDS.items():
        command = importlib.import_module(f'actial_ros.commands.{module}')
        sub = commands.add_parser(name, help=help_text)
        command.configure_parser(sub)
        sub.set_defaults(command_run=command.run)  # not 'run': `serve --run` is a flag
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``actial-ros``; returns the exit status."""
    args = _parser().parse_args(argv)
    return int(args.command_run(args))


if __name__ == '__main__':
    sys.exit(main())
