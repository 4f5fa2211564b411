"""What kind of source a path is (LLFF, COLMAP, ``transforms.json``, rosbag2), from its files alone.

Above the concrete adapters (it asks each for its marker files) and below :mod:`actial_ros.sources.objects`
and :mod:`actial_ros.sources.discovery`, which use it.
"""

from __future__ import annotations

from pathlib import Path

from actial_ros.bags.files import is_rosbag
from actial_ros.sources.base import SourceKind
from actial_ros.sources.colmap import find_model_dir
from actial_ros.sources.llff import IMAGES_DIRNAME, POSES_FILENAME
from actial_ros.sources.transforms import TRANSFORMS_FILENAME

__all__ = ['detect_capture_kind']


def detect_capture_kind(path: str | Path) -> SourceKind | None:
    """The kind of capture at ``path``, or ``None`` when it is none of them.

    Checked in this order: LLFF (``poses_bounds.npy`` and ``images/``), ``transforms.json``, COLMAP
    (``sparse/0``, ``sparse`` or the folder itself holding ``cameras.bin``/``cameras.txt``), rosbag (a
    ``metadata.yaml``, a ``.mcap`` file, or a split recording: sub-folders that are bags).
    """

    root = Path(path)
    if root.is_file():
        return SourceKind.ROSBAG if is_rosbag(root) else None
    if not root.is_dir():
        return None
    if (root / POSES_FILENAME).is_file() and (root / IMAGES_DIRNAME).is_dir():
        return SourceKind.LLFF
    if (root / TRANSFORMS_FILENAME).is_file():
        return SourceKind.TRANSFORMS
    if find_model_dir(root) is not None:
        return SourceKind.COLMAP
    if is_rosbag(root):
        return SourceKind.ROSBAG
    return None
