"""The rig's ground-truth pose record: JSON lines, one per published camera frame.

Layout (one JSON object per line, flushed as it is written so that it can be read during a run)::

    {"kind": "meta", "version": 1, "camera": {...}, "extrinsic": [16 floats], "trajectory": {...}, ...}
    {"kind": "frame", "index": 0, "stamp_ns": 0, "T_world_camera": [16 floats], "T_world_base": [16 floats]}
    ...
    {"kind": "end", "frames": 120}

Transforms are row-major 4x4 (``T_a_b`` maps frame ``b`` into ``a``); the world frame is the odometry
frame (``odom``); ``T_world_camera = T_world_base @ T_base_camera_optical`` exactly (the ``extrinsic``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from actial_ros.errors import ConfigError
from actial_ros.geometry import validate_transform

__all__ = ['PoseRecord', 'PoseRecordWriter', 'RecordedFrame', 'read_pose_record']

RECORD_VERSION = 1

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class RecordedFrame:
    """One published camera frame: its index, header stamp (ns) and exact poses."""

    index: int
    stamp_ns: int
    t_world_camera: FloatArray = field(repr=False)
    t_world_base: FloatArray = field(repr=False)


@dataclass(frozen=True)
class PoseRecord:
    """A read record: the ``meta`` line, the frames in file order, and whether the ``end`` line was seen."""

    meta: dict[str, Any]
    frames: tuple[RecordedFrame, ...]
    complete: bool

    def by_stamp(self) -> dict[int, RecordedFrame]:
        """Frames keyed by header stamp (ns)."""
        return {frame.stamp_ns: frame for frame in self.frames}

    @property
    def extrinsic(self) -> FloatArray:
        """``T_base_camera_optical`` of the run."""
        return np.asarray(self.meta['extrinsic'], dtype=np.float64).reshape(4, 4)

    def __iter__(self) -> Iterator[RecordedFrame]:
        return iter(self.frames)

    def __len__(self) -> int:
        return len(self.frames)


def _flat(transform: npt.ArrayLike, name: str) -> list[float]:
    return [float(v) for v in validate_transform(transform, name=name).reshape(-1)]


class PoseRecordWriter:
    """Writes a pose record; thread-safe. Use as a context manager or call :meth:`close`.

    Args:
        path: the JSONL file (parent folders are created; an existing file is replaced).
        meta: JSON-ready run description; ``kind`` and ``version`` are added.

    Raises:
        ConfigError: the file cannot be opened.
    """

    def __init__(self, path: str | Path, meta: Mapping[str, Any]) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle: IO[str] | None = self.path.open('w', encoding='utf-8')
        except OSError as error:
            raise ConfigError(f'cannot write the pose record {self.path}: {error}') from None
        self._lock = threading.Lock()
        self.frames = 0
        self._write({'kind': 'meta', 'version': RECORD_VERSION, **meta})

    def _write(self, row: Mapping[str, Any]) -> None:
        with self._lock:
            if self._handle is None:
                raise ConfigError(f'pose record {self.path} is closed')
            self._handle.write(json.dumps(row, allow_nan=False) + '\n')
            self._handle.flush()

    def add(self, index: int, stamp_ns: int, t_world_camera: npt.ArrayLike, t_world_base: npt.ArrayLike) -> None:
        """Append one frame.

        Raises:
            PoseError: a malformed transform.
            ConfigError: the writer is closed.
        """
        self._write(
            {
                'kind': 'frame',
                'index': int(index),
                'stamp_ns': int(stamp_ns),
                'T_world_camera': _flat(t_world_camera, 'T_world_camera'),
                'T_world_base': _flat(t_world_base, 'T_world_base'),
            }
        )
        self.frames += 1

    def close(self, *, complete: bool = True) -> None:
        """Write the ``end`` line (when ``complete``) and close the file (idempotent)."""
        if self._handle is None:
            return
        if complete:
            self._write({'kind': 'end', 'frames': self.frames})
        with self._lock:
            handle, self._handle = self._handle, None
        if handle is not None:
            handle.close()

    def __enter__(self) -> PoseRecordWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close(complete=exc_type is None)


def read_pose_record(path: str | Path) -> PoseRecord:
    """Read a pose record, also while it is being written (an incomplete last line is ignored).

    Raises:
        ConfigError: unreadable file, no ``meta`` line, or a malformed complete line.
    """
    try:
        text = Path(path).read_text(encoding='utf-8')
    except OSError as error:
        raise ConfigError(f'cannot read pose record {path}: {error}') from None
    lines = text.split('\n')
    if lines and lines[-1] != '':
        lines = lines[:-1]  # still being written
    meta: dict[str, Any] | None = None
    frames: list[RecordedFrame] = []
    complete = False
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            kind = row['kind']
            if kind == 'meta':
                meta = dict(row)
            elif kind == 'frame':
                frames.append(
                    RecordedFrame(
                        index=int(row['index']),
                        stamp_ns=int(row['stamp_ns']),
                        t_world_camera=np.asarray(row['T_world_camera'], dtype=np.float64).reshape(4, 4),
                        t_world_base=np.asarray(row['T_world_base'], dtype=np.float64).reshape(4, 4),
                    )
                )
            elif kind == 'end':
                complete = True
        except (ValueError, KeyError, TypeError) as error:
            raise ConfigError(f'{path}:{number}: malformed pose record line: {error}') from None
    if meta is None:
        raise ConfigError(f'{path}: no meta line; not a pose record')
    return PoseRecord(meta=meta, frames=tuple(frames), complete=complete)
