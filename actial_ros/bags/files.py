"""The files of a rosbag2 recording: which paths are a recording, its parts, and their storage files.

A recording at ``PATH`` (:func:`bag_parts`, :func:`is_rosbag`) is

* a rosbag2 folder (``metadata.yaml`` + ``.db3`` or ``.mcap``), sqlite3 or mcap storage;
* a bare ``.mcap`` or ``.db3`` file (a folder without ``metadata.yaml`` holding one of them);
* a split recording: a folder whose sub-folders (sorted by name) are the parts of one recording, as
  :class:`~actial_ros.bags.writer.SplitBagWriter` and the ``bag_recorder`` node write them (``bag_0000/``,
  ``bag_0001/``, ...). A part without ``metadata.yaml`` (the recorder was killed) is read through its
  ``.mcap`` (else ``.db3``) file.

:func:`storage_files` lists the storage files of one part (what :func:`actial_ros.bags.reading.open_part`
salvages when a part is cut).
"""

from __future__ import annotations

import re
from contextlib import suppress
from pathlib import Path

from actial_ros.bags.recording import RECORDING_FILENAME

__all__ = ['bag_parts', 'is_rosbag', 'storage_files']


def _is_bag_dir(path: Path) -> bool:
    return (path / 'metadata.yaml').is_file()


_STORAGE_SUFFIXES = ('.mcap', '.db3')


def _single_storage_file(path: Path) -> Path | None:
    """The folder's single ``.mcap`` file, else its single ``.db3`` file (no metadata.yaml: a killed recorder)."""
    for suffix in _STORAGE_SUFFIXES:
        files = sorted(path.glob(f'*{suffix}'))
        if files:
            return files[0] if len(files) == 1 else None
    return None


def _part_of(path: Path) -> Path | None:
    """The readable path of one part folder: the folder with metadata, else its single ``.mcap`` or ``.db3``."""
    if _is_bag_dir(path):
        return path
    return _single_storage_file(path)


_PART_NAME = re.compile(r'^(?P<prefix>.+)_(?P<index>\d{4})$')


def bag_parts(path: str | Path) -> list[Path]:
    """The paths to read, in order, for the recording at ``path`` (see the module docstring).

    A folder is a split recording when it holds a ``recording.json`` or when all its bag sub-folders are
    named ``PREFIX_NNNN`` with one common prefix (a folder of unrelated bags is not one recording).
    Returns an empty list when ``path`` is not a recording.
    """
    root = Path(path)
    if root.is_file():
        return [root] if root.suffix in _STORAGE_SUFFIXES else []
    if not root.is_dir():
        return []
    if _is_bag_dir(root):
        return [root]
    children = [child for child in sorted(root.iterdir()) if child.is_dir() and not child.name.startswith('.')]
    parts = [(child, _part_of(child)) for child in children]
    found = [(child, part) for child, part in parts if part is not None]
    if found:
        matches = [_PART_NAME.match(child.name) for child, _ in found]
        prefixes = {match.group('prefix') for match in matches if match is not None}
        if (root / RECORDING_FILENAME).is_file() or (all(matches) and len(prefixes) == 1):
            return [part for _, part in found]
        return []
    single = _single_storage_file(root)
    return [single] if single is not None else []


def is_rosbag(path: str | Path) -> bool:
    """True when ``path`` is a rosbag2 folder, a ``.mcap`` or ``.db3`` file, or a split recording."""
    return bool(bag_parts(path))


def storage_files(part: str | Path) -> list[Path]:
    """The storage files of a part: the file itself, else the folder's files named in its ``metadata.yaml``
    (those that exist), else its ``.mcap`` files, else its ``.db3`` files (sorted by name)."""
    path = Path(part)
    if path.is_file():
        return [path]
    if not path.is_dir():
        return []
    named: list[Path] = []
    with suppress(Exception):  # an unreadable metadata.yaml: look at the files instead
        import yaml

        info = yaml.safe_load((path / 'metadata.yaml').read_text())['rosbag2_bagfile_information']
        named = [path / Path(str(name)).name for name in info['relative_file_paths']]
    named = [file for file in named if file.is_file()]
    if named:
        return named
    return sorted(path.glob('*.mcap')) or sorted(path.glob('*.db3'))
