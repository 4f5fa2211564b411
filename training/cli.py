"""The ``actial-ros-train`` command: dataset building, SFT, GRPO, evaluation, export.

Each subcommand lives in its own module of :mod:`actial_ros.training` (its stage's subpackage), which provides
``configure_parser(parser: argparse.ArgumentParser) -> None`` and ``run(args: argparse.Namespace) -> int``.
Modules are imported only when their subcommand runs, so ``--help`` works without torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ['SUBCOMMANDS', 'main']

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    # name: (module under actial_ros.training, one-line help)
    'build-viewpoint': ('dataset.build', 'build the Viewpoint-100K dataset from captures, COLMAP models and rosbags'),
    'sft': ('fine_tuning.sft', 'supervised fine-tuning (knowledge injection, hybrid cold start)'),
    'grpo': ('fine_tuning.grpo', 'GRPO reinforcement learning (generalisation)'),
    'evaluate': ('evaluation.evaluate', 'evaluate a model on the viewpoint test split and spatial benchmarks'),
    'export': ('fine_tuning.export', 'merge LoRA adapters and export a directory vllm serve loads'),
}


def _load(module: str) -> Any:
    """The subcommand's module (imported only when it runs: ``--help`` needs no torch)."""
    return importlib.import_module(f'actial_ros.training.{module}')


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``actial-ros-train``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog='actial-ros-train', description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest='command', required=True)
    chosen = next((a for a in argv if not a.startswith('-')), None)
    for name, (module, help_text) in SUBCOMMANDS.items():
        sub = commands.add_parser(name, help=help_text)
        if name == chosen:
            _load(module).configure_parser(sub)
    args = parser.parse_args(argv)
    return int(_load(SUBCOMMANDS[args.command][0]).run(args))


if __name__ == '__main__':
    sys.exit(main())
