"""Settings of ``actial-ros-train build-viewpoint``: :class:`BuildConfig`, the structured build definition the
builder runs on, is also the one declaration of the command's flags and YAML keys.

Each setting is declared once, where it is used: the build's own fields here, the pair policy's on
:class:`~actial_ros.training.dataset.pair_selection.PairConfig` (whose yaw range is the core's), the bag reading's
on :class:`~actial_ros.sources.base.SourceOptions`, the teacher's on
:class:`~actial_ros.training.dataset.teacher.TeacherConfig`; each field's metadata names its flag and YAML key
(``PairConfig.min_yaw_deg`` is ``--min-yaw`` / ``min_yaw``) and how a flag's value becomes the field's
(:mod:`actial_ros.training.config`: defaults < YAML file (``--config``) < flags given). The few flags that are not
one field (the yaw-bin probe, the single camera's extrinsic, several cameras) are :class:`BuildInputs`, combined
by :func:`config_from_args`.

This module holds settings only: it imports no part of the builder.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from actial_ros.training import config as settings_io
from actial_ros.training.config import field_default, part, setting
from actial_ros.training.dataset.pair_selection import PairConfig
from actial_ros.training.dataset.teacher import TeacherConfig
from actial_ros.training.dataset.viewpoint import YAW_BIN_QUESTION

from actial_ros.bags.camera_specs import bag_cameras_from_args
from actial_ros.enums import QuestionType
from actial_ros.errors import ActialError, ConfigError
from actial_ros.geometry import BASE_TO_OPTICAL_QUATERNION_XYZW, base_to_optical_extrinsic
from actial_ros.imaging import MAX_MODEL_HEIGHT, MAX_MODEL_WIDTH
from actial_ros.sources.base import SourceOptions

__all__ = [
    'COT_KINDS',
    'DEFAULT_QUESTION_TYPES',
    'PER_PAIR',
    'QUESTION_TYPES',
    'BuildConfig',
    'BuildInputs',
    'add_arguments',
    'config_from_args',
]

QUESTION_TYPES: tuple[str, ...] = (*(t.value for t in QuestionType), YAW_BIN_QUESTION)
"""Every question type the builder writes (``yaw_bin`` is the optional probe)."""

DEFAULT_QUESTION_TYPES: tuple[str, ...] = tuple(t.value for t in QuestionType)
"""The three Actial question types."""


PER_PAIR: tuple[str, ...] = ('all', 'one')
"""Rows per pair: one per question type, or one seeded type."""

COT_KINDS: tuple[str, ...] = ('none', 'template', 'teacher')
"""Where chains of thought come from: none, the true pose (template) or a teacher model."""

# The help sections of build-viewpoint's flags.
_PAIRS = 'pairs and questions'
_OUTPUT = 'output'
_COT = 'chain of thought'
_BAGS = 'rosbag sources'
_RUN = 'execution'
_EXTRINSIC_HELP = 'T_base_camera_optical %s (default: recording.json, else %s)'
_XYZ = ('X', 'Y', 'Z')
_XYZW = ('X', 'Y', 'Z', 'W')
_CAMERA_HELP = (
    'read several cameras of one bag (repeatable); views are named NAME@STAMP and pair within and across cameras; '
    'CameraInfo default: recording.json, else <namespace>/camera_info'
)
_CAMERA_METAVAR = 'NAME:IMAGE_TOPIC[:CAMERA_INFO_TOPIC]'
_NAMED_EXTRINSIC_HELP = (
    "a camera's T_base_camera_optical (m, base_link; quaternion x,y,z,w); without --camera it overrides that camera "
    'of each recording.json (repeatable)'
)
_NAMED_EXTRINSIC = 'NAME:TX,TY,TZ,QX,QY,QZ,QW'


def _question_types(texts: Sequence[str] | str) -> tuple[str, ...]:
    """Question types given as several values and/or comma-separated (``--question-types a,b c``)."""
    given = [texts] if isinstance(texts, str) else texts
    return tuple(t.strip() for text in given for t in str(text).split(',') if t.strip())


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

    sources: tuple[str, ...] = field(
        metadata=setting(
            'llff:DIR, colmap:DIR, transforms:DIR, rosbag:PATH or objects:DIR (repeatable)',
            key='source',
            repeat=True,
            metavar='KIND:PATH',
            parse=tuple,
        )
    )
    out: Path = field(metadata=setting('output folder', parse=Path))
    seed: int = field(default=0, metadata=setting('seed of every random choice'))
    pairs: PairConfig = field(default_factory=PairConfig, metadata=part(group=_PAIRS))
    question_types: tuple[str, ...] = field(
        default=DEFAULT_QUESTION_TYPES,
        metadata=setting(
            f'question types (several, or comma-separated), from {", ".join(QUESTION_TYPES)}',
            group=_PAIRS,
            parse=_question_types,
        ),
    )
    per_pair: str = field(
        default='all',
        metadata=setting('rows per pair: every question type, or one seeded type', group=_PAIRS, choices=PER_PAIR),
    )
    test_size: int = field(default=1000, metadata=setting('pairs in the test split, by object', group=_PAIRS))
    rows_per_shard: int = field(default=1000, metadata=setting('rows per parquet shard', group=_OUTPUT))
    row_group_rows: int = field(default=128, metadata=setting('rows per parquet row group', group=_OUTPUT))
    images: bool = field(default=True, metadata=setting('embed the images (--no-images: metadata only)', group=_OUTPUT))
    max_width: int = field(default=MAX_MODEL_WIDTH, metadata=setting('image width limit, pixels', group=_OUTPUT))
    max_height: int = field(default=MAX_MODEL_HEIGHT, metadata=setting('image height limit, pixels', group=_OUTPUT))
    jpeg_quality: int = field(default=90, metadata=setting('JPEG quality', group=_OUTPUT))
    cot: str = field(
        default='none',
        metadata=setting(
            'pseudo-CoT from the true pose (template) or from a teacher model', group=_COT, choices=COT_KINDS
        ),
    )
    cot_fraction: float = field(default=0.1, metadata=setting('share of rows with a CoT', group=_COT))
    teacher: TeacherConfig | None = field(default=None, metadata=part(group=_COT))
    source_options: SourceOptions = field(default_factory=SourceOptions, metadata=part(group=_BAGS))
    workers: int = field(
        default=1,
        metadata=setting('processes (default: the CPU count)', group=_RUN, command_default=lambda: os.cpu_count() or 1),
    )
    progress: bool = field(default=False, metadata=setting('progress bars on stderr', group=_RUN, command_default=True))
    overwrite: bool = field(default=False, metadata=setting('replace an existing build in --out', group=_RUN))
    stop_after_shards: int | None = field(
        default=None,
        metadata=setting('stop after writing this many shards (resume later with the same command)', group=_RUN),
    )

    def __post_init__(self) -> None:
        if not self.sources:
            raise ConfigError('at least one --source KIND:PATH is required')
        unknown = [t for t in self.question_types if t not in QUESTION_TYPES]
        if unknown or not self.question_types:
            raise ConfigError(f'unknown question types {unknown}; known: {", ".join(QUESTION_TYPES)}')
        if len(set(self.question_types)) != len(self.question_types):
            raise ConfigError(f'question types repeat: {self.question_types}')
        if self.per_pair not in PER_PAIR:
            raise ConfigError(f"per_pair must be 'all' or 'one', got {self.per_pair!r}")
        if self.test_size < 0 or self.rows_per_shard < 1 or self.row_group_rows < 1 or self.workers < 1:
            raise ConfigError('test_size >= 0, rows_per_shard >= 1, row_group_rows >= 1 and workers >= 1 are required')
        if self.max_width < 1 or self.max_height < 1 or not 1 <= self.jpeg_quality <= 100:
            raise ConfigError('image limits must be positive and jpeg_quality in [1, 100]')
        if self.cot not in COT_KINDS:
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


@dataclass
class BuildInputs:
    """The ``build-viewpoint`` flags that are not one field of :class:`BuildConfig` or its parts: they combine
    into its question types and bag options (:func:`config_from_args`). Every other flag and YAML key is declared
    by :class:`BuildConfig`, :class:`~actial_ros.training.dataset.pair_selection.PairConfig`,
    :class:`~actial_ros.sources.base.SourceOptions` and :class:`~actial_ros.training.dataset.teacher.TeacherConfig`.
    """

    yaw_bin_probe: bool = field(
        default=False, metadata=setting('also ask the yaw-bin probe (direction + bin)', group=_PAIRS)
    )
    extrinsic_translation: list[float] | None = field(
        default=None,
        metadata=setting(_EXTRINSIC_HELP % ('translation, m', '0 0 0'), group=_BAGS, nargs=3, metavar=_XYZ),
    )
    extrinsic_rotation_xyzw: list[float] | None = field(
        default=None,
        metadata=setting(_EXTRINSIC_HELP % ('rotation', 'forward-looking'), group=_BAGS, nargs=4, metavar=_XYZW),
    )
    camera: list[str] = field(
        default_factory=list, metadata=setting(_CAMERA_HELP, group=_BAGS, repeat=True, metavar=_CAMERA_METAVAR)
    )
    extrinsic: list[str] = field(
        default_factory=list,
        metadata=setting(_NAMED_EXTRINSIC_HELP, group=_BAGS, repeat=True, metavar=_NAMED_EXTRINSIC),
    )
    camera_file: str | None = field(
        default=None,
        metadata=setting(
            'JSON/YAML list of cameras (name, image_topic, camera_info_topic, extrinsic_translation, '
            'extrinsic_rotation_xyzw), or a recording.json; flags add to it',
            group=_BAGS,
        ),
    )

    def extrinsic_matrix(self) -> tuple[float, ...] | None:
        """The single camera's ``T_base_camera_optical`` as 16 row-major floats, ``None`` when neither part is given.

        Raises:
            ConfigError: an invalid translation or rotation.
        """
        if self.extrinsic_translation is None and self.extrinsic_rotation_xyzw is None:
            return None
        try:
            matrix = base_to_optical_extrinsic(
                self.extrinsic_translation or (0.0, 0.0, 0.0),
                self.extrinsic_rotation_xyzw or BASE_TO_OPTICAL_QUATERNION_XYZW,
            )
        except ActialError as error:
            raise ConfigError(f'invalid extrinsic: {error}') from error
        return tuple(float(v) for v in matrix.reshape(-1))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config`` and the flags of ``build-viewpoint``: :class:`BuildConfig`'s settings (its parts' included),
    then :class:`BuildInputs`."""
    settings_io.add_arguments(parser, BuildConfig, BuildInputs)


def config_from_args(args: argparse.Namespace) -> BuildConfig:
    """The :class:`BuildConfig` of parsed ``build-viewpoint`` flags (defaults < ``--config`` YAML < flags).

    Raises:
        ConfigError: an unreadable or unknown YAML key, a missing ``source``/``out``, invalid values or
            combinations.
    """
    values = settings_io.resolve_values(args, BuildConfig, BuildInputs)
    inputs: BuildInputs = settings_io.construct(BuildInputs, values)
    extrinsic = inputs.extrinsic_matrix()
    teacher = None
    if values.get('cot', field_default(BuildConfig, 'cot')) == 'teacher':
        teacher = settings_io.construct(TeacherConfig, values)
    try:
        cameras = bag_cameras_from_args(
            inputs.camera, inputs.extrinsic, None if inputs.camera_file is None else Path(inputs.camera_file)
        )
        options = settings_io.construct(SourceOptions, values, extrinsic=extrinsic, cameras=cameras)
        pairs = settings_io.construct(PairConfig, values)
    except ActialError as error:
        raise ConfigError(str(error)) from error
    config: BuildConfig = settings_io.construct(
        BuildConfig, values, pairs=pairs, teacher=teacher, source_options=options
    )
    if inputs.yaw_bin_probe and YAW_BIN_QUESTION not in config.question_types:
        config = replace(config, question_types=(*config.question_types, YAW_BIN_QUESTION))
    return config
