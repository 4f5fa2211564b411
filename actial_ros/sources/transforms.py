"""Read NeRF / nerfstudio ``transforms.json`` captures.

Format: a JSON object with ``frames``, a list of ``{"file_path": ..., "transform_matrix": 4x4}``, and
intrinsics at the top level and/or per frame (per-frame values win):

* ``fl_x``, ``fl_y``, ``cx``, ``cy``, ``w``, ``h`` (nerfstudio, pixels); or
* ``camera_angle_x`` (and optionally ``camera_angle_y``), horizontal field of view in radians (the
  original NeRF synthetic scenes): ``fx = 0.5 * w / tan(0.5 * camera_angle_x)``, ``fy`` likewise from
  ``camera_angle_y`` or equal to ``fx``; ``cx = w / 2``, ``cy = h / 2`` unless given.
* Missing ``w``/``h`` come from the image size on disk; when the images on disk have another size than
  ``w`` x ``h`` (downscaled copies), the intrinsics are scaled to it (same aspect ratio within 1 %).

Conventions (``../shared/notes/CONVENTIONS.md``): ``transform_matrix`` is camera-to-world in the
OpenGL/Blender camera convention (x right, y up, z backwards); the ROS/OpenCV optical frame (x right,
y down, z forward) is obtained by negating the y and z columns: ``T_cv = T_gl @ diag(1, -1, -1, 1)``.
``file_path`` is relative to the JSON file's folder; a path without suffix gets ``.png``, ``.jpg`` or
``.jpeg`` (the NeRF synthetic scenes omit it). A frame whose matrix is not a finite rigid transform
(wrong shape, NaN, a scaled or reflected rotation) is skipped as ``bad_pose``; a missing image file as
``missing_image``. Views are sorted by file path.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from actial_ros.errors import CaptureError, ImageError, PoseError
from actial_ros.frame import CameraIntrinsics
from actial_ros.geometry import validate_transform
from actial_ros.sources.base import ImageFileCapture, PosedView, SourceKind
from actial_ros.sources.image_files import image_file_size

__all__ = ['OPENGL_TO_OPENCV', 'TRANSFORMS_FILENAME', 'TransformsCapture', 'opengl_to_opencv']

TRANSFORMS_FILENAME = 'transforms.json'
"""Name of the capture file inside a capture folder."""

OPENGL_TO_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])
"""Right-multiplied onto an OpenGL camera-to-world pose, gives the OpenCV optical camera-to-world pose."""

_SUFFIXES = ('.png', '.jpg', '.jpeg', '.PNG', '.JPG', '.JPEG')
_ASPECT_TOLERANCE = 0.01


def opengl_to_opencv(transform_gl: Any) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Convert an OpenGL/Blender camera-to-world ``(4, 4)`` pose to the OpenCV/ROS optical convention.

    Raises:
        PoseError: not a finite ``(4, 4)`` rigid transform (before or after the conversion).
    """
    matrix = np.asarray(transform_gl, dtype=np.float64)
    if matrix.shape != (4, 4):
        raise PoseError(f'transform_matrix must be 4x4, got shape {matrix.shape}')
    return validate_transform(matrix @ OPENGL_TO_OPENCV, name='transform_matrix')


def _number(values: dict[str, Any], key: str) -> float | None:
    value = values.get(key)
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise CaptureError(f'{key} must be a number, got {value!r}') from None
    if not math.isfinite(number):
        raise CaptureError(f'{key} must be finite, got {value!r}')
    return number


def _resolve_image(base: Path, file_path: str) -> Path | None:
    candidate = base / file_path
    if candidate.is_file():
        return candidate
    if not candidate.suffix:
        for suffix in _SUFFIXES:
            with_suffix = candidate.with_name(candidate.name + suffix)
            if with_suffix.is_file():
                return with_suffix
    return None


class TransformsCapture(ImageFileCapture):
    """A ``transforms.json`` capture: one object. Build with :meth:`open`."""

    kind = SourceKind.TRANSFORMS

    @classmethod
    def open(cls, path: str | Path, *, object_id: str | None = None) -> TransformsCapture:
        """Read a capture.

        Args:
            path: the capture folder (holding ``transforms.json``) or the JSON file itself.
            object_id: the object id; default: the folder's name.

        Raises:
            CaptureError: no or unreadable JSON, no ``frames`` list, a frame without ``file_path`` or
                ``transform_matrix``, no focal length (``fl_x`` or ``camera_angle_x``), images whose
                aspect ratio differs from ``w``/``h``, or no usable frame at all.
        """
        given = Path(path).expanduser().resolve()
        json_path = given / TRANSFORMS_FILENAME if given.is_dir() else given
        base = json_path.parent
        try:
            data = json.loads(json_path.read_text())
        except (OSError, ValueError) as error:
            raise CaptureError(f'cannot read {json_path}: {error}') from error
        if not isinstance(data, dict) or not isinstance(data.get('frames'), list):
            raise CaptureError(f'{json_path}: expected a JSON object with a "frames" list')

        skips: Counter[str] = Counter()
        entries: list[tuple[str, Path, np.ndarray[Any, np.dtype[np.float64]], dict[str, Any]]] = []
        for position, frame in enumerate(data['frames']):
            if not isinstance(frame, dict) or 'file_path' not in frame or 'transform_matrix' not in frame:
                raise CaptureError(f'{json_path}: frame {position} needs "file_path" and "transform_matrix"')
            name = str(frame['file_path'])
            name = name[2:] if name.startswith('./') else name
            try:
                pose = opengl_to_opencv(frame['transform_matrix'])
            except (PoseError, TypeError, ValueError):
                skips['bad_pose'] += 1
                continue
            image_path = _resolve_image(base, name)
            if image_path is None:
                skips['missing_image'] += 1
                continue
            entries.append((str(image_path.relative_to(base)), image_path, pose, {**data, **frame}))
        entries.sort(key=lambda entry: entry[0])

        sizes: dict[tuple[float | None, float | None], tuple[int, int]] = {}
        views: list[PosedView] = []
        paths: list[Path] = []
        for name, image_path, pose, values in entries:
            intrinsics = _intrinsics(values, image_path, sizes, json_path)
            pose.setflags(write=False)
            views.append(PosedView(name=name, t_world_camera=pose, intrinsics=intrinsics, stamp_ns=len(views)))
            paths.append(image_path)
        if not views:
            raise CaptureError(f'{json_path}: no usable frame (skipped: {dict(skips)})')
        return cls(base, object_id or base.name, tuple(views), tuple(paths), skips)


def _intrinsics(
    values: dict[str, Any],
    image_path: Path,
    sizes: dict[tuple[float | None, float | None], tuple[int, int]],
    json_path: Path,
) -> CameraIntrinsics:
    """Intrinsics of one frame for its image size on disk (``sizes`` caches disk sizes per (w, h))."""
    try:
        w, h = _number(values, 'w'), _number(values, 'h')
        key = (w, h)
        if key not in sizes:
            try:
                sizes[key] = image_file_size(image_path)
            except ImageError as error:
                if w is None or h is None:
                    raise CaptureError(f'{json_path}: no w/h and {error}') from error
                sizes[key] = (int(w), int(h))
        width, height = sizes[key]
        w = float(width) if w is None else w
        h = float(height) if h is None else h
        if w <= 0 or h <= 0:
            raise CaptureError(f'{json_path}: invalid image size w={w} h={h}')
        if abs(height / width - h / w) > _ASPECT_TOLERANCE * (h / w):
            raise CaptureError(
                f'{json_path}: images are {width}x{height} but w x h is {w:g}x{h:g} (aspect ratio differs)'
            )
        fx, fy = _number(values, 'fl_x'), _number(values, 'fl_y')
        angle_x, angle_y = _number(values, 'camera_angle_x'), _number(values, 'camera_angle_y')
        if fx is None and angle_x is not None:
            fx = 0.5 * w / math.tan(0.5 * angle_x)
        if fy is None and angle_y is not None:
            fy = 0.5 * h / math.tan(0.5 * angle_y)
        if fx is None:
            fx = fy
        if fx is None:
            raise CaptureError(f'{json_path}: no focal length (fl_x, fl_y or camera_angle_x)')
        fy = fx if fy is None else fy
        cx, cy = _number(values, 'cx'), _number(values, 'cy')
        cx = w / 2.0 if cx is None else cx
        cy = h / 2.0 if cy is None else cy
        sx, sy = width / w, height / h
        return CameraIntrinsics(fx=fx * sx, fy=fy * sy, cx=cx * sx, cy=cy * sy, width=width, height=height)
    except PoseError as error:
        raise CaptureError(f'{json_path}: {error}') from error
