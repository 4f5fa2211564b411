"""Benchmark of the vLLM backend against a real `vllm serve` (run by hand; prints figures).

    .venv/bin/python benchmarks/serving.py                       # CPU: tiny model, server from .venv-vllm
    .venv/bin/python benchmarks/serving.py --model /data/random-7b --dtype bfloat16 --no-enforce-eager \\
        --vllm vllm --max-model-len 8192 --gpu-memory-utilization 0.9  # GPU: random Qwen2.5-VL-7B weights
    .venv/bin/python benchmarks/serving.py --base-url http://gpu-box:8000/v1 --served-model-name actial-7b

For each in-flight bound (default 1, 2, 4, 8, 16) it sends ``--requests`` viewpoint questions about real
pairs of the bundled capture (two images each, JPEG data URLs, as the node sends them) through
:class:`actial_ros.backends.VllmBackend` from that many threads, and reports answers per second and the
latency percentiles of one answer, split into node-side overhead (JPEG encoding, request building,
reply parsing) and server time (the HTTP round trip: queueing and generation on the server).

Without ``--base-url`` it starts the server itself with :func:`actial_ros.serving.start_server`
(``actial-ros serve``'s command) on a free loopback port, and stops it at the end. Without ``--model`` it
builds the tiny random Qwen2.5-VL of ``training/fine_tuning/tiny_model.py`` (needs transformers in this venv).
``--write-7b DIR`` writes a random-weight checkpoint of the real Qwen2.5-VL-7B architecture there first
(about 16.6 GB in bfloat16; for the GPU machine).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from machine import cpu_model  # benchmarks/machine.py (this script's folder is on sys.path)

from actial_ros.backends.vllm import RequestTiming, VllmBackend, VllmOptions
from actial_ros.enums import QuestionType
from actial_ros.frame import Pair
from actial_ros.questions import make_question
from actial_ros.serving import ServeOptions, start_server, wait_for_health
from actial_ros.sources.llff import LlffCapture

REPO = Path(__file__).resolve().parents[1]
KEY_ENV = 'ACTIAL_BENCH_KEY'


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return int(sock.getsockname()[1])


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float('nan')


def machine() -> str:
    """CPU model, cores, memory, GPU, load: the figures' context."""
    cpu = cpu_model()
    memory = ''
    try:
        kb = int(Path('/proc/meminfo').read_text().split()[1])
        memory = f', {kb / 1024 / 1024:.0f} GiB RAM'
    except (OSError, ValueError, IndexError):
        pass
    gpu = 'no GPU'
    try:
        names = subprocess.run(
            ['nvidia-smi', '--query-gpu=name,memory.total', '--format=csv,noheader'],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        if names:
            gpu = names.replace('\n', '; ')
    except (OSError, subprocess.SubprocessError):
        pass
    load = ''
    with contextlib.suppress(OSError):
        load = ', load average ' + ' '.join(Path('/proc/loadavg').read_text().split()[:3])
    return f'{cpu}, {os.cpu_count()} cores{memory}, {gpu}, Python {platform.python_version()}{load}'


def pairs(capture_dir: Path, count: int) -> list[Pair]:
    capture = LlffCapture.open(capture_dir)
    frames = [capture.load_frame(i, i + 1) for i in range(len(capture))]
    rng = random.Random(0)
    result = []
    for index in range(count):
        first, second = rng.sample(range(len(frames)), 2)
        result.append(Pair(frames[first], frames[second], None, pair_id=index))
    return result


def run_level(backend: VllmBackend, work: list[Pair], in_flight: int) -> dict[str, Any]:
    """``len(work)`` questions from ``in_flight`` threads; figures of this level."""
    questions = [make_question(list(QuestionType)[i % 3], None, random.Random(i)) for i in range(len(work))]
    before = len(backend.recent_timings())
    next_index = 0
    lock = threading.Lock()
    errors: list[str] = []

    def worker() -> None:
        nonlocal next_index
        while True:
            with lock:
                if next_index >= len(work):
                    return
                index = next_index
                next_index += 1
            try:
                backend.answer(work[index], questions[index])
            except Exception as exc:  # counted, reported
                errors.append(str(exc)[:120])

    threads = [threading.Thread(target=worker) for _ in range(in_flight)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    timings: list[RequestTiming] = backend.recent_timings()[before:]
    total = [t.total_s for t in timings]
    server = [t.server_s for t in timings]
    node = [t.node_overhead_s for t in timings]
    wait = [t.wait_s for t in timings]
    tokens = [t.completion_tokens for t in timings]
    return {
        'in_flight': in_flight,
        'answers': len(timings),
        'errors': len(errors),
        'answers_per_s': len(timings) / wall if wall > 0 else float('nan'),
        'p50_s': _pct(total, 50),
        'p95_s': _pct(total, 95),
        'p99_s': _pct(total, 99),
        'server_p50_s': _pct(server, 50),
        'server_p95_s': _pct(server, 95),
        'node_p50_ms': _pct(node, 50) * 1e3,
        'node_p95_ms': _pct(node, 95) * 1e3,
        'wait_p50_ms': _pct(wait, 50) * 1e3,
        'tokens_out_per_s': sum(tokens) / wall if wall > 0 else float('nan'),
        'prompt_tokens': statistics.median([t.prompt_tokens for t in timings]) if timings else 0,
        'first_error': errors[0] if errors else '',
    }


def table(rows: list[dict[str, Any]]) -> str:
    header = (
        '| in flight | answers/s | p50 s | p95 s | p99 s | server p50 s | server p95 s | node overhead p50 ms '
        '| node overhead p95 ms | wait p50 ms | out tokens/s | errors |'
    )
    lines = [header, '|' + '---|' * 12]
    for r in rows:
        lines.append(
            f'| {r["in_flight"]} | {r["answers_per_s"]:.2f} | {r["p50_s"]:.3f} | {r["p95_s"]:.3f} | {r["p99_s"]:.3f} '
            f'| {r["server_p50_s"]:.3f} | {r["server_p95_s"]:.3f} | {r["node_p50_ms"]:.1f} | {r["node_p95_ms"]:.1f} '
            f'| {r["wait_p50_ms"]:.1f} | {r["tokens_out_per_s"]:.0f} | {r["errors"]} |'
        )
    return '\n'.join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--base-url', help='use this running server instead of starting one')
    parser.add_argument('--served-model-name', default='bench')
    parser.add_argument('--model', type=Path, help='checkpoint to serve (default: the tiny random model)')
    parser.add_argument('--write-7b', type=Path, help='first write a random Qwen2.5-VL-7B checkpoint here')
    parser.add_argument('--vllm', default=str(REPO / '.venv-vllm' / 'bin' / 'vllm'), help='vllm executable')
    parser.add_argument('--dtype', default='float32')
    parser.add_argument('--max-model-len', type=int, default=2048)
    parser.add_argument('--gpu-memory-utilization', type=float)
    parser.add_argument('--no-enforce-eager', action='store_true', help='allow CUDA graphs (GPU)')
    parser.add_argument('--cpu-kv-cache-gib', type=int, default=None)
    parser.add_argument('--in-flight', default='1,2,4,8,16')
    parser.add_argument('--requests', type=int, default=48, help='questions per in-flight level')
    parser.add_argument('--max-tokens', type=int, default=16, help='completion tokens per answer')
    parser.add_argument('--out', type=Path, help='also write the figures as JSON to this file')
    parser.add_argument('--capture', type=Path, default=REPO / 'data' / 'sample_capture')
    args = parser.parse_args(argv)

    levels = [int(v) for v in args.in_flight.split(',')]
    server = None
    log = None
    base_url = args.base_url
    os.environ.setdefault(KEY_ENV, 'bench-key')
    try:
        if base_url is None:
            model = args.model
            if args.write_7b is not None:
                from actial_ros.training.fine_tuning.tiny_model import save_random_qwen25vl

                print(f'writing a random Qwen2.5-VL-7B checkpoint to {args.write_7b} ...', flush=True)
                model = save_random_qwen25vl(args.write_7b, '7b', device='cuda' if _has_cuda() else 'cpu')
            if model is None:
                from actial_ros.training.fine_tuning.tiny_model import build_tiny_qwen25vl

                model = build_tiny_qwen25vl(Path(tempfile.mkdtemp(prefix='bench_tiny_')) / 'model')
            options = ServeOptions(
                model=str(model),
                served_model_name=args.served_model_name,
                port=_free_port(),
                api_key_env=KEY_ENV,
                max_model_len=args.max_model_len,
                dtype=args.dtype,
                gpu_memory_utilization=args.gpu_memory_utilization,
                max_num_seqs=max(levels),
                enforce_eager=not args.no_enforce_eager,
                # vLLM's CPU build reserves --gpu-memory-utilization (0.92) of the machine's RAM unless a KV cache
                # size is given, and refuses to start when that much is not free: 1 GiB is plenty for the tiny model.
                cpu_kv_cache_gib=args.cpu_kv_cache_gib if args.cpu_kv_cache_gib is not None or _has_cuda() else 1,
                executable=args.vllm,
            )
            env = {**os.environ, 'VLLM_NO_USAGE_STATS': '1', 'HF_HUB_OFFLINE': '1'}
            log = Path(tempfile.mkdtemp(prefix='bench_vllm_')) / 'server.log'
            print(f'starting vllm serve {model} (log: {log}) ...', flush=True)
            with log.open('wb') as handle:
                server = start_server(options, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
            startup = wait_for_health(options.base_url, 900, process=server)
            print(f'server healthy after {startup:.1f} s', flush=True)
            base_url = options.base_url
        work = pairs(args.capture, args.requests)
        rows = []
        for in_flight in levels:
            backend = VllmBackend(
                options=VllmOptions(
                    base_url=base_url,
                    model=args.served_model_name,
                    api_key_env=KEY_ENV,
                    max_in_flight=in_flight,
                    max_tokens=args.max_tokens,
                    timeout_s=300.0,
                )
            )
            try:
                run_level(backend, work[: max(2, in_flight)], in_flight)  # warm-up
                rows.append(run_level(backend, work, in_flight))
            finally:
                backend.close()
            row = rows[-1]
            print(
                f'in flight {in_flight:>2}: {row["answers_per_s"]:.2f} answers/s, p50 {row["p50_s"]:.3f} s, '
                f'node overhead p50 {row["node_p50_ms"]:.1f} ms, server p50 {row["server_p50_s"]:.3f} s'
                + (f', {row["errors"]} errors ({row["first_error"]})' if row['errors'] else ''),
                flush=True,
            )
        print()
        print(f'Machine: {machine()}')
        print(
            f'Server: {base_url}, {args.requests} questions per level (two images each), max_tokens {args.max_tokens}, '
            f'median prompt {rows[0]["prompt_tokens"]:.0f} tokens'
        )
        print()
        print(table(rows))
        if args.out is not None:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            figures = {'machine': machine(), 'server': base_url, 'max_tokens': args.max_tokens, 'levels': rows}
            args.out.write_text(json.dumps(figures, indent=1, default=str) + '\n')
            print(f'figures: {args.out}')
    finally:
        if server is not None:
            import signal

            try:
                os.killpg(server.pid, signal.SIGTERM)
                server.wait(30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(server.pid, signal.SIGKILL)
    return 0


def _has_cuda() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


if __name__ == '__main__':
    sys.exit(main())
