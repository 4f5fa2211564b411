"""A directory of many objects, one capture per object (MVImgNet style), walked as one source.

MVImgNet ships ``<category>/<object>/images/`` + ``<category>/<object>/sparse/0/`` (COLMAP); any capture
kind works here: every folder that :func:`actial_ros.sources.base.detect_capture_kind` recognises (LLFF,
``transforms.json``, COLMAP, rosbag2 bag or split recording) is one object, and the walk does not
descend into it. Object ids are the folder paths relative to the root, with ``/`` separators (e.g.
``7/0a1b2c3d``), so they stay unique; the first path component is the category in MVImgNet.

Folders are visited in sorted name order (deterministic), hidden folders (``.*``) are ignored, and the
walk stops ``max_depth`` levels below the root. Bare ``.mcap`` files in a folder that is not itself a
recording are objects too (id: path without the suffix).
"""

from __future__ import annotations

from pathlib import Path

from actial_ros.errors import CaptureError
from actial_ros.sources.base import DEFAULT_SOURCE_OPTIONS, CaptureRef, SourceKind, SourceOptions
from actial_ros.sources.detection import detect_capture_kind

__all__ = ['DEFAULT_MAX_DEPTH', 'find_objects']

DEFAULT_MAX_DEPTH = 4
"""How many folder levels below the root are searched for captures."""


def find_objects(
    root: str | Path,
    *,
    source: str | None = None,
    options: SourceOptions = DEFAULT_SOURCE_OPTIONS,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> tuple[list[CaptureRef], list[tuple[str, str]]]:
    """Every capture below ``root``, one per object.

    Args:
        root: the folder to walk.
        source: the ``source`` text recorded in the references (default ``objects:ROOT``).
        options: adapter options passed on to every reference.
        max_depth: folder levels searched below ``root``.

    Returns:
        ``(refs, rejected)``: references sorted by object id, and ``(path, reason)`` for folders that
        hold an ``images/`` folder but no recognisable poses (reported, not fatal).

    Raises:
        CaptureError: ``root`` is not a folder, or holds no capture at all.
    """
    base = Path(root)
    if not base.is_dir():
        raise CaptureError(f'objects source {base} is not a folder')
    text = source or f'objects:{root}'
    refs: list[CaptureRef] = []
    rejected: list[tuple[str, str]] = []

    def visit(folder: Path, depth: int) -> None:
        kind = detect_capture_kind(folder) if folder != base else None
        if kind is not None:
            object_id = folder.relative_to(base).as_posix()
            refs.append(CaptureRef(kind=kind, path=str(folder), object_id=object_id, source=text, options=options))
            return
        if (folder / 'images').is_dir() and folder != base:
            rejected.append((str(folder), 'images/ without poses (no poses_bounds.npy, transforms.json or sparse/)'))
        if depth >= max_depth:
            return
        try:
            children = sorted(folder.iterdir(), key=lambda p: p.name)
        except OSError as error:
            rejected.append((str(folder), f'cannot list: {error}'))
            return
        for child in children:
            if child.name.startswith('.'):
                continue
            if child.is_dir():
                visit(child, depth + 1)
            elif child.suffix == '.mcap' and detect_capture_kind(child) is SourceKind.ROSBAG:
                object_id = child.relative_to(base).with_suffix('').as_posix()
                refs.append(
                    CaptureRef(
                        kind=SourceKind.ROSBAG, path=str(child), object_id=object_id, source=text, options=options
                    )
                )

    if base_kind := detect_capture_kind(base):
        raise CaptureError(
            f'objects source {base} is itself a {base_kind.value} capture; use --source {base_kind.value}:{root}'
        )
    visit(base, 0)
    if not refs:
        raise CaptureError(f'objects source {base}: no capture found within {max_depth} folder levels')
    refs.sort(key=lambda ref: ref.object_id)
    return refs, rejected
