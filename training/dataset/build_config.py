"""Settings of ``actial-ros-train build-viewpoint``: the flags and YAML keys (:class:`BuildSettings`), and the
structured build definition the builder runs on (:class:`BuildConfig`).

:class:`BuildSettings` is flat, like :class:`~actial_ros.training.fine_tuning.sft.SftSettings`: one field per flag
(``min_yaw`` -> ``--min-yaw``), each with its help, defaults < YAML file (``--config``) < flags given
(:mod:`actial_ros.training.config`). :meth:`BuildSettings.to_config` groups it into :class:`BuildConfig`
(pair policy, source options, teacher) and validates it. Defaults are taken from their homes: the pair
policy's from :class:`~actial_ros.training.dataset.pair_selection.PairConfig` (whose yaw range is the core's), the bag
reading's from :class:`~actial_ros.sources.base.SourceOptions`, the teacher's from
:class:`~actial_ros.training.dataset.teacher.TeacherConfig`, the build's from :class:`BuildConfig`.

This module holds settings only: it imports no part of the builder.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from actial_ros.training import config as settings_io
from actial_ros.training.config import field_default, setting
from actial_ros.training.dataset.pair_selection import PairConfig
from actial_ros.training.dataset.teacher import TeacherConfig
from actial_ros.training.dataset.viewpoint import YAW_BIN_QUESTION

from actial_ros.bags.camera_specs import bag_cameras_from_args
from actial_ros.enums import QuestionType
from actial_ros.errors import ActialError, ConfigError
from actial_ros.geometry import BASE_TO_OPTICAL_QUATERNION_XYZW, base_to_optical_extrinsic
from actial_ros.imaging import MAX_MODEL_HEIGHT, MAX_MODEL_WIDTH
from actial_ros.sources.base import SourceOptions

__all__ = ['DEFAULT_QUESTION_TYPES', 'QUESTION_TYPES', 'BuildConfig', 'BuildSettings', 'config_from_args']

QUESTION_TYPES: tuple[str, ...] = (*(t.value for t in QuestionType), YAW_BIN_QUESTION)
"""Every question type the builder writes (``yaw_bin`` is the optional probe)."""

DEFAULT_QUESTION_TYPES: tuple[str, ...] = tuple(t.value for t in QuestionType)
"""The three Actial question types."""


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
        cot: ``'none'``, ``'template'`` (:func:`actial_ros.training.dataset.cot.pseudo_cot`) or ``'teacher'``.
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
        if self.teacher is not None and self.cot == 'teacher':
            teacher = asdict(self.teacher)
            teacher.pop('api_key_env', None)
            teacher.pop('concurrency', None)
            fields['teacher'] = teacher
        return fields


_PAIRS = 'pairs and questions'
_OUTPUT = 'output'
_COT = 'chain of thought'
_BAGS = 'rosbag sources'
_RUN = 'execution'


@dataclass
class BuildSettings:
    """The flags and YAML keys of ``build-viewpoint`` (field ``min_yaw`` = key ``min_yaw`` = ``--min-yaw``).

    :meth:`to_config` turns them into a :class:`BuildConfig`; units are in each field's help.
    """

    source: list[str] = field(
        metadata=setting(
            'llff:DIR, colmap:DIR, transforms:DIR, rosbag:PATH or objects:DIR (repeatable)',
            repeat=True,
            metavar='KIND:PATH',
        )
    )
    out: str = field(metadata=setting('output folder'))
    seed: int = field(default=field_default(BuildConfig, 'seed'), metadata=setting('seed of every random choice'))
    min_yaw: float = field(
        default=field_default(PairConfig, 'min_yaw_deg'),
        metadata=setting('smallest |yaw| of a pair, degrees', group=_PAIRS),
    )
    max_yaw: float = field(
        default=field_default(PairConfig, 'max_yaw_deg'),
        metadata=setting('largest |yaw| of a pair, degrees', group=_PAIRS),
    )
    max_pairs_per_object: int = field(
        default=field_default(PairConfig, 'max_pairs'), metadata=setting('cap per object; 0: no cap', group=_PAIRS)
    )
    question_types: list[str] = field(
        default_factory=lambda: list(DEFAULT_QUESTION_TYPES),
        metadata=setting(
            f'question types (several, or comma-separated), from {", ".join(QUESTION_TYPES)}', group=_PAIRS
        ),
    )
    yaw_bin_probe: bool = field(
        default=False, metadata=setting('also ask the yaw-bin probe (direction + bin)', group=_PAIRS)
    )
    per_pair: str = field(
        default=field_default(BuildConfig, 'per_pair'),
        metadata=setting(
            'rows per pair: every question type, or one seeded type', group=_PAIRS, choices=('all', 'one')
        ),
    )
    test_size: int = field(
        default=field_default(BuildConfig, 'test_size'),
        metadata=setting('pairs in the test split, by object', group=_PAIRS),
    )
    translation_threshold_rel: float = field(
        default=field_default(PairConfig, 'translation_threshold_rel'),
        metadata=setting('"no movement" below this x object scale, captures', group=_PAIRS),
    )
    translation_threshold_m: float = field(
        default=field_default(PairConfig, 'translation_threshold_m'),
        metadata=setting('"no movement" below this, metres, bags', group=_PAIRS),
    )
    yaw_threshold_deg: float = field(
        default=field_default(PairConfig, 'yaw_threshold_deg'),
        metadata=setting('"no rotation" below this', group=_PAIRS),
    )
    ambiguity_factor: float = field(
        default=field_default(PairConfig, 'ambiguity_factor'),
        metadata=setting('leave out pairs within this factor of a threshold; 1 disables', group=_PAIRS),
    )
    rows_per_shard: int = field(
        default=field_default(BuildConfig, 'rows_per_shard'), metadata=setting('rows per parquet shard', group=_OUTPUT)
    )
    row_group_rows: int = field(
        default=field_default(BuildConfig, 'row_group_rows'),
        metadata=setting('rows per parquet row group', group=_OUTPUT),
    )
    images: bool = field(
        default=field_default(BuildConfig, 'images'),
        metadata=setting('embed the images (--no-images: metadata only)', group=_OUTPUT),
    )
    max_width: int = field(
        default=field_default(BuildConfig, 'max_width'), metadata=setting('image width limit, pixels', group=_OUTPUT)
    )
    max_height: int = field(
        default=field_default(BuildConfig, 'max_height'), metadata=setting('image height limit, pixels', group=_OUTPUT)
    )
    jpeg_quality: int = field(
        default=field_default(BuildConfig, 'jpeg_quality'), metadata=setting('JPEG quality', group=_OUTPUT)
    )
    cot: str = field(
        default=field_default(BuildConfig, 'cot'),
        metadata=setting(
            'pseudo-CoT from the true pose (template) or from a teacher model',
            group=_COT,
            choices=('none', 'template', 'teacher'),
        ),
    )
    cot_fraction: float = field(
        default=field_default(BuildConfig, 'cot_fraction'), metadata=setting('share of rows with a CoT', group=_COT)
    )
    teacher_url: str = field(default='', metadata=setting('OpenAI-compatible base URL of the teacher', group=_COT))
    teacher_model: str = field(default='', metadata=setting('teacher model name', group=_COT))
    teacher_api_key_env: str = field(
        default=field_default(TeacherConfig, 'api_key_env'),
        metadata=setting('environment variable holding the teacher API key', group=_COT),
    )
    teacher_timeout: float = field(
        default=field_default(TeacherConfig, 'timeout_s'), metadata=setting('seconds per teacher request', group=_COT)
    )
    teacher_concurrency: int = field(
        default=field_default(TeacherConfig, 'concurrency'),
        metadata=setting('teacher requests in flight per worker', group=_COT),
    )
    teacher_max_tokens: int = field(
        default=field_default(TeacherConfig, 'max_tokens'), metadata=setting('teacher completion limit', group=_COT)
    )
    bag_image_topic: str = field(
        default=field_default(SourceOptions, 'image_topic'),
        metadata=setting('image topic (default: the only Image/CompressedImage)', group=_BAGS),
    )
    bag_camera_info_topic: str = field(
        default=field_default(SourceOptions, 'camera_info_topic'),
        metadata=setting('CameraInfo topic (default: the only one)', group=_BAGS),
    )
    bag_odometry_topic: str = field(
        default=field_default(SourceOptions, 'odometry_topic'),
        metadata=setting('Odometry topic (default: the only one)', group=_BAGS),
    )
    bag_no_camera_info_ok: bool = field(
        default=not field_default(SourceOptions, 'require_camera_info'),
        metadata=setting('accept bags without CameraInfo', group=_BAGS),
    )
    extrinsic_translation: list[float] | None = field(
        default=None,
        metadata=setting(
            'T_base_camera_optical translation, m (default: recording.json, else 0 0 0)',
            group=_BAGS,
            nargs=3,
            metavar=('X', 'Y', 'Z'),
        ),
    )
    extrinsic_rotation_xyzw: list[float] | None = field(
        default=None,
        metadata=setting(
            'T_base_camera_optical rotation (default: recording.json, else forward-looking)',
            group=_BAGS,
            nargs=4,
            metavar=('X', 'Y', 'Z', 'W'),
        ),
    )
    camera: list[str] = field(
        default_factory=list,
        metadata=setting(
            'read several cameras of one bag (repeatable); views are named NAME@STAMP and pair within and '
            'across cameras; CameraInfo default: recording.json, else <namespace>/camera_info',
            group=_BAGS,
            repeat=True,
            metavar='NAME:IMAGE_TOPIC[:CAMERA_INFO_TOPIC]',
        ),
    )
    extrinsic: list[str] = field(
        default_factory=list,
        metadata=setting(
            "a camera's T_base_camera_optical (m, base_link; quaternion x,y,z,w); without --camera it "
            'overrides that camera of each recording.json (repeatable)',
            group=_BAGS,
            repeat=True,
            metavar='NAME:TX,TY,TZ,QX,QY,QZ,QW',
        ),
    )
    camera_file: str | None = field(
        default=None,
        metadata=setting(
            'JSON/YAML list of cameras (name, image_topic, camera_info_topic, extrinsic_translation, '
            'extrinsic_rotation_xyzw), or a recording.json; flags add to it',
            group=_BAGS,
        ),
    )
    odometry_max_gap_s: float = field(
        default=field_default(SourceOptions, 'max_interpolation_gap_s'),
        metadata=setting('largest odometry gap interpolated, s', group=_BAGS),
    )
    odometry_max_extrapolation_s: float = field(
        default=field_default(SourceOptions, 'max_extrapolation_s'),
        metadata=setting('largest distance to an odometry sample held without a bracket, s', group=_BAGS),
    )
    workers: int = field(
        default_factory=lambda: os.cpu_count() or 1, metadata=setting('processes (default: the CPU count)', group=_RUN)
    )
    progress: bool = field(default=True, metadata=setting('progress bars on stderr', group=_RUN))
    overwrite: bool = field(default=False, metadata=setting('replace an existing build in --out', group=_RUN))
    stop_after_shards: int | None = field(
        default=None,
        metadata=setting('stop after writing this many shards (resume later with the same command)', group=_RUN),
    )

    def to_config(self) -> BuildConfig:
        """The :class:`BuildConfig` these settings define.

        Raises:
            ConfigError: invalid values or combinations.
        """
        types = [t.strip() for text in self.question_types for t in str(text).split(',') if t.strip()]
        if self.yaw_bin_probe and YAW_BIN_QUESTION not in types:
            types.append(YAW_BIN_QUESTION)
        extrinsic: tuple[float, ...] | None = None
        if self.extrinsic_translation is not None or self.extrinsic_rotation_xyzw is not None:
            try:
                matrix = base_to_optical_extrinsic(
                    self.extrinsic_translation or (0.0, 0.0, 0.0),
                    self.extrinsic_rotation_xyzw or BASE_TO_OPTICAL_QUATERNION_XYZW,
                )
            except ActialError as error:
                raise ConfigError(f'invalid extrinsic: {error}') from error
            extrinsic = tuple(float(v) for v in matrix.reshape(-1))
        teacher = None
        if self.cot == 'teacher':
            teacher = TeacherConfig(
                base_url=self.teacher_url,
                model=self.teacher_model,
                api_key_env=self.teacher_api_key_env,
                timeout_s=self.teacher_timeout,
                concurrency=self.teacher_concurrency,
                max_tokens=self.teacher_max_tokens,
            )
        try:
            pair_config = PairConfig(
                min_yaw_deg=self.min_yaw,
                max_yaw_deg=self.max_yaw,
                max_pairs=self.max_pairs_per_object or None,
                translation_threshold_rel=self.translation_threshold_rel,
                translation_threshold_m=self.translation_threshold_m,
                yaw_threshold_deg=self.yaw_threshold_deg,
                ambiguity_factor=self.ambiguity_factor,
            )
            options = SourceOptions(
                image_topic=self.bag_image_topic,
                camera_info_topic=self.bag_camera_info_topic,
                odometry_topic=self.bag_odometry_topic,
                extrinsic=extrinsic,
                require_camera_info=not self.bag_no_camera_info_ok,
                max_interpolation_gap_s=self.odometry_max_gap_s,
                max_extrapolation_s=self.odometry_max_extrapolation_s,
                cameras=bag_cameras_from_args(
                    self.camera, self.extrinsic, None if self.camera_file is None else Path(self.camera_file)
                ),
            )
        except ActialError as error:
            raise ConfigError(str(error)) from error
        return BuildConfig(
            sources=tuple(self.source),
            out=Path(self.out),
            seed=self.seed,
            pairs=pair_config,
            question_types=tuple(types),
            per_pair=self.per_pair,
            test_size=self.test_size,
            rows_per_shard=self.rows_per_shard,
            row_group_rows=self.row_group_rows,
            images=self.images,
            max_width=self.max_width,
            max_height=self.max_height,
            jpeg_quality=self.jpeg_quality,
            cot=self.cot,
            cot_fraction=self.cot_fraction,
            teacher=teacher,
            source_options=options,
            workers=self.workers,
            progress=self.progress,
            overwrite=self.overwrite,
            stop_after_shards=self.stop_after_shards,
        )


def config_from_args(args: argparse.Namespace) -> BuildConfig:
    """The :class:`BuildConfig` of parsed ``build-viewpoint`` flags (defaults < ``--config`` YAML < flags).

    Raises:
        ConfigError: an unreadable or unknown YAML key, a missing ``source``/``out``, invalid values or
            combinations.
    """
    settings: BuildSettings = settings_io.resolve(BuildSettings, args)
    return settings.to_config()
