"""The GPU check's CPU dry run (benchmarks/gpu_check.py --dry-run): the script and the four benchmarks it drives
(training throughput with LoRA and full fine-tuning, vLLM serving through the node's backend, the learning recipe)
run end to end at tiny sizes and write their figures, so that the run prepared for the first GPU machine cannot rot.
The serving step needs the CPU vLLM that make test installs (.venv-vllm); without it the step is skipped, saying so."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip('trl')
pytest.importorskip('pybullet')

REPO = Path(__file__).resolve().parents[1]
VLLM = REPO / '.venv-vllm' / 'bin' / 'vllm'


@pytest.mark.timeout(1200)
def test_the_gpu_check_runs_dry_on_the_cpu(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / 'benchmarks' / 'gpu_check.py'), '--dry-run', '--out', str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=1100,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((tmp_path / 'gpu_check.json').read_text())
    assert summary['dry_run'] is True
    outcomes = {step['name']: step for step in summary['steps']}
    assert list(outcomes) == ['train_7b_lora', 'train_7b_full', 'learning', 'serving_7b']
    lora, full = outcomes['train_7b_lora'], outcomes['train_7b_full']
    assert lora['status'] == full['status'] == 'ok', result.stdout
    assert lora['figures']['sft']['samples_per_s'] > 0 and lora['figures']['grpo']['completions_per_s'] > 0
    assert full['figures']['sft']['samples_per_s'] > 0
    serving = outcomes['serving_7b']
    if VLLM.is_file():
        assert serving['status'] == 'ok', Path(serving['log']).read_text()[-3000:]
        level = serving['figures']['levels'][0]
        assert level['in_flight'] == 1 and level['errors'] == 0 and level['p50_s'] > 0
    else:
        assert serving['status'] == f'skipped: no {VLLM}'
    learning = outcomes['learning']
    assert learning['status'] == 'ok', Path(learning['log']).read_text()[-3000:]
    assert 'SFT' in learning['figures']['accuracy'] and (tmp_path / 'learning' / 'learning.png').is_file()


def test_a_step_out_of_time_is_stopped_with_everything_it_started(tmp_path: Path) -> None:
    """A step that runs past its limit is stopped with its whole process group (a vLLM server or a render it
    started must not outlive it and starve the next step), and recorded as timed out."""
    import os
    import time

    from script_modules import load_script

    sys.path.insert(0, str(REPO / 'benchmarks'))
    gpu_check = load_script(REPO / 'benchmarks' / 'gpu_check.py', 'gpu_check_under_test')

    child = tmp_path / 'child.pid'
    script = (
        'import subprocess, sys, time; '
        "p = subprocess.Popen(['sleep', '300']); "
        f'open({str(child)!r}, "w").write(str(p.pid)); '
        'time.sleep(300)'
    )
    (tmp_path / 'slow.json').write_text('{"from": "an earlier run"}')
    outcome = gpu_check.run_step(gpu_check.Step('slow', ('-c', script), 3.0), tmp_path, left_s=100.0)
    assert outcome.status == 'timed out' and outcome.returncode is None
    assert outcome.figures == {}  # the earlier run's figures are not this run's
    pid = int(child.read_text())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"the step's child {pid} outlived it")
