"""``actial-ros-train build-viewpoint``: build the Viewpoint-100K dataset from captures, COLMAP models,
``transforms.json`` captures, rosbag2 recordings and directories of objects.

Pipeline (docs/dataset.md):

1. **Discover** the objects of every ``--source KIND:PATH`` (:func:`actial_ros.sources.discovery.discover`).
2. **Plan** (parallel over objects, poses only): open each capture, estimate its scale, choose its pairs
   (:func:`actial_ros.training.dataset.pair_selection.select_pairs`: ``|yaw|`` in range, balanced left/right and across
   six yaw bins, capped per object, deterministic for the seed). Objects that cannot be opened are
   skipped and listed in the report.
3. **Split by object**: objects in a seeded order go to ``test`` until it holds ``test_size`` pairs
   (the last test object's pairs are trimmed to hit it exactly; at least one object stays in
   ``train``); no object is in both splits.
4. **Shard**: each split's pairs, in object-id order, are cut into shards of ``rows_per_shard`` rows.
5. **Write** (parallel over shards, bounded memory): a worker opens the shard's objects, reads only
   the views its pairs use and stores them as JPEG fitting 960x540 (a JPEG file already within the limits
   as it is; a larger one decoded at reduced scale, resized and encoded at a fixed quality), recomputes
   each pair with :func:`actial_ros.geometry.relative_pose`, asks the questions
   (:func:`actial_ros.questions.make_question` and the yaw-bin probe), optionally writes a CoT, and
   streams rows to a parquet writer in row groups. Each shard is written to a hidden temporary file
   and renamed into place (``os.replace``), then recorded as done in ``.build/done/``; a restart with
   the same inputs skips done shards (a different plan in the same ``--out`` is refused unless
   ``--overwrite``; a shard whose done record cannot be read is written again, with a warning).
6. **Finish**: the dataset card ``README.md`` (YAML ``configs`` so that ``datasets.load_dataset(OUT)``
   works; counts per split, question type, label, yaw bin and source; no dates) and
   ``build_report.json`` (counted skips by reason, warnings).

Determinism: the same seed and sources give byte-identical parquet files and card whatever the number
of workers or interruptions: every random choice is seeded by (seed, object id, pair, question type);
rows, shard boundaries, JPEG parameters and parquet writer settings are fixed; nothing time-dependent
is written. (Teacher CoTs are as deterministic as the endpoint.)

Bad input never gives a silently wrong label: unusable views (bad pose, missing image, no odometry),
ambiguous pairs near a threshold, and pairs whose image turns out to be corrupt are counted under a
reason in the report; a capture that cannot be opened is listed with its error; a single explicit
source that cannot be read is an error.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import json
import multiprocessing
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from actial_ros.training.dataset.build_config import BuildConfig, add_arguments, config_from_args
from actial_ros.training.dataset.plan import ObjectPlan, ShardTask, assign_splits, make_shards, plan_object
from actial_ros.training.dataset.report import (
    CARD_FILENAME,
    DATA_DIRNAME,
    REPORT_FILENAME,
    STATE_DIRNAME,
    BuildReport,
    dataset_card,
    make_report,
    summary,
)
from actial_ros.training.dataset.shard_stats import ShardStats
from actial_ros.training.dataset.shards import IMAGE_CODING, clear_worker_cache, write_shard

from actial_ros.errors import CaptureError, ConfigError
from actial_ros.sources.base import CaptureRef
from actial_ros.sources.discovery import check_unique_ids, discover

__all__ = ['build', 'configure_parser', 'run']


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f'.{path.name}.tmp')
    tmp.write_text(text)
    os.replace(tmp, path)


def _fingerprint(config: BuildConfig, plans: Sequence[ObjectPlan], tasks: Sequence[ShardTask]) -> str:
    digest = hashlib.sha256()
    fields = config.fingerprint_fields()
    if config.images:
        fields['image_coding'] = IMAGE_CODING
    digest.update(json.dumps(fields, sort_keys=True, default=str).encode())
    for plan in plans:
        digest.update(f'{plan.ref.object_id}|{plan.ref.kind}|{plan.ref.path}|{plan.digest}'.encode())
        digest.update(plan.pairs.tobytes())
    digest.update(json.dumps([(t.name, t.segments) for t in tasks]).encode())
    return digest.hexdigest()


def _prepare_out(out: Path, fingerprint: str, overwrite: bool) -> tuple[Path, Path]:
    state = out / STATE_DIRNAME
    data = out / DATA_DIRNAME
    plan_file = state / 'plan.json'
    if overwrite:
        for path in (state, data):
            if path.exists():
                shutil.rmtree(path)
        for name in (CARD_FILENAME, REPORT_FILENAME):
            (out / name).unlink(missing_ok=True)
    elif plan_file.is_file():
        previous = json.loads(plan_file.read_text()).get('fingerprint')
        if previous != fingerprint:
            raise ConfigError(
                f'{out} holds another build (different sources, settings or captures); '
                'use --overwrite to replace it or choose another --out'
            )
    elif data.exists() and any(data.iterdir()):
        raise ConfigError(f'{out}/{DATA_DIRNAME} holds files of an unknown build; use --overwrite or another --out')
    (state / 'done').mkdir(parents=True, exist_ok=True)
    data.mkdir(parents=True, exist_ok=True)
    for stale in data.glob('.*.tmp'):
        stale.unlink()
    _atomic_write(plan_file, json.dumps({'fingerprint': fingerprint}, sort_keys=True) + '\n')
    return state, data


def _done_record(state: Path, task: ShardTask) -> Path:
    return state / 'done' / f'{task.name}.json'


def _done_stats(state: Path, data: Path, task: ShardTask, warnings: list[str] | None = None) -> ShardStats | None:
    """The counters of a done shard, or ``None`` when it is not done: no shard file, no done record, or a record
    this builder cannot read (not a JSON mapping of counts, or a key that is no build counter, e.g. written by
    another version). Such a shard is written again (its plan is deterministic, so nothing is lost) and, with
    ``warnings``, one line says so."""
    record = _done_record(state, task)
    if not (record.is_file() and (data / task.name).is_file()):
        return None
    try:
        counts = json.loads(record.read_text(encoding='utf-8'))
        if not isinstance(counts, dict) or not all(isinstance(v, int) for v in counts.values()):
            raise ValueError('not a mapping of counts')
        return ShardStats.from_record(counts)
    except (ValueError, UnicodeDecodeError) as error:
        if warnings is not None:
            warnings.append(f'{task.name}: its done record is unreadable ({error}); the shard is written again')
        return None


def _is_done(state: Path, data: Path, task: ShardTask) -> bool:
    return _done_stats(state, data, task) is not None


def _executor(workers: int) -> concurrent.futures.Executor | None:
    if workers <= 1:
        return None
    return concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context('spawn'))


def _progress(total: int, description: str, enabled: bool, unit: str, initial: int = 0) -> Any:
    from tqdm import tqdm

    return tqdm(
        total=total,
        initial=initial,
        desc=description,
        unit=unit,
        disable=not enabled,
        dynamic_ncols=True,
        file=sys.stderr,
    )


def _plan_all(
    refs: Sequence[CaptureRef], config: BuildConfig, executor: concurrent.futures.Executor | None
) -> list[ObjectPlan]:
    bar = _progress(len(refs), 'planning', config.progress, 'object')
    try:
        if executor is None:
            plans = []
            for ref in refs:
                plans.append(plan_object(ref, config.pairs, config.seed))
                bar.update(1)
            return plans
        chunk = max(1, min(64, len(refs) // (8 * max(1, config.workers)) or 1))
        results = executor.map(
            plan_object, refs, [config.pairs] * len(refs), [config.seed] * len(refs), chunksize=chunk
        )
        plans = []
        for plan in results:
            plans.append(plan)
            bar.update(1)
        return plans
    finally:
        bar.close()


def build(config: BuildConfig, *, on_shard: Callable[[ShardTask], None] | None = None) -> BuildReport:
    """Build (or resume) a viewpoint dataset (see the module docstring).

    Args:
        config: the build.
        on_shard: called in this process after each shard is committed (tests, progress hooks).

    Returns:
        The report (also written to ``OUT/build_report.json`` and, when complete, summarised in the card).

    Raises:
        ConfigError: invalid settings, duplicate object ids, or ``out`` holding another build.
        CaptureError: a source path that does not exist or a single explicit capture that cannot be read;
            a capture that changed between planning and writing.
    """
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    refs: list[CaptureRef] = []
    rejected: list[tuple[str, str]] = []
    single: set[str] = set()
    for text in config.sources:
        found, bad = discover(text, config.source_options)
        refs.extend(found)
        rejected.extend(bad)
        if not text.lower().startswith('objects:'):
            single.add(text)
    check_unique_ids(refs)

    executor = _executor(config.workers)
    try:
        plans = _plan_all(refs, config, executor)
        for plan in plans:
            if plan.error is not None and plan.ref.source in single:
                raise CaptureError(f'source {plan.ref.source}: {plan.error}')
        train, test, warnings = assign_splits(plans, config.test_size, config.seed)
        if not train and not test:
            failed = sum(1 for plan in plans if plan.error is not None)
            raise CaptureError(
                f'no pair with {config.pairs.min_yaw_deg:g} <= |yaw| <= {config.pairs.max_yaw_deg:g} deg in any of '
                f'{len(plans)} objects ({failed} could not be opened)'
            )
        pairs_per_shard = max(1, config.rows_per_shard // config.rows_per_pair)
        tasks = make_shards('train', train, pairs_per_shard) + make_shards('test', test, pairs_per_shard)
        fingerprint = _fingerprint(config, plans, tasks)
        state, data = _prepare_out(out, fingerprint, config.overwrite)

        pending = [task for task in tasks if _done_stats(state, data, task, warnings) is None]
        resumed = len(tasks) - len(pending)
        if config.stop_after_shards is not None:
            pending = pending[: config.stop_after_shards]
        total_rows = sum(t.pairs for t in tasks) * config.rows_per_pair
        done_rows = sum(t.pairs for t in tasks if t not in pending and _is_done(state, data, t)) * config.rows_per_pair
        bar = _progress(total_rows, 'writing', config.progress, 'row', initial=done_rows)
        written = 0
        try:

            def finished(task: ShardTask, stats: ShardStats) -> None:
                nonlocal written
                _atomic_write(_done_record(state, task), json.dumps(stats.to_record(), sort_keys=True) + '\n')
                written += 1
                bar.update(task.pairs * config.rows_per_pair)
                if on_shard is not None:
                    on_shard(task)

            shard_plans = {task.name: {i: plans[i] for i, _, _ in task.segments} for task in pending}
            if executor is None:
                for task in pending:
                    finished(task, write_shard(task, shard_plans[task.name], config, str(data)))
            else:
                futures = {
                    executor.submit(write_shard, task, shard_plans[task.name], config, str(data)): task
                    for task in pending
                }
                try:
                    for future in concurrent.futures.as_completed(futures):
                        finished(futures[future], future.result())
                except BaseException:
                    for future in futures:
                        future.cancel()
                    raise
        finally:
            bar.close()
    finally:
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
        clear_worker_cache()

    complete = all(_is_done(state, data, task) for task in tasks)
    stats = ShardStats()
    for task in tasks:
        done = _done_stats(state, data, task)
        if done is not None:
            stats.merge(done)
    report = make_report(config, plans, rejected, train, test, tasks, stats, warnings, complete)
    report.shards_written = written
    report.shards_resumed = resumed
    if complete:
        _atomic_write(out / CARD_FILENAME, dataset_card(config, report))
    else:
        (out / CARD_FILENAME).unlink(missing_ok=True)
    _atomic_write(out / REPORT_FILENAME, report.to_json())
    return report


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Flags of ``build-viewpoint``: one per setting of :class:`~actial_ros.training.dataset.build_config.BuildConfig`
    and its parts, and :class:`~actial_ros.training.dataset.build_config.BuildInputs`, plus ``--config`` (a YAML
    file of the same keys; flags override it)."""
    parser.description = 'Build the Viewpoint-100K dataset (parquet shards + dataset card).'
    add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Run ``build-viewpoint``; 0 when complete, 3 when stopped early (resume with the same command),
    2 on a configuration or input error."""
    try:
        config = config_from_args(args)
        report = build(config)
    except (ConfigError, CaptureError) as error:
        print(f'build-viewpoint: {error}', file=sys.stderr)
        return 2
    print(summary(report))
    return 0 if report.complete else 3
