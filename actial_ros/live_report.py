"""The HTML report of a running node: its latest pairs' answers with both frames, in bounded memory (ROS-free).

A bag replay or a capture can show its frames again later (:func:`actial_ros.demo.frame_loader`); a live
camera or the simulator cannot, so the node keeps what its report needs while it runs: for each of the
latest ``max_pairs`` answered pairs, its viewpoint answer records and both frames as thumbnails of at most
:data:`~actial_ros.report.THUMBNAIL_WIDTH` x 240 pixels, JPEG-encoded (quality :data:`THUMBNAIL_QUALITY`).
Older pairs are dropped (counted in :attr:`LiveReport.pairs_dropped`), and a frame's thumbnail goes with the
last kept pair that shows it.

Memory bound: at most ``2 * max_pairs`` thumbnails; each is a JPEG of at most 320 x 240 x 3 = 230,400 pixel
bytes, in practice 5-25 kB (:attr:`LiveReport.bytes_held` says how much is held), plus the records (about
2 kB a question). The default of the node (``report_max_pairs`` 200) holds about 2-10 MB.

The page is :func:`actial_ros.report.render_report`'s: one file, no external resource. Frames without a
name of their own (a live topic's) are named ``CAMERA@STAMP_NS``, which the page shows as
``CAMERA at SECONDS s``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
import numpy.typing as npt

from actial_ros.frame import Frame, Pair
from actial_ros.imaging import decode_jpeg, encode_jpeg, resize_max
from actial_ros.records import AnswerRecord, AnswerRow
from actial_ros.report import THUMBNAIL_WIDTH, write_report

__all__ = ['THUMBNAIL_HEIGHT', 'THUMBNAIL_QUALITY', 'LiveReport', 'frame_name']

THUMBNAIL_HEIGHT = 240
"""Largest thumbnail height (pixels) kept per frame."""
THUMBNAIL_QUALITY = 85
"""JPEG quality of the kept thumbnails (the page re-encodes them at its own quality)."""


def frame_name(frame: Frame) -> str:
    """The frame's name on the page: its own (a capture file, a bag's view) or ``CAMERA@STAMP_NS``."""
    return frame.name or f'{frame.camera_id}@{frame.stamp_ns}'


class LiveReport:
    """Answers and thumbnails of the latest ``max_pairs`` pairs, written as one HTML page on request.

    Thread-safe: :meth:`add` is called from the engine's worker threads, :meth:`write` from the node.

    Args:
        max_pairs: pairs kept (the oldest is dropped beyond it); at least 1.

    Raises:
        ValueError: ``max_pairs`` < 1.
    """

    def __init__(self, *, max_pairs: int) -> None:
        if max_pairs < 1:
            raise ValueError(f'max_pairs must be at least 1, got {max_pairs}')
        self._max_pairs = max_pairs
        self._lock = threading.Lock()
        self._pairs: OrderedDict[int, tuple[tuple[str, str], tuple[str, str], list[AnswerRow]]] = OrderedDict()
        self._thumbnails: dict[tuple[str, str], bytes] = {}
        self._dropped = 0

    @property
    def pairs_held(self) -> int:
        """Pairs whose answers and frames are held."""
        with self._lock:
            return len(self._pairs)

    @property
    def pairs_dropped(self) -> int:
        """Pairs dropped to keep at most ``max_pairs``."""
        with self._lock:
            return self._dropped

    @property
    def bytes_held(self) -> int:
        """Bytes of the JPEG thumbnails held."""
        with self._lock:
            return sum(len(data) for data in self._thumbnails.values())

    def add(self, pair: Pair, record: AnswerRecord) -> None:
        """Keep one viewpoint answer of ``pair`` (and, on the pair's first answer, both frames' thumbnails).

        Raises:
            ImageError: a frame's image cannot be encoded (not ``(H, W, 3)`` uint8).
        """
        keys = ((pair.frame_1.camera_id, frame_name(pair.frame_1)), (pair.frame_2.camera_id, frame_name(pair.frame_2)))
        row = AnswerRow(record, image_1=keys[0][1], image_2=keys[1][1])
        with self._lock:
            held = self._pairs.get(pair.pair_id)
            if held is not None:
                held[2].append(row)
                return
            if self._evicted(pair.pair_id):  # a late answer of a pair already dropped: it stays dropped
                return
            missing = [
                (key, frame)
                for key, frame in zip(keys, (pair.frame_1, pair.frame_2), strict=True)
                if key not in self._thumbnails
            ]
        # Encoding (a few ms) outside the lock; another worker encoding the same frame meanwhile only repeats work.
        encoded = {key: _thumbnail(frame.image) for key, frame in missing}
        with self._lock:
            held = self._pairs.get(pair.pair_id)
            if held is not None:  # another worker added this pair meanwhile
                held[2].append(row)
                return
            if self._evicted(pair.pair_id):
                return
            self._thumbnails.update(encoded)
            for key, frame in zip(keys, (pair.frame_1, pair.frame_2), strict=True):
                if key not in self._thumbnails:  # dropped with an older pair since the first look (rare)
                    self._thumbnails[key] = _thumbnail(frame.image)
            self._pairs[pair.pair_id] = (keys[0], keys[1], [row])
            while len(self._pairs) > self._max_pairs:
                self._pairs.popitem(last=False)
                self._dropped += 1
            shown = {key for first, second, _ in self._pairs.values() for key in (first, second)}
            for key in [key for key in self._thumbnails if key not in shown]:
                del self._thumbnails[key]

    def _evicted(self, pair_id: int) -> bool:
        """Whether ``pair_id`` (ids grow with time) is older than every held pair while the report is full, i.e.
        was (or would at once be) dropped. Call with the lock held."""
        return len(self._pairs) >= self._max_pairs and pair_id < min(self._pairs)

    def rows(self) -> list[AnswerRow]:
        """The held answer rows, oldest pair first (records with ``image_1``/``image_2``, the frames' names)."""
        with self._lock:
            return [row for _, _, rows in self._pairs.values() for row in rows]

    def load_frame(self, camera: str, name: str) -> npt.NDArray[np.uint8] | None:
        """A held frame's thumbnail as ``(H, W, 3)`` uint8 RGB, or ``None`` when it is not held."""
        with self._lock:
            data = self._thumbnails.get((camera, name))
        return None if data is None else decode_jpeg(data)

    def write(self, path: str | Path, *, title: str = 'actial_ros spatial_reasoner') -> Path:
        """Write the page to ``path`` atomically (:func:`actial_ros.report.write_report`); returns the path.

        Raises:
            OSError: the file cannot be written.
        """
        rows = self.rows()
        dropped = self.pairs_dropped
        if dropped:
            title = f'{title} (the latest {self._max_pairs} pairs; {dropped} older pairs not kept)'
        return write_report(path, rows, load_frame=self.load_frame, title=title)


def _thumbnail(image: npt.NDArray[np.uint8]) -> bytes:
    return encode_jpeg(resize_max(image, THUMBNAIL_WIDTH, THUMBNAIL_HEIGHT), THUMBNAIL_QUALITY)
