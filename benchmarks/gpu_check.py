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
3. ``learning``: :mod:`benchmarks/learning.py`, the from-scratch recipe at its CI held-out scale in held-out
   scenes (``--scale ci_heldout --scene random``, no controls): how much faster than on the 2-core CPU, and its
   held-out accuracy (one draw: a speed figure, not a learning one).
4. ``serving_7b``: :mod:`benchmarks/serving.py`: ``vllm serve`` of the random 7B checkpoint asked real pair
   questions of the bundled capture through the node's vLLM backend at 1, 4 and 16 in flight: answers/s and the
   frame-to-answer latency p50/p95, in what time is left. Needs a ``vllm`` executable (``--vllm``); without one
   the step is skipped, saying so.

``--dry-run`` runs the same four steps with tiny sizes on the CPU (the tiny random model, 64x48 images, one step;
the learning benchmark at its CI scale and 2 steps; the tiny model served by the CPU vLLM of ``.venv-vllm``), so
that the script and the benchmarks it drives cannot rot unseen: ``test/test_gpu_check.py`` runs it in CI (about
3 minutes on 2 cores; its budget is 1,000 s, not 540). A step that runs out of time is stopped with its whole
process group (SIGINT first, so that it can clean up, then SIGKILL). Figures go to ``--out``: one JSON file per
step (an earlier run's is removed first) and ``gpu_check.json`` (every step's status, exit code, duration and
figures), also printed as a table.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
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
DRY_RUN_BUDGET_S = 1000.0
"""The dry run's limit (seconds): its steps' own limits, with room (a loaded 2-core CI machine)."""
STOP_GRACE_S = 20.0
"""After SIGINT, how long a timed-out step may take to clean up (``serving.py`` stops its vLLM server in a
``finally``) before its whole process group is killed."""


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
    """The four steps at GPU sizes, or tiny ones for ``dry_run``. Serving goes last: it writes a 16.6 GB checkpoint
    and starts a server, and takes what time is left."""
    throughput, learning, serving = (str(HERE / name) for name in ('train_throughput.py', 'learning.py', 'serving.py'))
    stages = ['--stages', 'render', 'build', 'model', 'sft', 'evaluate', '--no-controls']
    if dry_run:
        tiny = ['--size', 'tiny', '--steps', '1', '--batch', '2', '--generations', '2', '--image-size', '64x48']
        lora = ['--completion-tokens', '8', '--modes', 'sft', 'grpo', '--finetuning', 'lora']
        asks = ['--in-flight', '1', '--requests', '2', '--max-tokens', '4']
        return [
            Step('train_7b_lora', (throughput, *tiny, *lora, '--out', '{out}/train_7b_lora.json'), 120),
            Step('train_7b_full', (throughput, *tiny, '--modes', 'sft', '--out', '{out}/train_7b_full.json'), 120),
            Step('learning', (learning, '--scale', 'ci', '--max-steps', '2', *stages, '--out', '{out}/learning'), 300),
            Step('serving_7b', (serving, '--vllm', vllm, *asks, '--out', '{out}/serving_7b.json'), 300, needs=vllm),
        ]
    cores = str(os.cpu_count() or 1)
    lora_7b = ['--size', '7b', '--modes', 'sft', 'grpo', '--finetuning', 'lora', '--steps', '3']
    full_7b = ['--size', '7b', '--modes', 'sft', '--finetuning', 'full', '--steps', '2', '--gradient-checkpointing']
    # The CI held-out scale (16 training and 8 held-out runs, 500 steps) in the random scene.
    learning_gpu = ['--scale', 'ci_heldout', '--scene', 'random', '--threads', cores, '--workers', cores, *stages]
    serve_7b = ['--dtype', 'bfloat16', '--no-enforce-eager', '--max-model-len', '8192']
    asks_7b = ['--gpu-memory-utilization', '0.85', '--in-flight', '1,4,16', '--requests', '32']
    return [
        Step(
            'train_7b_lora',
            (throughput, *lora_7b, '--completion-tokens', '128', '--out', '{out}/train_7b_lora.json'),
            120,
        ),
        Step('train_7b_full', (throughput, *full_7b, '--out', '{out}/train_7b_full.json'), 80),
        Step('learning', (learning, *learning_gpu, '--out', '{out}/learning'), 150),
        Step(
            'serving_7b',
            (
                serving,
                '--write-7b',
                '{out}/random-7b',
                '--vllm',
                vllm,
                *serve_7b,
                *asks_7b,
                '--out',
                '{out}/serving_7b.json',
            ),
            BUDGET_S,
            needs=vllm,
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
    figures = (out / f'{step.name}.json', out / step.name / 'results.json')
    for stale in figures:  # a figure file of an earlier run in this folder is not this run's figure
        stale.unlink(missing_ok=True)
    started = time.monotonic()
    with log.open('w') as sink:
        # Its own process group: on a timeout the step and everything it started (sim renders, training ranks)
        # stop, after SIGINT has let it clean up (serving.py stops its vLLM server, in a session of its own).
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            returncode: int | None = process.wait(timeout=min(step.limit_s, left_s))
            status = 'ok' if returncode == 0 else 'failed'
        except subprocess.TimeoutExpired:
            status, returncode = 'timed out', None
            _stop_group(process)
    outcome = Outcome(step.name, status, returncode, round(time.monotonic() - started, 1), log=str(log))
    for candidate in figures:
        if candidate.is_file():
            try:
                outcome.figures = json.loads(candidate.read_text())
            except ValueError as error:  # half written by a step that was stopped
                outcome.figures = {'unreadable': f'{candidate}: {error}'}
            break
    return outcome


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGINT to the step's process group, then, after :data:`STOP_GRACE_S`, SIGKILL to whatever is left in it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGINT)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=STOP_GRACE_S)
    with contextlib.suppress(ProcessLookupError):  # the group outlives its leader while members remain
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10.0)


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
    parser.add_argument(
        '--budget-s',
        type=float,
        help=f'the whole run (seconds; default {BUDGET_S:g}, {DRY_RUN_BUDGET_S:g} with --dry-run)',
    )
    parser.add_argument(
        '--vllm', help="the vllm executable (default: 'vllm' on PATH; .venv-vllm's CPU build with --dry-run)"
    )
    args = parser.parse_args(argv)
    vllm = args.vllm or (str(REPO / '.venv-vllm' / 'bin' / 'vllm') if args.dry_run else 'vllm')
    args.out.mkdir(parents=True, exist_ok=True)
    budget_s = args.budget_s or (DRY_RUN_BUDGET_S if args.dry_run else BUDGET_S)
    deadline = time.monotonic() + budget_s
    outcomes = []
    for step in steps(dry_run=args.dry_run, vllm=vllm):
        outcome = run_step(step, args.out, deadline - time.monotonic())
        outcomes.append(outcome)
        print(f'{step.name}: {outcome.status} in {outcome.wall_s:.0f} s {headline(outcome)}', flush=True)
    summary = {
        'date': time.strftime('%Y-%m-%d'),
        'machine': f'{cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}, {_gpu()}',
        'dry_run': args.dry_run,
        'budget_s': budget_s,
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
