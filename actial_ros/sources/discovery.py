"""Opening and listing captures: :func:`open_capture` (a :class:`~actial_ros.sources.base.CaptureRef` to its
adapter), :func:`parse_source` (``KIND:PATH``), :func:`discover` (the captures of a source, objects
directories expanded), :func:`check_unique_ids`. The top of the sources package: it dispatches to every
adapter; nothing in the package imports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from actial_ros.errors import CaptureError, ConfigError
from actial_ros.sources.base import DEFAULT_SOURCE_OPTIONS, CaptureRef, PosedCapture, SourceKind, SourceOptions
from actial_ros.sources.detection import detect_capture_kind
from actial_ros.sources.llff import LlffPosedCapture

__all__ = ['check_unique_ids', 'discover', 'open_capture', 'parse_source']


def open_capture(ref: CaptureRef) -> PosedCapture:
    """Open the capture a :class:`CaptureRef` names.

    Raises:
        CaptureError: the capture is missing, unreadable or has no usable view.
        ConfigError: ``ref.kind`` is ``objects`` (a directory of captures is not one capture).
    """
    kind = SourceKind(ref.kind)
    if kind is SourceKind.LLFF:
        return LlffPosedCapture.open(ref.path, object_id=ref.object_id)
    if kind is SourceKind.COLMAP:
        from actial_ros.sources.colmap import ColmapCapture

        return ColmapCapture.open(ref.path, object_id=ref.object_id)
    if kind is SourceKind.TRANSFORMS:
        from actial_ros.sources.transforms import TransformsCapture

        return TransformsCapture.open(ref.path, object_id=ref.object_id)
    if kind is SourceKind.ROSBAG:
        from actial_ros.sources.rosbag import RosbagCapture

        return RosbagCapture.open(ref.path, object_id=ref.object_id, options=ref.options)
    raise ConfigError(f'{kind.value} is a directory of captures, not one capture; use discover()')


def parse_source(text: str) -> tuple[SourceKind, str]:
    """Split ``KIND:PATH`` (KIND one of :class:`SourceKind`) into its parts.

    Raises:
        ConfigError: no ``:``, an unknown kind or an empty path.
    """
    kind_text, sep, path = text.partition(':')
    if not sep or not path:
        raise ConfigError(f'a source is KIND:PATH, got {text!r}')
    try:
        kind = SourceKind(kind_text.strip().lower())
    except ValueError:
        known = ', '.join(k.value for k in SourceKind)
        raise ConfigError(f'unknown source kind {kind_text!r} in {text!r}; known: {known}') from None
    return kind, path


def discover(
    text: str, options: SourceOptions = DEFAULT_SOURCE_OPTIONS
) -> tuple[list[CaptureRef], list[tuple[str, str]]]:
    """The captures of one ``KIND:PATH`` source.

    A single-capture kind gives one reference whose object id is the capture's folder name (a bag file's
    stem); ``objects`` walks the folder (:func:`actial_ros.sources.objects.find_objects`).

    Returns:
        ``(refs, rejected)``: references in a deterministic order, and ``(path, reason)`` for folders of
        an ``objects`` source that look like captures but cannot be used.

    Raises:
        ConfigError: a malformed source text.
        CaptureError: the path does not exist, or a single capture is not of the named kind.
    """
    kind, path = parse_source(text)
    root = Path(path)
    if not root.exists():
        raise CaptureError(f'source {text!r}: {root} does not exist')
    if kind is SourceKind.OBJECTS:
        from actial_ros.sources.objects import find_objects

        return find_objects(root, source=text, options=options)
    detected = detect_capture_kind(root)
    if detected is not kind:
        found = detected.value if detected is not None else 'nothing recognisable'
        raise CaptureError(f'source {text!r}: {root} is not a {kind.value} capture (found {found})')
    object_id = root.stem if root.is_file() else root.resolve().name
    return [CaptureRef(kind=kind, path=str(root), object_id=object_id, source=text, options=options)], []


def check_unique_ids(refs: Sequence[CaptureRef]) -> None:
    """Raise :class:`ConfigError` when two captures share an object id (the split is by object id)."""
    seen: dict[str, CaptureRef] = {}
    for ref in refs:
        other = seen.get(ref.object_id)
        if other is not None:
            raise ConfigError(
                f'object id {ref.object_id!r} is used by {other.path} and {ref.path}; '
                'object ids must be unique (rename a folder or build them separately)'
            )
        seen[ref.object_id] = ref
