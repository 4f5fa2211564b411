"""The GPU check: every figure the project still lacks from a GPU, in one run of at most 9 minutes (prints figures).

    .venv/bin/python benchmarks/gpu_check.py --out out/gpu_check            # on one H100 / H200
    .venv/bin/python benchmarks/gpu_check.py --dry-run --out out/gpu_dry    # on a CPU: tiny sizes (CI runs it)

No GPU machine has been available to this project yet (issue 21), so this is ready for the first one. Steps, each
a subprocess with its own time limit (a step that fails or runs out of time is recorded as such and the next one
runs; the run always writes its summary):

1. ``train_7b_lora``: :mod:`benchmarks/train_throughput.py` on the random-weight Qwen2.5-VL-7B architecture, LoRA:
   SFT samples/s and tokens/s, GRPO completions/s and generated tokens/s, peak GPU memory.
2. ``train_7b_full``: the same, full fine-tuning, SFT only, with activation checkpointing: does it fit one GPU?
   (AdamW in fp32 holds about 16 bytes per parameter: a 7.6 B model wants about 120 GB, so on an 80 GB H100 an
   out-of-memory error is the expected answer, and is recorded as the figure.)
3. ``serving_7b``: :mod:`benchmarks/serving.py`: ``vllm serve`` of the random 7B checkpoint asked real pair
   questions of the bundled capture through the node's vLLM backend at 1, 4 and 16 in flight: answers/s and the
   frame-to-answer latency p50/p95. Needs a ``vllm`` executable (``--vllm``); without one the step is skipped,
   saying so.
4. ``learning``: :mod:`benchmarks/learning.py`, the from-scratch recipe (held-out scenes) at GPU scale, in what
   time is left: how much faster than the 2-core CPU's 35 minutes, and its held-out accuracy.

``--dry-run`` runs the same four steps with tiny sizes on the CPU (the tiny random model, 64x48 images, one step;
the tiny model served by the CPU vLLM of ``.venv-vllm``; the learning benchmark at its CI scale and 2 steps), so
that the script and the benchmarks it drives cannot rot unseen: ``test/test_gpu_check.py`` runs it in CI (about
3 minutes on 2 cores). Figures go to ``--out``: one JSON file per step and ``gpu_check.json`` (every step's
status, exit code, duration and figures), also printed as a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from machine import cpu_model  # benchmarks/machine.py (this script's folder is on sys.path)

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BUDGET_S = 540.0
"""The whole run's limit (seconds): 9 minutes of the GPU machine."""


@dataclass(frozen=True)
class Step:
    """One benchmark command of the check.

    Attributes:
        name: the step's name (and its JSON file's, ``<name>.json``, in the output folder).
        command: the command, without the interpreter; ``{out}`` stands for the output folder.
        limit_s: its time limit (seconds); what is left of the budget when that is less.
        needs: an executable the step needs (skipped, saying so, without it).
    """

    name: str
    command: tuple[str, ...]
    limit_s: float
    needs: str | None = None


@dataclass
class Outcome:
    """What one step did: ``status`` is ``ok``, ``failed``, ``timed out`` or ``skipped: <why>``."""

    name: str
    status: str
    returncode: int | None = None
    wall_s: float = 0.0
    figures: dict[str, Any] = field(default_factory=dict)
    log: str = ''


def steps(*, dry_run: bool, vllm: str) -> list[Step]:
    """The four steps at GPU sizes, or tiny ones for ``dry_run``."""
    throughput = str(HERE / 'train_throughput.py')
    if dry_run:
        tiny = ('--size', 'tiny', '--steps', '1', '--batch', '2', '--generations', '2', '--image-size', '64x48')
        return [
            Step(
                'train_7b_lora',
                (
                    throughput,
                    *tiny,
                    '--completion-tokens',
                    '8',
                    '--modes',
                    'sft',
                    'grpo',
                    '--finetuning',
                    'lora',
                    '--out',
                    '{out}/train_7b_lora.json',
                ),
                120,
            ),
            Step(
                'train_7b_full',
                (throughput, *tiny, '--modes', 'sft', '--finetuning', 'full', '--out', '{out}/train_7b_full.json'),
                120,
            ),
            Step(
                'serving_7b',
                (
                    str(HERE / 'serving.py'),
                    '--vllm',
                    vllm,
                    '--in-flight',
                    '1',
                    '--requests',
                    '2',
                    '--max-tokens',
                    '4',
                    '--out',
                    '{out}/serving_7b.json',
                ),
                300,
                needs=vllm,
            ),
            Step(
                'learning',
                (
                    str(HERE / 'learning.py'),
                    '--scale',
                    'ci',
                    '--max-steps',
                    '2',
                    '--no-controls',
                    '--stages',
                    'render',
                    'build',
                    'model',
                    'sft',
                    'evaluate',
                    '--out',
                    '{out}/learning',
                ),
                300,
            ),
        ]
    return [
        Step(
            'train_7b_lora',
            (
                throughput,
                '--size',
                '7b',
                '--modes',
                'sft',
                'grpo',
                '--finetuning',
                'lora',
                '--steps',
                '3',
                '--completion-tokens',
                '128',
                '--out',
                '{out}/train_7b_lora.json',
            ),
            150,
        ),
        Step(
            'train_7b_full',
            (
                throughput,
                '--size',
                '7b',
                '--modes',
                'sft',
                '--finetuning',
                'full',
                '--steps',
                '2',
                '--gradient-checkpointing',
                '--out',
                '{out}/train_7b_full.json',
            ),
            100,
        ),
        Step(
            'serving_7b',
            (
                str(HERE / 'serving.py'),
                '--write-7b',
                '{out}/random-7b',
                '--dtype',
                'bfloat16',
                '--no-enforce-eager',
                '--vllm',
                vllm,
                '--max-model-len',
                '8192',
                '--gpu-memory-utilization',
                '0.85',
                '--in-flight',
                '1,4,16',
                '--requests',
                '32',
                '--out',
                '{out}/serving_7b.json',
            ),
            180,
            needs=vllm,
        ),
        Step(
            'learning',
            (
                str(HERE / 'learning.py'),
                '--scale',
                'full',
                '--threads',
                str(os.cpu_count() or 1),
                '--workers',
                str(os.cpu_count() or 1),
                '--out',
                '{out}/learning',
            ),
            BUDGET_S,
        ),
    ]


def run_step(step: Step, out: Path, left_s: float) -> Outcome:
    """Run one step with the smaller of its limit and ``left_s``; read back the figures it wrote."""
    if step.needs is not None and shutil.which(step.needs) is None:
        return Outcome(step.name, f'skipped: no {step.needs}')
    if left_s < 10:
        return Outcome(step.name, 'skipped: no time left')
    command = [sys.executable, *(part.replace('{out}', str(out)) for part in step.command)]
    log = out / f'{step.name}.log'
    started = time.monotonic()
    with log.open('w') as sink:
        try:
            process = subprocess.run(
                command, stdout=sink, stderr=subprocess.STDOUT, timeout=min(step.limit_s, left_s), check=False
            )
            status, returncode = ('ok' if process.returncode == 0 else 'failed'), process.returncode
        except subprocess.TimeoutExpired:
            status, returncode = 'timed out', None
    outcome = Outcome(step.name, status, returncode, round(time.monotonic() - started, 1), log=str(log))
    for candidate in (out / f'{step.name}.json', out / step.name / 'results.json'):
        if candidate.is_file():
            outcome.figures = json.loads(candidate.read_text())
            break
    return outcome


def headline(outcome: Outcome) -> str:
    """The step's main figures in one line ('' when it wrote none)."""
    figures = outcome.figures
    parts = []
    for mode in ('sft', 'grpo'):
        if isinstance(figures.get(mode), dict):
            mode_figures = figures[mode]
            rate = mode_figures.get('samples_per_s', mode_figures.get('completions_per_s'))
            parts.append(f'{mode} {rate} /s, peak {mode_figures.get("peak_gpu_gb")} GB')
    for level in figures.get('levels', []):
        parts.append(f'{level.get("in_flight")} in flight: p50 {level.get("p50_s")} s, p95 {level.get("p95_s")} s')
    if 'accuracy' in figures:
        overall = {name: scores.get('overall') for name, scores in figures['accuracy'].items()}
        parts.append(', '.join(f'{name} {value:.3f}' for name, value in overall.items() if isinstance(value, float)))
    return '; '.join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', type=Path, required=True, help='folder for the figures and logs')
    parser.add_argument('--dry-run', action='store_true', help='tiny sizes on the CPU (what CI runs)')
    parser.add_argument('--budget-s', type=float, default=BUDGET_S, help='the whole run (seconds)')
    parser.add_argument(
        '--vllm', help="the vllm executable (default: 'vllm' on PATH; .venv-vllm's CPU build with --dry-run)"
    )
    args = parser.parse_args(argv)
    vllm = args.vllm or (str(REPO / '.venv-vllm' / 'bin' / 'vllm') if args.dry_run else 'vllm')
    args.out.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + args.budget_s
    outcomes = []
    for step in steps(dry_run=args.dry_run, vllm=vllm):
        outcome = run_step(step, args.out, deadline - time.monotonic())
        outcomes.append(outcome)
        print(f'{step.name}: {outcome.status} in {outcome.wall_s:.0f} s {headline(outcome)}', flush=True)
    summary = {
        'date': time.strftime('%Y-%m-%d'),
        'machine': f'{cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}, {_gpu()}',
        'dry_run': args.dry_run,
        'budget_s': args.budget_s,
        'steps': [asdict(outcome) for outcome in outcomes],
    }
    (args.out / 'gpu_check.json').write_text(json.dumps(summary, indent=1) + '\n')
    print(f'\n{summary["machine"]}; summary: {args.out / "gpu_check.json"}')
    return 0 if all(o.status == 'ok' or o.status.startswith('skipped') for o in outcomes) else 1


def _gpu() -> str:
    try:
        import torch

        if torch.cuda.is_available():
            return f'{torch.cuda.get_device_name(0)}, torch {torch.__version__}'
        return f'no GPU, torch {torch.__version__}'
    except ImportError:
        return 'no torch'


if __name__ == '__main__':
    sys.exit(main())
