"""Benchmark of the viewpoint dataset builder (run by hand; prints figures, asserts nothing).

    .venv/bin/python benchmarks/build_viewpoint.py [--objects 70] [--pairs 100] [--workers 2] [--keep]

Synthesises an MVImgNet-style ``objects/`` folder in a temporary directory: ``--objects`` copies of the
shared capture (``../shared/data/captures/ethiopian_head``, 66 photos of 512x512, symlinked, each under
its own object id), and measures, for ``--objects x --pairs x 3`` rows (21,000 by default):

1. a full build with images (decode, resize to fit 960x540, JPEG q90, parquet) and one without images
   (``--no-images``), each in a fresh ``actial-ros-train build-viewpoint`` process with ``--workers``:
   wall time, rows per second, peak memory (the sum of the resident sizes of the build process and its
   workers, sampled every 50 ms) and the output size;
2. the image stage of the builder (``shards.encode_views``, what a shard worker runs: the JPEG bytes a view
   gets in the dataset) against a plain full decode + resize + encode of the same files (read the file,
   ``cv2.imdecode`` at full size, ``resize_max``, ``cv2.imencode`` at quality 90; no colour conversion),
   in this process, on one core (OpenCV limited to one thread), best of ``--repeats`` (the two alternate
   within each repeat, in turns first), as a ratio per file, for three sets of JPEGs: the capture's own
   512x512 photos (within 960x540: the builder stores them as they are, after a 1/8-scale decode that
   checks them), ``--large-views`` of them upscaled to ``--large-size`` squared (over the limit by 2x or
   more: decoded at reduced scale), and to 1024x1024 (over the limit by less than 2x: no reduction, a
   full decode like the plain one, so a ratio near 1). Both sides handle one file per call and keep only
   its output, as the builder does. Before this stage glibc's ``M_TOP_PAD`` is set to 64 MiB (where
   ``mallopt`` exists): otherwise glibc hands freed decode buffers back to the OS between files or not,
   depending on which buffers outlive a file and on the heap's history, and the page faults that follow
   were seen to change one side's time by 30 % (either side, from run to run). Both give images of the
   same size; the table shows how many files the builder stored as they are and the mean absolute
   difference of its images from the plain ones (grey levels).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
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
from actial_ros.training.dataset.build_config import BuildConfig
from actial_ros.training.dataset.shard_stats import ShardStats
from actial_ros.training.dataset.shards import encode_views

from actial_ros.imaging import decode_jpeg, encode_jpeg, resize_max
from actial_ros.sources.image_files import read_image_file
from actial_ros.sources.llff import LlffPosedCapture

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


def steady_allocator() -> bool:
    """Keep 64 MiB of freed heap memory (glibc ``mallopt(M_TOP_PAD)``) so that repeated decode buffers
    do not page-fault afresh; ``False`` where that is not available (not glibc)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
        return bool(libc.mallopt(-2, 64 << 20))  # M_TOP_PAD
    except (OSError, AttributeError):
        return False


def make_large_capture(folder: Path, views: int, size: int) -> LlffPosedCapture:
    """An LLFF capture of the shared capture's first ``views`` photos upscaled to ``size`` x ``size`` (cubic),
    stored as JPEG quality 95 (as a camera would), with their poses."""
    (folder / 'images').mkdir(parents=True)
    names = sorted(p.name for p in (SHARED_CAPTURE / 'images').iterdir())[:views]
    for name in names:
        photo = read_image_file(SHARED_CAPTURE / 'images' / name)
        image = np.asarray(cv2.resize(photo, (size, size), interpolation=cv2.INTER_CUBIC), dtype=np.uint8)
        (folder / 'images' / name).write_bytes(encode_jpeg(image, 95))
    np.save(folder / 'poses_bounds.npy', np.load(SHARED_CAPTURE / 'poses_bounds.npy')[: len(names)])
    return LlffPosedCapture.open(folder)


def image_stage(capture: LlffPosedCapture, repeats: int) -> dict[str, float]:
    """Builder image stage against plain full decode + resize + encode of the same files (ms per file)."""
    paths = [capture.path / 'images' / view.name for view in capture.views]
    config = BuildConfig(sources=(f'llff:{capture.path}',), out=capture.path / 'unused')
    params = [cv2.IMWRITE_JPEG_QUALITY, config.jpeg_quality]

    def plain_file(path: Path) -> bytes:
        decoded = cv2.imdecode(np.frombuffer(path.read_bytes(), np.uint8), cv2.IMREAD_COLOR)
        assert decoded is not None
        image = np.asarray(decoded, dtype=np.uint8)  # a view, for the type checker
        ok, buffer = cv2.imencode('.jpg', resize_max(image, config.max_width, config.max_height), params)
        assert ok
        return buffer.tobytes()

    def plain() -> list[bytes]:
        return [plain_file(path) for path in paths]

    def builder() -> list[bytes]:
        encoded, bad = encode_views(capture, range(len(paths)), config, ShardStats())
        assert not bad
        return [encoded[index] for index in range(len(paths))]

    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)  # one core: OpenCV would spread resizing over all of them
    try:
        plain_out, builder_out = plain(), builder()  # warm-up, and the outputs compared below
        best = {'plain': float('inf'), 'builder': float('inf')}
        for repeat in range(repeats):
            order = [('plain', plain), ('builder', builder)]
            for name, function in order[:: -1 if repeat % 2 else 1]:
                start = time.perf_counter()
                function()
                best[name] = min(best[name], time.perf_counter() - start)
    finally:
        cv2.setNumThreads(threads)
    differences = []
    for plain_bytes, builder_bytes in zip(plain_out, builder_out, strict=True):
        mine, theirs = decode_jpeg(builder_bytes).astype(np.int16), decode_jpeg(plain_bytes).astype(np.int16)
        assert mine.shape == theirs.shape, 'the builder and the plain path must give images of the same size'
        differences.append(float(np.abs(mine - theirs).mean()))
    return {
        'files': len(paths),
        'plain_ms': best['plain'] / len(paths) * 1e3,
        'builder_ms': best['builder'] / len(paths) * 1e3,
        'ratio': best['builder'] / best['plain'],
        'as_is': sum(out == path.read_bytes() for out, path in zip(builder_out, paths, strict=True)),
        'difference': float(np.mean(differences)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--objects', type=int, default=70, help='object copies (default 70)')
    parser.add_argument('--pairs', type=int, default=100, help='pairs per object (default 100)')
    parser.add_argument('--workers', type=int, default=os.cpu_count() or 1, help='build processes')
    parser.add_argument('--repeats', type=int, default=5, help='repeats of the image-stage timing')
    parser.add_argument('--large-views', type=int, default=12, help='photos in the upscaled image-stage sets')
    parser.add_argument('--large-size', type=int, default=2048, help='side of the large upscaled photos')
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
        sets = {
            '512x512 (capture, within 960x540)': LlffPosedCapture.open(SHARED_CAPTURE),
            f'{args.large_size}x{args.large_size} (upscaled)': make_large_capture(
                work / 'large', args.large_views, args.large_size
            ),
            '1024x1024 (upscaled)': make_large_capture(work / 'medium', args.large_views, 1024),
        }
        steady = steady_allocator()
        print(f'\nimage stage: glibc M_TOP_PAD 64 MiB {"set" if steady else "NOT set (no mallopt): noisier"}')
        print(
            '\n| image stage, per JPEG file, one core | files | plain: read + full decode + resize + encode q90 '
            '(ms) | builder image stage (ms) | ratio builder / plain | stored as they are | mean abs diff |'
        )
        print('|---|---|---|---|---|---|---|')
        for name, capture in sets.items():
            stage = image_stage(capture, args.repeats)
            print(
                f'| {name} | {stage["files"]:.0f} | {stage["plain_ms"]:.2f} | {stage["builder_ms"]:.2f} | '
                f'{stage["ratio"]:.2f} | {stage["as_is"]:.0f} | {stage["difference"]:.2f} |'
            )
    finally:
        if args.keep:
            print(f'kept {work}')
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
