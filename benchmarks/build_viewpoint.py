"""Benchmark of the viewpoint dataset builder (run by hand; prints figures, asserts nothing).

    .venv/bin/python benchmarks/build_viewpoint.py [--objects 70] [--pairs 100] [--workers 2] [--keep]

Synthesises an MVImgNet-style ``objects/`` folder in a temporary directory: ``--objects`` copies of the
shared capture (``../shared/data/captures/ethiopian_head``, 66 photos of 512x512, symlinked, each under
its own object id), and measures, for ``--objects x --pairs x 3`` rows (21,000 by default):

1. a full build with images (decode, resize to fit 960x540, JPEG q90, parquet) and one without images
   (``--no-images``), each in a fresh ``actial-ros-train build-viewpoint`` process with ``--workers``:
   wall time, rows per second, peak memory (the sum of the resident sizes of the build process and its
   workers, sampled every 50 ms) and the output size;
2. the image stage of the builder (read + decode + resize + encode, as a shard worker does it) against
   plain decode + resize of the same JPEG files, in this process, one core, as a ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import psutil

from actial_ros.imaging import encode_jpeg, resize_max
from actial_ros.sources.base import LlffPosedCapture

REPO = Path(__file__).resolve().parents[1]
SHARED_CAPTURE = REPO.parent / 'shared' / 'data' / 'captures' / 'ethiopian_head'


def make_objects(root: Path, count: int) -> None:
    for index in range(count):
        folder = root / f'category_{index % 7}' / f'object_{index:04d}'
        folder.mkdir(parents=True)
        os.symlink(SHARED_CAPTURE / 'images', folder / 'images')
        os.symlink(SHARED_CAPTURE / 'poses_bounds.npy', folder / 'poses_bounds.npy')


def tree_rss(process: psutil.Process) -> int:
    total = 0
    for member in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += member.memory_info().rss
    return total


def run_build(objects: Path, out: Path, pairs: int, workers: int, images: bool) -> dict[str, float]:
    command = [
        sys.executable,
        '-m',
        'actial_ros.training.cli',
        'build-viewpoint',
        '--source',
        f'objects:{objects}',
        '--out',
        str(out),
        '--seed',
        '0',
        '--max-pairs-per-object',
        str(pairs),
        '--test-size',
        '1000',
        '--workers',
        str(workers),
        '--no-progress',
        '--overwrite',
    ]
    if not images:
        command.append('--no-images')
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    watched = psutil.Process(process.pid)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            with contextlib.suppress(psutil.Error):
                peak = max(peak, tree_rss(watched))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = process.communicate()
    done.set()
    sampler.join()
    elapsed = time.perf_counter() - start
    if process.returncode != 0:
        raise SystemExit(f'build failed ({process.returncode}):\n{output}')
    rows = 0
    for line in output.splitlines():
        if line.strip().startswith(('train:', 'test:')):
            rows += int(line.split(',')[2].split()[0])
    size = sum(p.stat().st_size for p in (out / 'data').glob('*.parquet'))
    return {
        'seconds': elapsed,
        'rows': rows,
        'rows_per_s': rows / elapsed,
        'peak_mb': peak / 2**20,
        'output_mb': size / 2**20,
    }


def image_stage(repeats: int) -> dict[str, float]:
    capture = LlffPosedCapture.open(SHARED_CAPTURE)
    paths = sorted((SHARED_CAPTURE / 'images').iterdir())
    blobs = [p.read_bytes() for p in paths]

    def plain() -> None:
        for blob in blobs:
            image = cv2.imdecode(np.frombuffer(blob, np.uint8), cv2.IMREAD_COLOR)
            assert image is not None
            resize_max(np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), dtype=np.uint8))

    def builder() -> None:
        for _, image in capture.iter_images(range(len(capture.views))):
            assert isinstance(image, np.ndarray)
            encode_jpeg(resize_max(image), 90)

    plain()
    builder()
    times = {}
    for name, function in (('plain', plain), ('builder', builder)):
        best = float('inf')
        for _ in range(repeats):
            start = time.perf_counter()
            function()
            best = min(best, time.perf_counter() - start)
        times[name] = best / len(blobs)
    return {
        'plain_ms': times['plain'] * 1e3,
        'builder_ms': times['builder'] * 1e3,
        'ratio': times['builder'] / times['plain'],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--objects', type=int, default=70, help='object copies (default 70)')
    parser.add_argument('--pairs', type=int, default=100, help='pairs per object (default 100)')
    parser.add_argument('--workers', type=int, default=os.cpu_count() or 1, help='build processes')
    parser.add_argument('--repeats', type=int, default=5, help='repeats of the image-stage timing')
    parser.add_argument('--keep', action='store_true', help='keep the temporary folder')
    args = parser.parse_args()
    if not (SHARED_CAPTURE / 'poses_bounds.npy').is_file():
        raise SystemExit(f'missing shared capture {SHARED_CAPTURE}')
    work = Path(tempfile.mkdtemp(prefix='actial_bench_build_'))
    try:
        make_objects(work / 'objects', args.objects)
        print(
            f'machine: {os.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB; '
            f'{args.objects} objects x {args.pairs} pairs x 3 question types, --workers {args.workers}'
        )
        results = {}
        for images in (False, True):
            name = 'with images' if images else 'without images'
            results[name] = run_build(
                work / 'objects', work / ('ds_img' if images else 'ds_meta'), args.pairs, args.workers, images
            )
        print('\n| build | rows | wall (s) | rows/s | peak memory (MB, all processes) | output (MB) |')
        print('|---|---|---|---|---|---|')
        for name, r in results.items():
            print(
                f'| {name} | {r["rows"]:.0f} | {r["seconds"]:.1f} | {r["rows_per_s"]:.0f} | {r["peak_mb"]:.0f} | '
                f'{r["output_mb"]:.0f} |'
            )
        stage = image_stage(args.repeats)
        print('\n| image stage, per 512x512 JPEG, one core | ms |')
        print('|---|---|')
        print(f'| plain decode + resize (cv2.imdecode, resize_max) | {stage["plain_ms"]:.2f} |')
        print(f'| builder: read + decode + resize + JPEG q90 encode | {stage["builder_ms"]:.2f} |')
        print(f'| ratio builder / plain | {stage["ratio"]:.2f} |')
    finally:
        if args.keep:
            print(f'kept {work}')
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
