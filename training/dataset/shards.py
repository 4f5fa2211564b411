"""Writing one shard of a viewpoint build (step 5 of :mod:`actial_ros.training.dataset.build`; runs in worker
processes): the views a shard's pairs use are read and stored as JPEG (:func:`encode_views`), each pair is
recomputed and asked its questions (optionally with a CoT), and the rows are streamed to a parquet file in
row groups that is renamed into place only when complete (:class:`ShardWriter`, :func:`write_shard`).

Determinism: the parquet writer settings, the JPEG parameters and every random choice (seeded by seed,
object id, pair and question type) are fixed, so a shard is byte-identical whatever process writes it.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actial_ros.training.dataset.build_config import BuildConfig
from actial_ros.training.dataset.pair_selection import yaw_bin_index
from actial_ros.training.dataset.plan import ObjectPlan, ShardTask, capture_digest
from actial_ros.training.dataset.schema import viewpoint_row
from actial_ros.training.dataset.shard_stats import CotKind, ShardStats, SkipReason
from actial_ros.training.dataset.teacher import Teacher, TeacherConfig, TeacherRequest, TeacherStatus, ground_truth_hint
from actial_ros.training.dataset.viewpoint import RowQuestion, make_row_question

from actial_ros.errors import CaptureError, ImageError
from actial_ros.geometry import RelativePose, relative_pose
from actial_ros.sources.base import CaptureRef, PosedCapture
from actial_ros.sources.discovery import open_capture

__all__ = ['IMAGE_CODING', 'ShardWriter', 'clear_worker_cache', 'encode_views', 'write_shard']

_PARQUET_OPTIONS: dict[str, Any] = {
    'compression': 'zstd',
    'compression_level': 3,
    'use_dictionary': True,
    'write_statistics': True,
    'version': '2.6',
    'data_page_size': 1 << 20,
}
"""Fixed parquet writer settings (part of the byte-identical guarantee)."""
IMAGE_CODING = 'jpeg-passthrough+reduced-decode'
"""How images become the stored JPEGs (in the plan fingerprint: a build interrupted under an earlier coding
is not resumed with this one, which would mix two codings in one dataset)."""

_WORKER_CACHE: dict[str, Any] = {}


def _cached_capture(ref: CaptureRef) -> PosedCapture:
    cached = _WORKER_CACHE.get('capture')
    if cached is not None and cached[0] == ref:
        return cached[1]  # type: ignore[no-any-return]
    capture = open_capture(ref)
    _WORKER_CACHE['capture'] = (ref, capture)
    return capture


def clear_worker_cache() -> None:
    """Forget the cached capture and close the cached teacher client (end of an in-process build)."""
    teacher = _WORKER_CACHE.pop('teacher', None)
    if teacher is not None:
        teacher.close()
    _WORKER_CACHE.clear()


def _teacher(config: TeacherConfig) -> Teacher:
    cached = _WORKER_CACHE.get('teacher')
    if isinstance(cached, Teacher) and cached.config == config:
        return cached
    teacher = Teacher(config)
    _WORKER_CACHE['teacher'] = teacher
    return teacher


def _row_rng(seed: int, object_id: str, i: int, j: int, what: str) -> random.Random:
    return random.Random(f'{seed}|{object_id}|{i}|{j}|{what}')


@dataclass
class _PendingRow:
    row: dict[str, Any]
    teacher: TeacherRequest | None = None


class ShardWriter:
    """Streams rows of one shard to a temporary parquet file in row groups; :meth:`commit` renames it into
    place, :meth:`abort` removes it."""

    def __init__(self, final: Path, config: BuildConfig, stats: ShardStats) -> None:
        import pyarrow.parquet as pq
        from actial_ros.training.dataset.schema import COLUMNS, features

        self._schema = features().arrow_schema
        self._columns = COLUMNS
        self._final = final
        self._tmp = final.with_name(f'.{final.name}.tmp')
        self._writer = pq.ParquetWriter(self._tmp, self._schema, **_PARQUET_OPTIONS)
        self._config = config
        self._stats = stats
        self._pending: list[_PendingRow] = []
        self.rows = 0

    def add(self, pending: _PendingRow) -> None:
        self._pending.append(pending)
        if len(self._pending) >= self._config.row_group_rows:
            self.flush()

    def flush(self) -> None:
        import pyarrow as pa

        if not self._pending:
            return
        requests = [(k, p.teacher) for k, p in enumerate(self._pending) if p.teacher is not None]
        if requests and self._config.teacher is not None:
            results = _teacher(self._config.teacher).ask_many([request for _, request in requests])
            for (k, _), result in zip(requests, results, strict=True):
                self._stats.teacher[result.status] += 1
                if result.status is TeacherStatus.ACCEPTED:
                    self._pending[k].row['cot'] = result.text
                    self._stats.cot[CotKind.TEACHER] += 1
        table = pa.Table.from_pydict(
            {name: [p.row[name] for p in self._pending] for name in self._columns}, schema=self._schema
        )
        self._writer.write_table(table, row_group_size=self._config.row_group_rows)
        self.rows += len(self._pending)
        self._pending = []

    def commit(self) -> None:
        self.flush()
        self._writer.close()
        os.replace(self._tmp, self._final)

    def abort(self) -> None:
        try:
            self._writer.close()
        finally:
            self._tmp.unlink(missing_ok=True)


def encode_views(
    capture: PosedCapture, indices: Iterable[int], config: BuildConfig, stats: ShardStats
) -> tuple[dict[int, bytes], set[int]]:
    """The dataset images of views ``indices``: ``(JPEG bytes by index, indices whose image is unusable)``.

    Through :meth:`actial_ros.sources.base.PosedCapture.iter_jpeg`: at most ``config.max_width`` x
    ``config.max_height`` pixels; a JPEG file within the limits is stored as it is, a larger one decoded
    at reduced scale and encoded at ``config.jpeg_quality``. Each unusable image (unreadable, corrupt,
    another size than its intrinsics) counts once under :attr:`SkipReason.BAD_IMAGE` in ``stats``.
    """
    encoded: dict[int, bytes] = {}
    bad: set[int] = set()
    for index, data in capture.iter_jpeg(
        indices, max_width=config.max_width, max_height=config.max_height, quality=config.jpeg_quality
    ):
        if isinstance(data, ImageError):
            stats.skips[SkipReason.BAD_IMAGE] += 1
            bad.add(index)
        else:
            encoded[index] = data
    return encoded, bad


def _pair_rows(
    plan: ObjectPlan,
    capture: PosedCapture,
    i: int,
    j: int,
    pose: RelativePose,
    split: str,
    config: BuildConfig,
    images: dict[int, bytes],
    stats: ShardStats,
) -> Iterator[_PendingRow]:
    from actial_ros.training.dataset.cot import pseudo_cot

    object_id = plan.ref.object_id
    types: Sequence[str] = config.question_types
    if config.per_pair == 'one':
        types = [_row_rng(config.seed, object_id, i, j, 'type').choice(list(config.question_types))]
    edges = config.pairs.edges
    unit = 'm' if plan.metric else 'units'
    bin_number = (yaw_bin_index(abs(pose.yaw_deg), edges) or 0) + 1
    view_1, view_2 = capture.views[i], capture.views[j]
    for question_type in types:
        rng = _row_rng(config.seed, object_id, i, j, question_type)
        question: RowQuestion = make_row_question(question_type, pose, plan.thresholds, edges, rng)
        cot: str | None = None
        teacher: TeacherRequest | None = None
        wants_cot = (
            config.cot != 'none'
            and _row_rng(config.seed, object_id, i, j, f'{question_type}|cot').random() < config.cot_fraction
        )
        if wants_cot and config.cot == 'template':
            cot = pseudo_cot(question, pose, plan.thresholds, rng, unit=unit)
            stats.cot[CotKind.TEMPLATE] += 1
        elif wants_cot and config.cot == 'teacher':
            teacher = TeacherRequest(images[i], images[j], question, ground_truth_hint(question, pose, unit))
        row = viewpoint_row(
            row_id=f'{plan.ref.source}/{object_id}/{i}-{j}/{question_type}',
            source=plan.ref.source,
            object_id=object_id,
            split=split,
            image_1=images[i] if config.images else None,
            image_2=images[j] if config.images else None,
            image_1_name=view_1.name,
            image_2_name=view_2.name,
            question=question,
            yaw_deg=pose.yaw_deg,
            pitch_deg=pose.pitch_deg,
            roll_deg=pose.roll_deg,
            t12=tuple(float(v) for v in pose.translation),
            cot=cot,
        )
        stats.split(split).add_row(question.question_type, question.answer_label, bin_number, plan.ref.source)
        yield _PendingRow(row, teacher)


def write_shard(task: ShardTask, plans: dict[int, ObjectPlan], config: BuildConfig, data_dir: str) -> ShardStats:
    """Write one shard atomically (``data_dir/task.name``; a hidden temporary file renamed into place, removed
    on any error) and return its counters (rows, pairs and their counts per split, skips, teacher answers, CoTs).

    Raises:
        CaptureError: a capture changed since it was planned.
    """
    stats = ShardStats()
    writer = ShardWriter(Path(data_dir) / task.name, config, stats)
    try:
        for plan_index, start, stop in task.segments:
            plan = plans[plan_index]
            capture = _cached_capture(plan.ref)
            if capture_digest(capture) != plan.digest:
                raise CaptureError(
                    f'{plan.ref.path} changed since the build was planned (views or poses differ); '
                    'rebuild with --overwrite'
                )
            pairs = plan.pairs[start:stop]
            needed = {int(v) for v in pairs.reshape(-1)}
            images, bad = encode_views(capture, needed, config, stats) if config.images else ({}, set())
            edges = config.pairs.edges
            for i, j in ((int(a), int(b)) for a, b in pairs):
                if i in bad or j in bad:
                    stats.skips[SkipReason.PAIR_BAD_IMAGE] += 1
                    continue
                pose = relative_pose(capture.views[i].t_world_camera, capture.views[j].t_world_camera)
                if yaw_bin_index(abs(pose.yaw_deg), edges) is None:
                    stats.skips[SkipReason.PAIR_OUT_OF_RANGE] += 1
                    continue
                stats.split(task.split).pairs += 1
                for pending in _pair_rows(plan, capture, i, j, pose, task.split, config, images, stats):
                    writer.add(pending)
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    return stats
