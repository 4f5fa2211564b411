"""``actial-ros-train build-viewpoint``: build the Viewpoint-100K dataset from captures, COLMAP models,
``transforms.json`` captures, rosbag2 recordings and directories of objects.

Pipeline (docs/dataset.md):

1. **Discover** the objects of every ``--source KIND:PATH`` (:func:`actial_ros.sources.base.discover`).
2. **Plan** (parallel over objects, poses only): open each capture, estimate its scale, choose its pairs
   (:func:`actial_ros.training.pairs.select_pairs`: ``|yaw|`` in range, balanced left/right and across
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
   ``--overwrite``).
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
import random
import shutil
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from actial_ros.training.pairs import PairConfig, label_thresholds, object_scale, select_pairs, yaw_bin_index
from actial_ros.training.teacher import Teacher, TeacherConfig, TeacherRequest, TeacherStatus, ground_truth_hint
from actial_ros.training.viewpoint import YAW_BIN_QUESTION, RowQuestion, make_row_question

from actial_ros.enums import QuestionType
from actial_ros.errors import ActialError, CaptureError, ConfigError, ImageError
from actial_ros.geometry import (
    BASE_TO_OPTICAL_QUATERNION_XYZW,
    LabelThresholds,
    RelativePose,
    base_to_optical_extrinsic,
    relative_pose,
)
from actial_ros.imaging import MAX_MODEL_HEIGHT, MAX_MODEL_WIDTH
from actial_ros.pairing import DEFAULT_MAX_YAW_DEG, DEFAULT_MIN_YAW_DEG
from actial_ros.sources.base import CaptureRef, PosedCapture, SourceOptions
from actial_ros.sources.discovery import check_unique_ids, discover, open_capture
from actial_ros.sources.rosbag import bag_cameras_from_args

__all__ = [
    'DEFAULT_QUESTION_TYPES',
    'QUESTION_TYPES',
    'BuildConfig',
    'BuildReport',
    'ObjectPlan',
    'ShardTask',
    'assign_splits',
    'build',
    'config_from_args',
    'configure_parser',
    'dataset_card',
    'make_shards',
    'run',
    'summary',
]

QUESTION_TYPES: tuple[str, ...] = (*(t.value for t in QuestionType), YAW_BIN_QUESTION)
"""Every question type the builder writes (``yaw_bin`` is the optional probe)."""

DEFAULT_QUESTION_TYPES: tuple[str, ...] = tuple(t.value for t in QuestionType)
"""The three Actial question types."""

STATE_DIRNAME = '.build'
DATA_DIRNAME = 'data'
REPORT_FILENAME = 'build_report.json'
CARD_FILENAME = 'README.md'
_PARQUET_OPTIONS: dict[str, Any] = {
    'compression': 'zstd',
    'compression_level': 3,
    'use_dictionary': True,
    'write_statistics': True,
    'version': '2.6',
    'data_page_size': 1 << 20,
}
"""Fixed parquet writer settings (part of the byte-identical guarantee)."""
_IMAGE_CODING = 'jpeg-passthrough+reduced-decode'
"""How images become the stored JPEGs (in the plan fingerprint: a build interrupted under an earlier coding
is not resumed with this one, which would mix two codings in one dataset)."""


@dataclass(frozen=True)
class BuildConfig:
    """Everything that defines a build.

    Attributes:
        sources: ``KIND:PATH`` texts (KIND: llff, colmap, transforms, rosbag, objects).
        out: output folder.
        seed: seeds pair choice, split, option order, CoT choice and wording.
        pairs: pair range, cap and label thresholds.
        question_types: question types per pair (see :data:`QUESTION_TYPES`).
        per_pair: ``'all'`` (one row per question type per pair) or ``'one'`` (one seeded type per pair).
        test_size: pairs in the test split (paper: 1,000); 0: no test split.
        rows_per_shard: rows per parquet shard.
        row_group_rows: rows per parquet row group (memory bound of a writer).
        images: embed images (``False``: image columns are null; a metadata-only build).
        max_width, max_height: images are downscaled to fit (pixels; paper: 960x540).
        jpeg_quality: JPEG quality of the embedded images that are re-encoded (JPEG files already within
            the limits are embedded as they are).
        cot: ``'none'``, ``'template'`` (:func:`actial_ros.training.cot.pseudo_cot`) or ``'teacher'``.
        cot_fraction: share of rows that get a CoT (seeded per row; hybrid cold start: 0.1).
        teacher: the teacher endpoint (required for ``cot='teacher'``).
        source_options: topics, extrinsic and odometry matching of bags.
        workers: processes (1: everything in this process).
        progress: show progress bars (stderr).
        overwrite: delete an existing build in ``out`` first.
        stop_after_shards: stop after writing this many shards (chunked runs, tests); ``None``: all.
    """

    sources: tuple[str, ...]
    out: Path
    seed: int = 0
    pairs: PairConfig = field(default_factory=PairConfig)
    question_types: tuple[str, ...] = DEFAULT_QUESTION_TYPES
    per_pair: str = 'all'
    test_size: int = 1000
    rows_per_shard: int = 1000
    row_group_rows: int = 128
    images: bool = True
    max_width: int = MAX_MODEL_WIDTH
    max_height: int = MAX_MODEL_HEIGHT
    jpeg_quality: int = 90
    cot: str = 'none'
    cot_fraction: float = 0.1
    teacher: TeacherConfig | None = None
    source_options: SourceOptions = field(default_factory=SourceOptions)
    workers: int = 1
    progress: bool = False
    overwrite: bool = False
    stop_after_shards: int | None = None

    def __post_init__(self) -> None:
        if not self.sources:
            raise ConfigError('at least one --source KIND:PATH is required')
        unknown = [t for t in self.question_types if t not in QUESTION_TYPES]
        if unknown or not self.question_types:
            raise ConfigError(f'unknown question types {unknown}; known: {", ".join(QUESTION_TYPES)}')
        if len(set(self.question_types)) != len(self.question_types):
            raise ConfigError(f'question types repeat: {self.question_types}')
        if self.per_pair not in ('all', 'one'):
            raise ConfigError(f"per_pair must be 'all' or 'one', got {self.per_pair!r}")
        if self.test_size < 0 or self.rows_per_shard < 1 or self.row_group_rows < 1 or self.workers < 1:
            raise ConfigError('test_size >= 0, rows_per_shard >= 1, row_group_rows >= 1 and workers >= 1 are required')
        if self.max_width < 1 or self.max_height < 1 or not 1 <= self.jpeg_quality <= 100:
            raise ConfigError('image limits must be positive and jpeg_quality in [1, 100]')
        if self.cot not in ('none', 'template', 'teacher'):
            raise ConfigError(f"cot must be 'none', 'template' or 'teacher', got {self.cot!r}")
        if not (0.0 <= self.cot_fraction <= 1.0):
            raise ConfigError(f'cot_fraction must be in [0, 1], got {self.cot_fraction}')
        if self.cot == 'teacher' and (self.teacher is None or not self.images):
            raise ConfigError('cot=teacher needs a teacher endpoint (--teacher-url, --teacher-model) and images')
        if self.stop_after_shards is not None and self.stop_after_shards < 0:
            raise ConfigError('stop_after_shards must be >= 0')

    @property
    def rows_per_pair(self) -> int:
        """Rows written per pair."""
        return 1 if self.per_pair == 'one' else len(self.question_types)

    def fingerprint_fields(self) -> dict[str, Any]:
        """The settings that change the output (not workers, progress, overwrite or stopping)."""
        fields = {
            'sources': list(self.sources),
            'seed': self.seed,
            'pairs': asdict(self.pairs),
            'question_types': list(self.question_types),
            'per_pair': self.per_pair,
            'test_size': self.test_size,
            'rows_per_shard': self.rows_per_shard,
            'row_group_rows': self.row_group_rows,
            'images': self.images,
            'max_size': [self.max_width, self.max_height],
            'jpeg_quality': self.jpeg_quality,
            'cot': self.cot,
            'cot_fraction': self.cot_fraction,
            'source_options': asdict(self.source_options),
        }
        if self.images:
            fields['image_coding'] = _IMAGE_CODING
        if self.teacher is not None and self.cot == 'teacher':
            teacher = asdict(self.teacher)
            teacher.pop('api_key_env', None)
            teacher.pop('concurrency', None)
            fields['teacher'] = teacher
        return fields


# ----------------------------------------------------------------------------------------------------
# Planning
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectPlan:
    """The pairs chosen for one object (what a shard worker needs besides the capture itself).

    Attributes:
        ref: the capture.
        pairs: ``(K, 2)`` int32 view indices.
        thresholds: the object's label thresholds.
        metric: lengths in metres (bags) or capture units.
        views: usable views.
        digest: SHA-256 of the view names and poses (detects a capture that changed since planning).
        view_skips: views dropped when opening, by reason.
        pair_stats: counters of the pair choice.
        error: why the object could not be opened (then no pairs).
    """

    ref: CaptureRef
    pairs: npt.NDArray[np.int32]
    thresholds: LabelThresholds
    metric: bool
    views: int
    digest: str
    view_skips: dict[str, int] = field(default_factory=dict)
    pair_stats: dict[str, int] = field(default_factory=dict)
    error: str | None = None


def _capture_digest(capture: PosedCapture) -> str:
    digest = hashlib.sha256()
    for view in capture.views:
        digest.update(view.name.encode())
        digest.update(np.ascontiguousarray(view.t_world_camera, dtype=np.float64).tobytes())
    return digest.hexdigest()


def _plan_object(ref: CaptureRef, pair_config: PairConfig, seed: int) -> ObjectPlan:
    empty = np.zeros((0, 2), dtype=np.int32)
    try:
        capture = open_capture(ref)
    except (ActialError, OSError, ValueError) as error:
        return ObjectPlan(ref, empty, LabelThresholds(), False, 0, '', error=str(error))
    poses = capture.poses
    scale = 0.0 if capture.metric else object_scale(poses)
    thresholds = label_thresholds(pair_config, metric=capture.metric, scale=scale)
    selection = select_pairs(poses, pair_config, thresholds=thresholds, seed=seed, key=ref.object_id)
    return ObjectPlan(
        ref=ref,
        pairs=selection.pairs,
        thresholds=thresholds,
        metric=capture.metric,
        views=len(capture.views),
        digest=_capture_digest(capture),
        view_skips=dict(sorted(capture.skips.items())),
        pair_stats=dict(sorted(selection.stats.items())),
    )


@dataclass(frozen=True)
class ShardTask:
    """One parquet shard: its file name and the pair ranges ``(plan index, start, stop)`` it holds."""

    split: str
    index: int
    count: int
    segments: tuple[tuple[int, int, int], ...]

    @property
    def name(self) -> str:
        """``{split}-{index:05d}-of-{count:05d}.parquet``."""
        return f'{self.split}-{self.index:05d}-of-{self.count:05d}.parquet'

    @property
    def pairs(self) -> int:
        """Pairs in the shard."""
        return sum(stop - start for _, start, stop in self.segments)


def assign_splits(
    plans: Sequence[ObjectPlan], test_size: int, seed: int
) -> tuple[list[tuple[int, int]], list[tuple[int, int]], list[str]]:
    """Split objects into train and test by object.

    Returns:
        ``(train, test, warnings)``: ``(plan index, pairs used)`` in object-id order per split.
    """
    usable = [i for i, plan in enumerate(plans) if len(plan.pairs)]
    order = sorted(usable, key=lambda i: plans[i].ref.object_id)
    shuffled = list(order)
    random.Random(f'{seed}|split').shuffle(shuffled)
    test: dict[int, int] = {}
    total = 0
    warnings: list[str] = []
    for index in shuffled:
        if total >= test_size or len(test) >= len(usable) - 1:
            break
        take = min(len(plans[index].pairs), test_size - total)
        test[index] = take
        total += take
    if test_size and total < test_size:
        warnings.append(
            f'test split has {total} pairs, fewer than the {test_size} asked for: at least one object must stay in '
            f'train ({len(usable)} objects with pairs)'
        )
    train = [(i, len(plans[i].pairs)) for i in order if i not in test]
    return train, [(i, test[i]) for i in order if i in test], warnings


def make_shards(split: str, items: Sequence[tuple[int, int]], pairs_per_shard: int) -> list[ShardTask]:
    """Cut a split's ``(plan index, pairs used)`` list into shards of ``pairs_per_shard`` pairs."""
    groups: list[list[tuple[int, int, int]]] = []
    current: list[tuple[int, int, int]] = []
    filled = 0
    for plan_index, used in items:
        start = 0
        while start < used:
            take = min(used - start, pairs_per_shard - filled)
            current.append((plan_index, start, start + take))
            filled += take
            start += take
            if filled == pairs_per_shard:
                groups.append(current)
                current, filled = [], 0
    if current:
        groups.append(current)
    return [ShardTask(split, i, len(groups), tuple(group)) for i, group in enumerate(groups)]


# ----------------------------------------------------------------------------------------------------
# Writing one shard (runs in worker processes)
# ----------------------------------------------------------------------------------------------------

_WORKER_CACHE: dict[str, Any] = {}


def _cached_capture(ref: CaptureRef) -> PosedCapture:
    cached = _WORKER_CACHE.get('capture')
    if cached is not None and cached[0] == ref:
        return cached[1]  # type: ignore[no-any-return]
    capture = open_capture(ref)
    _WORKER_CACHE['capture'] = (ref, capture)
    return capture


def _clear_worker_cache() -> None:
    """Forget the cached capture and close the cached teacher client (end of an in-process build)."""
    teacher = _WORKER_CACHE.pop('teacher', None)
    if teacher is not None:
        teacher.close()
    _WORKER_CACHE.clear()


def _teacher(config: TeacherConfig) -> Teacher:
    cached = _WORKER_CACHE.get('teacher')
    if cached is not None and cached.config == config:
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


class _ShardWriter:
    """Streams rows of one shard to a temporary parquet file in row groups; :meth:`commit` renames it."""

    def __init__(self, final: Path, config: BuildConfig, stats: Counter[str]) -> None:
        import pyarrow.parquet as pq
        from actial_ros.training.schema import COLUMNS, features

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
                self._stats[f'teacher|{result.status.value}'] += 1
                if result.status is TeacherStatus.ACCEPTED:
                    self._pending[k].row['cot'] = result.text
                    self._stats['cot|teacher'] += 1
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


def _encode_views(
    capture: PosedCapture, indices: Iterable[int], config: BuildConfig, stats: Counter[str]
) -> tuple[dict[int, bytes], set[int]]:
    """The dataset images of views ``indices``: ``(JPEG bytes by index, indices whose image is unusable)``.

    Through :meth:`actial_ros.sources.base.PosedCapture.iter_jpeg`: at most ``config.max_width`` x
    ``config.max_height`` pixels; a JPEG file within the limits is stored as it is, a larger one decoded
    at reduced scale and encoded at ``config.jpeg_quality``. Each unusable image (unreadable, corrupt,
    another size than its intrinsics) counts once under ``skip|bad_image`` in ``stats``.
    """
    encoded: dict[int, bytes] = {}
    bad: set[int] = set()
    for index, data in capture.iter_jpeg(
        indices, max_width=config.max_width, max_height=config.max_height, quality=config.jpeg_quality
    ):
        if isinstance(data, ImageError):
            stats['skip|bad_image'] += 1
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
    stats: Counter[str],
) -> Iterator[_PendingRow]:
    from actial_ros.training.cot import pseudo_cot

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
            stats['cot|template'] += 1
        elif wants_cot and config.cot == 'teacher':
            teacher = TeacherRequest(images[i], images[j], question, ground_truth_hint(question, pose, unit))
        row = {
            'id': f'{plan.ref.source}/{object_id}/{i}-{j}/{question_type}',
            'source': plan.ref.source,
            'object_id': object_id,
            'split': split,
            'image_1': {'bytes': images[i], 'path': None} if config.images else None,
            'image_2': {'bytes': images[j], 'path': None} if config.images else None,
            'image_1_name': view_1.name,
            'image_2_name': view_2.name,
            'question_type': question.question_type,
            'question': question.text,
            'options': list(question.options),
            'option_labels': list(question.option_labels),
            'answer': question.answer,
            'answer_label': question.answer_label,
            'yaw_deg': float(pose.yaw_deg),
            'pitch_deg': float(pose.pitch_deg),
            'roll_deg': float(pose.roll_deg),
            't12': [float(v) for v in pose.translation],
            'cot': cot,
        }
        stats[f'{split}|rows'] += 1
        stats[f'{split}|type|{question.question_type}'] += 1
        stats[f'{split}|label|{question.question_type}|{question.answer_label}'] += 1
        stats[f'{split}|yaw_bin|{bin_number}'] += 1
        stats[f'{split}|source|{plan.ref.source}'] += 1
        yield _PendingRow(row, teacher)


def _write_shard(task: ShardTask, plans: dict[int, ObjectPlan], config: BuildConfig, data_dir: str) -> dict[str, int]:
    """Write one shard atomically; returns its counters."""
    stats: Counter[str] = Counter()
    writer = _ShardWriter(Path(data_dir) / task.name, config, stats)
    try:
        for plan_index, start, stop in task.segments:
            plan = plans[plan_index]
            capture = _cached_capture(plan.ref)
            if _capture_digest(capture) != plan.digest:
                raise CaptureError(
                    f'{plan.ref.path} changed since the build was planned (views or poses differ); '
                    'rebuild with --overwrite'
                )
            pairs = plan.pairs[start:stop]
            needed = {int(v) for v in pairs.reshape(-1)}
            images, bad = _encode_views(capture, needed, config, stats) if config.images else ({}, set())
            edges = config.pairs.edges
            for i, j in ((int(a), int(b)) for a, b in pairs):
                if i in bad or j in bad:
                    stats['skip|pair_bad_image'] += 1
                    continue
                pose = relative_pose(capture.views[i].t_world_camera, capture.views[j].t_world_camera)
                if yaw_bin_index(abs(pose.yaw_deg), edges) is None:
                    stats['skip|pair_out_of_range'] += 1
                    continue
                stats[f'{task.split}|pairs'] += 1
                for pending in _pair_rows(plan, capture, i, j, pose, task.split, config, images, stats):
                    writer.add(pending)
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    return dict(stats)


# ----------------------------------------------------------------------------------------------------
# The build
# ----------------------------------------------------------------------------------------------------


@dataclass
class BuildReport:
    """What a build did (also written as ``build_report.json``).

    Attributes:
        complete: every shard is written and the card is up to date.
        out: the output folder.
        shards_total, shards_written, shards_resumed: shards in the plan, written now, found done.
        objects: counters about objects (found, with pairs, per split, failed, rejected).
        failed_objects: ``(object id, path, error)`` of objects that could not be opened (first 100).
        rejected_paths: ``(path, reason)`` of folders of an objects source that are not captures.
        views: usable views and views skipped by reason.
        pairs: pair counters (candidates, chosen, ambiguous, trimmed for the test size, dropped).
        splits: per split: objects, pairs, rows, shards.
        counts: rows per split by question type, label, yaw bin and source.
        skips: every counted skip, by reason.
        teacher: teacher outcomes by status.
        warnings: things worth reading.
    """

    complete: bool
    out: str
    shards_total: int = 0
    shards_written: int = 0
    shards_resumed: int = 0
    objects: dict[str, int] = field(default_factory=dict)
    failed_objects: list[tuple[str, str, str]] = field(default_factory=list)
    rejected_paths: list[tuple[str, str]] = field(default_factory=list)
    views: dict[str, int] = field(default_factory=dict)
    pairs: dict[str, int] = field(default_factory=dict)
    splits: dict[str, dict[str, int]] = field(default_factory=dict)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    skips: dict[str, int] = field(default_factory=dict)
    teacher: dict[str, int] = field(default_factory=dict)
    cot: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        """Deterministic JSON (sorted keys)."""
        return json.dumps(asdict(self), indent=2, sort_keys=True) + '\n'


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f'.{path.name}.tmp')
    tmp.write_text(text)
    os.replace(tmp, path)


def _fingerprint(config: BuildConfig, plans: Sequence[ObjectPlan], tasks: Sequence[ShardTask]) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps(config.fingerprint_fields(), sort_keys=True, default=str).encode())
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


def _is_done(state: Path, data: Path, task: ShardTask) -> bool:
    return _done_record(state, task).is_file() and (data / task.name).is_file()


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
                plans.append(_plan_object(ref, config.pairs, config.seed))
                bar.update(1)
            return plans
        chunk = max(1, min(64, len(refs) // (8 * max(1, config.workers)) or 1))
        results = executor.map(
            _plan_object, refs, [config.pairs] * len(refs), [config.seed] * len(refs), chunksize=chunk
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

        pending = [task for task in tasks if not _is_done(state, data, task)]
        resumed = len(tasks) - len(pending)
        if config.stop_after_shards is not None:
            pending = pending[: config.stop_after_shards]
        total_rows = sum(t.pairs for t in tasks) * config.rows_per_pair
        done_rows = sum(t.pairs for t in tasks if t not in pending and _is_done(state, data, t)) * config.rows_per_pair
        bar = _progress(total_rows, 'writing', config.progress, 'row', initial=done_rows)
        written = 0
        try:

            def finished(task: ShardTask, stats: dict[str, int]) -> None:
                nonlocal written
                _atomic_write(_done_record(state, task), json.dumps(stats, sort_keys=True) + '\n')
                written += 1
                bar.update(task.pairs * config.rows_per_pair)
                if on_shard is not None:
                    on_shard(task)

            shard_plans = {task.name: {i: plans[i] for i, _, _ in task.segments} for task in pending}
            if executor is None:
                for task in pending:
                    finished(task, _write_shard(task, shard_plans[task.name], config, str(data)))
            else:
                futures = {
                    executor.submit(_write_shard, task, shard_plans[task.name], config, str(data)): task
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
        _clear_worker_cache()

    complete = all(_is_done(state, data, task) for task in tasks)
    report = _report(config, plans, rejected, train, test, tasks, state, warnings, complete)
    report.shards_written = written
    report.shards_resumed = resumed
    if complete:
        _atomic_write(out / CARD_FILENAME, dataset_card(config, report))
    else:
        (out / CARD_FILENAME).unlink(missing_ok=True)
    _atomic_write(out / REPORT_FILENAME, report.to_json())
    return report


def _report(
    config: BuildConfig,
    plans: Sequence[ObjectPlan],
    rejected: list[tuple[str, str]],
    train: list[tuple[int, int]],
    test: list[tuple[int, int]],
    tasks: Sequence[ShardTask],
    state: Path,
    warnings: list[str],
    complete: bool,
) -> BuildReport:
    report = BuildReport(complete=complete, out=str(config.out), shards_total=len(tasks))
    report.warnings = list(warnings)
    failed = [p for p in plans if p.error is not None]
    report.failed_objects = [(p.ref.object_id, p.ref.path, p.error or '') for p in failed[:100]]
    report.rejected_paths = rejected[:100]
    report.objects = {
        'found': len(plans),
        'failed': len(failed),
        'rejected_paths': len(rejected),
        'without_pairs': sum(1 for p in plans if p.error is None and not len(p.pairs)),
        'train': len(train),
        'test': len(test),
    }
    views: Counter[str] = Counter()
    pairs: Counter[str] = Counter()
    for plan in plans:
        views['usable'] += plan.views
        for reason, count in plan.view_skips.items():
            views[f'skipped_{reason}'] += count
        pairs.update(plan.pair_stats)
    pairs['test_trimmed'] = sum(len(plans[i].pairs) - used for i, used in test)
    stats: Counter[str] = Counter()
    for task in tasks:
        record = _done_record(state, task)
        if record.is_file():
            stats.update(json.loads(record.read_text()))
    skips: Counter[str] = Counter({f'view_{k[len("skipped_") :]}': v for k, v in views.items() if k != 'usable'})
    for key in ('ambiguous_translation', 'ambiguous_yaw'):
        skips[f'pair_{key}'] += pairs.get(key, 0)
    counts: dict[str, dict[str, int]] = {}
    for key, value in sorted(stats.items()):
        head, _, rest = key.partition('|')
        if head == 'skip':
            skips[rest] += value
        elif head == 'teacher':
            report.teacher[rest] = value
        elif head == 'cot':
            report.cot[rest] = value
        else:
            kind, _, name = rest.partition('|')
            counts.setdefault(f'{head}|{kind}', {})[name or 'total'] = value
    report.views = dict(sorted(views.items()))
    report.pairs = dict(sorted(pairs.items()))
    report.skips = {k: v for k, v in sorted(skips.items()) if v}
    report.counts = counts
    for split, items in (('train', train), ('test', test)):
        split_tasks = [t for t in tasks if t.split == split]
        report.splits[split] = {
            'objects': len(items),
            'pairs_planned': sum(used for _, used in items),
            'pairs': stats.get(f'{split}|pairs', 0),
            'rows': stats.get(f'{split}|rows', 0),
            'shards': len(split_tasks),
        }
    if report.failed_objects:
        report.warnings.append(f'{len(failed)} objects could not be opened (see failed_objects)')
    if report.teacher:
        rejected_count = sum(v for k, v in report.teacher.items() if k != TeacherStatus.ACCEPTED.value)
        if rejected_count:
            report.warnings.append(f'{rejected_count} teacher CoTs were rejected or failed (see teacher)')
    return report


# ----------------------------------------------------------------------------------------------------
# Dataset card
# ----------------------------------------------------------------------------------------------------


def _table(title: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = [f'### {title}', '', '| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    lines += ['| ' + ' | '.join(str(cell) for cell in row) + ' |' for row in rows]
    return '\n'.join(lines) + '\n'


def dataset_card(config: BuildConfig, report: BuildReport) -> str:
    """The ``README.md`` of a built dataset: YAML ``configs`` for ``datasets.load_dataset``, then how it was
    built and its counts (per split: question types, labels, yaw bins, sources). No dates."""
    splits = [s for s in ('train', 'test') if report.splits.get(s, {}).get('shards')]
    yaml_lines = ['---', 'configs:', '- config_name: default', '  data_files:']
    for split in splits:
        yaml_lines += [f'  - split: {split}', f'    path: {DATA_DIRNAME}/{split}-*.parquet']
    yaml_lines += [
        'task_categories:',
        '- visual-question-answering',
        'tags:',
        '- spatial-reasoning',
        '- viewpoint',
        '- actial',
        '---',
        '',
    ]
    edges = config.pairs.edges
    bins = ', '.join(f'{k + 1}: {edges[k]:.1f}-{edges[k + 1]:.1f}' for k in range(len(edges) - 1))
    lines = [
        '# Viewpoint dataset (Actial viewpoint learning)',
        '',
        'Built by `actial-ros-train build-viewpoint` (actial_ros). Each row is one multiple-choice question about a '
        'pair of views of one static object: did the camera move left or right (from the camera and from the '
        'object), did it rotate left or right'
        + (', and by how much (yaw-bin probe)' if YAW_BIN_QUESTION in config.question_types else '')
        + '. Labels and the exact '
        "relative pose (yaw, pitch, roll in degrees; `t12`, camera 2's centre in camera 1's optical frame) come "
        'from the capture poses or robot odometry, following actial_ros CONVENTIONS (optical frame x right, y '
        'down, z forward; positive yaw = turned right). Images are JPEG, at most '
        f'{config.max_width}x{config.max_height}: source JPEG files within that size as they are, other images '
        f'downscaled to fit where larger and encoded at quality {config.jpeg_quality}.',
        '',
        '## Build',
        '',
        f'- sources: {", ".join(f"`{s}`" for s in config.sources)}',
        f'- seed: {config.seed}; pairs with {config.pairs.min_yaw_deg:g} <= |yaw| <= {config.pairs.max_yaw_deg:g} '
        f'degrees, at most {config.pairs.max_pairs if config.pairs.max_pairs is not None else "all"} per object, '
        'balanced left/right and across six yaw bins',
        f'- yaw bins (degrees): {bins}',
        f'- question types: {", ".join(config.question_types)} ({config.per_pair} per pair)',
        f'- "no movement" threshold: {config.pairs.translation_threshold_rel:g} x object scale (captures), '
        f'{config.pairs.translation_threshold_m:g} m (bags); "no rotation": {config.pairs.yaw_threshold_deg:g} deg; '
        f'pairs within x{config.pairs.ambiguity_factor:g} of a threshold are left out',
        f'- split by object: test size {config.test_size} pairs',
        f'- chain of thought: {config.cot}' + (f' ({config.cot_fraction:g} of rows)' if config.cot != 'none' else ''),
        '',
        '## Counts',
        '',
        _table(
            'Splits',
            ('split', 'objects', 'pairs', 'rows', 'shards'),
            [
                (
                    s,
                    report.splits[s]['objects'],
                    report.splits[s]['pairs'],
                    report.splits[s]['rows'],
                    report.splits[s]['shards'],
                )
                for s in splits
            ],
        ),
    ]
    for split in splits:
        types = report.counts.get(f'{split}|type', {})
        lines.append(_table(f'{split}: question types', ('question type', 'rows'), sorted(types.items())))
        labels = report.counts.get(f'{split}|label', {})
        lines.append(
            _table(
                f'{split}: answer labels',
                ('question type', 'label', 'rows'),
                [(*key.split('|', 1), value) for key, value in sorted(labels.items())],
            )
        )
        yaw = report.counts.get(f'{split}|yaw_bin', {})
        lines.append(
            _table(
                f'{split}: yaw bins',
                ('bin', 'range (deg)', 'rows'),
                [
                    (k, f'{edges[int(k) - 1]:.1f}-{edges[int(k)]:.1f}', v)
                    for k, v in sorted(yaw.items(), key=lambda item: int(item[0]))
                ],
            )
        )
        sources = report.counts.get(f'{split}|source', {})
        lines.append(_table(f'{split}: sources', ('source', 'rows'), sorted(sources.items())))
    if report.skips:
        lines.append(_table('Counted skips', ('reason', 'count'), sorted(report.skips.items())))
    lines += [
        '## Columns',
        '',
        '`id`, `source`, `object_id`, `split`, `image_1`, `image_2` (JPEG), `image_1_name`, `image_2_name` (file '
        'names or bag stamps in ns), `question_type`, `question`, `options`, `option_labels`, `answer` (letter), '
        '`answer_label` (`left`/`right`/`none`; `left_k`/`right_k` for `yaw_bin`, k = bin 1-6), `yaw_deg`, '
        '`pitch_deg`, `roll_deg`, `t12`, `cot` (`<think> ... </think> <answer>X</answer>` or null).',
        '',
        '## Licence',
        '',
        'The images keep the licences of their sources (e.g. MVImgNet: CC BY 4.0 non-commercial terms of its '
        "authors; see each capture's attribution).",
        '',
    ]
    return '\n'.join(yaml_lines) + '\n'.join(lines)


# ----------------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------------


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the ``build-viewpoint`` flags."""
    parser.description = 'Build the Viewpoint-100K dataset (parquet shards + dataset card).'
    parser.add_argument(
        '--source',
        action='append',
        required=True,
        metavar='KIND:PATH',
        help='llff:DIR, colmap:DIR, transforms:DIR, rosbag:PATH or objects:DIR (repeatable)',
    )
    parser.add_argument('--out', type=Path, required=True, help='output folder')
    parser.add_argument('--seed', type=int, default=0, help='seed of every random choice (default 0)')
    group = parser.add_argument_group('pairs and questions')
    group.add_argument(
        '--min-yaw',
        type=float,
        default=DEFAULT_MIN_YAW_DEG,
        help=f'smallest |yaw| of a pair, degrees ({DEFAULT_MIN_YAW_DEG:g})',
    )
    group.add_argument(
        '--max-yaw',
        type=float,
        default=DEFAULT_MAX_YAW_DEG,
        help=f'largest |yaw| of a pair, degrees ({DEFAULT_MAX_YAW_DEG:g})',
    )
    group.add_argument('--max-pairs-per-object', type=int, default=10, help='cap per object; 0: no cap (10)')
    group.add_argument(
        '--question-types',
        default=','.join(DEFAULT_QUESTION_TYPES),
        help=f'comma-separated, from {", ".join(QUESTION_TYPES)}',
    )
    group.add_argument('--yaw-bin-probe', action='store_true', help='also ask the yaw-bin probe (direction + bin)')
    group.add_argument(
        '--per-pair',
        choices=('all', 'one'),
        default='all',
        help='rows per pair: every question type, or one seeded type (all)',
    )
    group.add_argument('--test-size', type=int, default=1000, help='pairs in the test split, by object (1000)')
    group.add_argument(
        '--translation-threshold-rel',
        type=float,
        default=0.02,
        help='"no movement" below this x object scale, captures (0.02)',
    )
    group.add_argument(
        '--translation-threshold-m', type=float, default=0.01, help='"no movement" below this, metres, bags (0.01)'
    )
    group.add_argument('--yaw-threshold-deg', type=float, default=2.0, help='"no rotation" below this (2)')
    group.add_argument(
        '--ambiguity-factor',
        type=float,
        default=2.0,
        help='leave out pairs within this factor of a threshold; 1 disables (2)',
    )
    group = parser.add_argument_group('output')
    group.add_argument('--rows-per-shard', type=int, default=1000, help='rows per parquet shard (1000)')
    group.add_argument('--row-group-rows', type=int, default=128, help='rows per parquet row group (128)')
    group.add_argument('--no-images', action='store_true', help='leave the image columns empty (metadata only)')
    group.add_argument('--max-width', type=int, default=MAX_MODEL_WIDTH, help='image width limit (960)')
    group.add_argument('--max-height', type=int, default=MAX_MODEL_HEIGHT, help='image height limit (540)')
    group.add_argument('--jpeg-quality', type=int, default=90, help='JPEG quality (90)')
    group = parser.add_argument_group('chain of thought')
    group.add_argument(
        '--cot',
        choices=('none', 'template', 'teacher'),
        default='none',
        help='pseudo-CoT from the true pose (template) or from a teacher model (none)',
    )
    group.add_argument('--cot-fraction', type=float, default=0.1, help='share of rows with a CoT (0.1)')
    group.add_argument('--teacher-url', default='', help='OpenAI-compatible base URL of the teacher')
    group.add_argument('--teacher-model', default='', help='teacher model name')
    group.add_argument(
        '--teacher-api-key-env',
        default='ACTIAL_TEACHER_API_KEY',
        help='environment variable holding the teacher API key',
    )
    group.add_argument('--teacher-timeout', type=float, default=120.0, help='seconds per teacher request')
    group.add_argument('--teacher-concurrency', type=int, default=4, help='teacher requests in flight per worker')
    group.add_argument('--teacher-max-tokens', type=int, default=1024, help='teacher completion limit')
    group = parser.add_argument_group('rosbag sources')
    group.add_argument('--bag-image-topic', default='', help='image topic (default: the only Image/CompressedImage)')
    group.add_argument('--bag-camera-info-topic', default='', help='CameraInfo topic (default: the only one)')
    group.add_argument('--bag-odometry-topic', default='', help='Odometry topic (default: the only one)')
    group.add_argument('--bag-no-camera-info-ok', action='store_true', help='accept bags without CameraInfo')
    group.add_argument(
        '--extrinsic-translation',
        type=float,
        nargs=3,
        metavar=('X', 'Y', 'Z'),
        help='T_base_camera_optical translation, m (default: recording.json, else 0 0 0)',
    )
    group.add_argument(
        '--extrinsic-rotation-xyzw',
        type=float,
        nargs=4,
        metavar=('X', 'Y', 'Z', 'W'),
        help='T_base_camera_optical rotation (default: recording.json, else forward-looking)',
    )
    group.add_argument(
        '--camera',
        action='append',
        default=[],
        metavar='NAME:IMAGE_TOPIC[:CAMERA_INFO_TOPIC]',
        help='read several cameras of one bag (repeatable); views are named NAME@STAMP and pair within and '
        'across cameras; CameraInfo default: recording.json, else <namespace>/camera_info',
    )
    group.add_argument(
        '--extrinsic',
        action='append',
        default=[],
        metavar='NAME:TX,TY,TZ,QX,QY,QZ,QW',
        help="a camera's T_base_camera_optical (m, base_link; quaternion x,y,z,w); without --camera it "
        'overrides that camera of each recording.json (repeatable)',
    )
    group.add_argument(
        '--camera-file',
        type=Path,
        help='JSON/YAML list of cameras (name, image_topic, camera_info_topic, extrinsic_translation, '
        'extrinsic_rotation_xyzw), or a recording.json; flags add to it',
    )
    group.add_argument('--odometry-max-gap-s', type=float, default=0.5, help='largest odometry gap interpolated')
    group.add_argument(
        '--odometry-max-extrapolation-s',
        type=float,
        default=0.05,
        help='largest distance to an odometry sample held without a bracket',
    )
    group = parser.add_argument_group('execution')
    group.add_argument('--workers', type=int, default=os.cpu_count() or 1, help='processes (default: CPU count)')
    group.add_argument('--no-progress', action='store_true', help='no progress bars')
    group.add_argument('--overwrite', action='store_true', help='replace an existing build in --out')
    group.add_argument(
        '--stop-after-shards',
        type=int,
        default=None,
        help='stop after writing this many shards (resume later with the same command)',
    )


def config_from_args(args: argparse.Namespace) -> BuildConfig:
    """Turn parsed flags into a :class:`BuildConfig`.

    Raises:
        ConfigError: invalid values or combinations.
    """
    types = [t.strip() for t in str(args.question_types).split(',') if t.strip()]
    if args.yaw_bin_probe and YAW_BIN_QUESTION not in types:
        types.append(YAW_BIN_QUESTION)
    extrinsic: tuple[float, ...] | None = None
    if args.extrinsic_translation is not None or args.extrinsic_rotation_xyzw is not None:
        try:
            matrix = base_to_optical_extrinsic(
                args.extrinsic_translation or (0.0, 0.0, 0.0),
                args.extrinsic_rotation_xyzw or BASE_TO_OPTICAL_QUATERNION_XYZW,
            )
        except ActialError as error:
            raise ConfigError(f'invalid extrinsic: {error}') from error
        extrinsic = tuple(float(v) for v in matrix.reshape(-1))
    teacher = None
    if args.cot == 'teacher':
        teacher = TeacherConfig(
            base_url=args.teacher_url,
            model=args.teacher_model,
            api_key_env=args.teacher_api_key_env,
            timeout_s=args.teacher_timeout,
            concurrency=args.teacher_concurrency,
            max_tokens=args.teacher_max_tokens,
        )
    try:
        pair_config = PairConfig(
            min_yaw_deg=args.min_yaw,
            max_yaw_deg=args.max_yaw,
            max_pairs=args.max_pairs_per_object or None,
            translation_threshold_rel=args.translation_threshold_rel,
            translation_threshold_m=args.translation_threshold_m,
            yaw_threshold_deg=args.yaw_threshold_deg,
            ambiguity_factor=args.ambiguity_factor,
        )
        options = SourceOptions(
            image_topic=args.bag_image_topic,
            camera_info_topic=args.bag_camera_info_topic,
            odometry_topic=args.bag_odometry_topic,
            extrinsic=extrinsic,
            require_camera_info=not args.bag_no_camera_info_ok,
            max_interpolation_gap_s=args.odometry_max_gap_s,
            max_extrapolation_s=args.odometry_max_extrapolation_s,
            cameras=bag_cameras_from_args(
                getattr(args, 'camera', None) or (),
                getattr(args, 'extrinsic', None) or (),
                getattr(args, 'camera_file', None),
            ),
        )
    except ActialError as error:
        raise ConfigError(str(error)) from error
    return BuildConfig(
        sources=tuple(args.source),
        out=Path(args.out),
        seed=args.seed,
        pairs=pair_config,
        question_types=tuple(types),
        per_pair=args.per_pair,
        test_size=args.test_size,
        rows_per_shard=args.rows_per_shard,
        row_group_rows=args.row_group_rows,
        images=not args.no_images,
        max_width=args.max_width,
        max_height=args.max_height,
        jpeg_quality=args.jpeg_quality,
        cot=args.cot,
        cot_fraction=args.cot_fraction,
        teacher=teacher,
        source_options=options,
        workers=args.workers,
        progress=not args.no_progress,
        overwrite=args.overwrite,
        stop_after_shards=args.stop_after_shards,
    )


def summary(report: BuildReport) -> str:
    """A few lines for the terminal."""
    lines = [f'{"complete" if report.complete else "INCOMPLETE"}: {report.out}']
    for split, values in report.splits.items():
        lines.append(
            f'  {split}: {values["objects"]} objects, {values["pairs"]} pairs, {values["rows"]} rows, '
            f'{values["shards"]} shards'
        )
    lines.append(
        f'  shards: {report.shards_written} written, {report.shards_resumed} already done, {report.shards_total} in all'
    )
    if report.skips:
        lines.append('  skipped: ' + ', '.join(f'{k}={v}' for k, v in report.skips.items()))
    if report.teacher:
        lines.append('  teacher: ' + ', '.join(f'{k}={v}' for k, v in sorted(report.teacher.items())))
    lines += [f'  warning: {w}' for w in report.warnings]
    return '\n'.join(lines)


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
