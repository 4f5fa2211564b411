"""Read LLFF captures: ``poses_bounds.npy`` plus an ``images/`` folder.

Layout and conventions (``../shared/notes/CONVENTIONS.md``, section "LLFF captures"):

* ``poses_bounds.npy`` holds an ``(N, 17)`` array: per row a ``3x5`` matrix flattened row-major, then
  the near and far depth bounds. Row ``i`` belongs to the ``i``-th image of ``images/`` in sorted
  file-name order (Python ``sorted`` on the names, as LLFF's own loader does).
* Columns 0-2 of the ``3x5`` matrix are the camera-to-world rotation with axes ordered
  (down, right, back); the OpenCV / ROS optical camera-to-world rotation (x right, y down, z forward)
  is therefore ``[col1, col0, -col2]``. Column 3 is the camera centre in world coordinates (the
  capture's arbitrary length unit). Column 4 is ``(height, width, focal)`` of the ORIGINAL photos.
* Intrinsics for the images actually on disk: ``fx = fy = focal * actual_width / original_width``,
  ``cx = actual_width / 2``, ``cy = actual_height / 2``.
* Image files are the regular files of ``images/`` whose suffix is ``.jpg``, ``.jpeg`` or ``.png``
  (case-insensitive); hidden files (names starting with ``.``, e.g. macOS ``._*`` resource forks),
  folders and other files are ignored.

Only the first image is decoded when a capture is opened (to learn the image size); all images are
assumed to share it, and :meth:`LlffCapture.load_frame` raises :class:`CaptureError` when an image turns
out to have another size. Images are decoded as stored, ignoring any EXIF orientation tag, because
structure-from-motion tools (COLMAP, LLFF's ``imgs2poses``) compute poses on the raw pixel grid.
"""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from actial_ros.errors import CaptureError, ImageError, PoseError
from actial_ros.frame import CameraIntrinsics, Frame
from actial_ros.geometry import validate_transform
from actial_ros.sources.base import PosedCapture, PosedView, SourceKind
from actial_ros.sources.image_files import decode_image_file

__all__ = [
    'IMAGES_DIRNAME',
    'IMAGE_SUFFIXES',
    'POSES_FILENAME',
    'CaptureView',
    'LlffCapture',
    'LlffPosedCapture',
    'llff_rotation_to_opencv',
]

POSES_FILENAME = 'poses_bounds.npy'
"""Name of the poses file inside a capture directory."""

IMAGES_DIRNAME = 'images'
"""Name of the image folder inside a capture directory."""

IMAGE_SUFFIXES: frozenset[str] = frozenset({'.jpg', '.jpeg', '.png'})
"""File suffixes (compared lower-case) counted as images; every other file in ``images/`` is ignored."""

_ASPECT_TOLERANCE = 0.01
"""Largest relative difference between the original and actual aspect ratios (height / width)."""

FloatArray = npt.NDArray[np.float64]
RgbImage = npt.NDArray[np.uint8]


def llff_rotation_to_opencv(rotation_drb: npt.ArrayLike) -> FloatArray:
    """Convert an LLFF camera-to-world rotation to the OpenCV optical convention.

    Args:
        rotation_drb: ``(3, 3)`` camera-to-world rotation whose columns are the camera's
            (down, right, back) axes in world coordinates (columns 0-2 of an LLFF ``3x5`` pose).

    Returns:
        ``(3, 3)`` float64 camera-to-world rotation whose columns are the camera's (right, down,
        forward) axes, i.e. ``[col1, col0, -col2]``. A proper rotation maps to a proper rotation.
    """
    r = np.asarray(rotation_drb, dtype=np.float64)
    return np.stack([r[:, 1], r[:, 0], -r[:, 2]], axis=1)


@dataclass(frozen=True, slots=True)
class CaptureView:
    """One image of a capture with its pose and intrinsics.

    Attributes:
        name: the image file name (e.g. ``'DSC_0007.JPG'``).
        path: absolute path of the image file.
        t_world_camera: ``(4, 4)`` float64 camera-to-world pose of the OpenCV / ROS optical frame
            (x right, y down, z forward), in the capture's world frame and length unit (SfM scale,
            not metres). Read-only array; not used in equality comparisons.
        intrinsics: pinhole intrinsics for the image size on disk (pixels).
        bounds: ``(near, far)`` depth bounds of the row (capture length unit).
    """

    name: str
    path: Path
    t_world_camera: FloatArray = field(repr=False, compare=False)
    intrinsics: CameraIntrinsics
    bounds: tuple[float, float] = (0.0, 0.0)


def _is_image(path: Path) -> bool:
    return path.is_file() and not path.name.startswith('.') and path.suffix.lower() in IMAGE_SUFFIXES


def _load_poses(poses_path: Path, expected_rows: int) -> FloatArray:
    try:
        raw = np.load(poses_path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise CaptureError(f'cannot read {poses_path}: {exc}') from exc
    if not isinstance(raw, np.ndarray) or raw.dtype.kind not in 'fiu':
        raise CaptureError(f'{poses_path}: expected a numeric array, got {getattr(raw, "dtype", type(raw))}')
    if raw.ndim != 2 or raw.shape[1] != 17:
        raise CaptureError(f'{poses_path}: expected shape (N, 17), got {raw.shape}')
    if raw.shape[0] != expected_rows:
        raise CaptureError(
            f'{poses_path}: {raw.shape[0]} pose rows but {expected_rows} images in {IMAGES_DIRNAME}/; '
            'row i must belong to the i-th image in sorted file-name order'
        )
    poses = np.asarray(raw, dtype=np.float64)
    bad_rows = np.flatnonzero(~np.all(np.isfinite(poses), axis=1))
    if bad_rows.size:
        raise CaptureError(f'{poses_path}: non-finite values in rows {bad_rows[:10].tolist()}')
    return poses


class LlffCapture:
    """An LLFF capture directory: posed images of one scene or object.

    Build with :meth:`open`. Views are in sorted file-name order; ``views[i]`` belongs to row ``i`` of
    ``poses_bounds.npy``.
    """

    __slots__ = ('_root', '_views')

    def __init__(self, root: Path, views: tuple[CaptureView, ...]) -> None:
        """Wrap already-validated views; use :meth:`open` to read a directory."""
        self._root = root
        self._views = views

    @classmethod
    def open(cls, path: str | Path) -> LlffCapture:
        """Read and validate a capture directory.

        Decodes only the first image (for the image size); see the module docstring.

        Args:
            path: the capture directory, holding ``poses_bounds.npy`` and ``images/``.

        Returns:
            The capture, one :class:`CaptureView` per image.

        Raises:
            CaptureError: the directory, ``images/`` or ``poses_bounds.npy`` is missing; there are no
                images; the poses array is not ``(N, 17)`` with ``N`` equal to the number of images;
                non-finite values; a rotation that is not a proper rotation (within 1e-4, see
                :func:`actial_ros.geometry.validate_transform`; matrices are used as stored, without
                re-orthonormalisation); a non-positive original size or focal; the first image cannot
                be decoded, or its aspect ratio differs from the original's by more than 1 %.
        """
        root = Path(path).expanduser().resolve()
        if not root.is_dir():
            raise CaptureError(f'capture directory {root} does not exist or is not a directory')
        poses_path = root / POSES_FILENAME
        if not poses_path.is_file():
            raise CaptureError(f'capture {root}: {POSES_FILENAME} is missing')
        images_dir = root / IMAGES_DIRNAME
        if not images_dir.is_dir():
            raise CaptureError(f'capture {root}: the {IMAGES_DIRNAME}/ folder is missing')
        image_paths = sorted((p for p in images_dir.iterdir() if _is_image(p)), key=lambda p: p.name)
        if not image_paths:
            suffixes = ', '.join(sorted(IMAGE_SUFFIXES))
            raise CaptureError(f'capture {root}: no image files ({suffixes}) in {IMAGES_DIRNAME}/')
        poses = _load_poses(poses_path, len(image_paths))

        first = decode_image_file(image_paths[0])
        height, width = int(first.shape[0]), int(first.shape[1])

        views: list[CaptureView] = []
        for image_path, row in zip(image_paths, poses, strict=True):
            matrix = row[:15].reshape(3, 5)
            original_height, original_width, focal = (float(v) for v in matrix[:, 4])
            if original_height <= 0 or original_width <= 0 or focal <= 0:
                raise CaptureError(
                    f'{poses_path}: row for {image_path.name} has non-positive (height, width, focal) '
                    f'({original_height}, {original_width}, {focal})'
                )
            original_aspect = original_height / original_width
            if abs(height / width - original_aspect) > _ASPECT_TOLERANCE * original_aspect:
                raise CaptureError(
                    f'capture {root}: images are {width}x{height} but the poses were computed for '
                    f'{original_width:g}x{original_height:g} photos (aspect ratio differs)'
                )
            transform = np.eye(4)
            transform[:3, :3] = llff_rotation_to_opencv(matrix[:, :3])
            transform[:3, 3] = matrix[:, 3]
            try:
                transform = validate_transform(transform, name=f'pose of {image_path.name}')
            except PoseError as exc:
                raise CaptureError(f'{poses_path}: {exc}') from exc
            transform.setflags(write=False)
            scale = width / original_width
            intrinsics = CameraIntrinsics(
                fx=focal * scale,
                fy=focal * scale,
                cx=width / 2.0,
                cy=height / 2.0,
                width=width,
                height=height,
            )
            views.append(
                CaptureView(
                    name=image_path.name,
                    path=image_path,
                    t_world_camera=transform,
                    intrinsics=intrinsics,
                    bounds=(float(row[15]), float(row[16])),
                )
            )
        return cls(root, tuple(views))

    @property
    def path(self) -> Path:
        """Absolute path of the capture directory."""
        return self._root

    @property
    def name(self) -> str:
        """The capture directory's name (e.g. ``'ethiopian_head'``)."""
        return self._root.name

    @property
    def views(self) -> tuple[CaptureView, ...]:
        """All views, in sorted file-name order (row order of ``poses_bounds.npy``)."""
        return self._views

    def __len__(self) -> int:
        """Number of views (images)."""
        return len(self._views)

    def __iter__(self) -> Iterator[CaptureView]:
        """Iterate over :attr:`views`."""
        return iter(self._views)

    def __repr__(self) -> str:
        return f'LlffCapture({str(self._root)!r}, views={len(self._views)})'

    def load_frame(self, index: int, stamp_ns: int = 0) -> Frame:
        """Decode view ``index`` into a :class:`~actial_ros.frame.Frame`.

        Args:
            index: view index; negative values count from the end, as for sequences.
            stamp_ns: the frame's stamp in integer nanoseconds (captures carry no time).

        Returns:
            A frame with the ``(H, W, 3)`` uint8 RGB image, the view's intrinsics and a copy of its
            optical camera-to-world pose; ``camera_id`` is the capture name, ``name`` the file name.

        Raises:
            IndexError: ``index`` out of range.
            CaptureError: the image file cannot be read or decoded, or its size differs from the size
                the intrinsics were computed for (the first image's size).
        """
        view = self._views[operator.index(index)]
        image = decode_image_file(view.path)
        height, width = int(image.shape[0]), int(image.shape[1])
        if (width, height) != (view.intrinsics.width, view.intrinsics.height):
            raise CaptureError(
                f'image {view.path} is {width}x{height} but the capture expects '
                f"{view.intrinsics.width}x{view.intrinsics.height} (the first image's size)"
            )
        return Frame(
            image=image,
            stamp_ns=int(stamp_ns),
            intrinsics=view.intrinsics,
            t_world_camera=np.array(view.t_world_camera, dtype=np.float64),
            camera_id=self.name,
            name=view.name,
        )


class LlffPosedCapture(PosedCapture):
    """An LLFF capture through :class:`actial_ros.sources.llff.LlffCapture` (the one LLFF reader).

    Raises (from :meth:`open`):
        CaptureError: see :meth:`actial_ros.sources.llff.LlffCapture.open` (a bad pose row is an error
            for the whole capture there).
    """

    kind = SourceKind.LLFF

    def __init__(self, capture: LlffCapture, object_id: str | None = None) -> None:
        self._capture = capture
        self.object_id = object_id or capture.name
        self.path = capture.path
        self.skips = Counter()
        self.views = tuple(
            PosedView(name=view.name, t_world_camera=view.t_world_camera, intrinsics=view.intrinsics, stamp_ns=i)
            for i, view in enumerate(capture.views)
        )

    @classmethod
    def open(cls, path: str | Path, *, object_id: str | None = None) -> LlffPosedCapture:
        """Open an LLFF capture directory (``poses_bounds.npy`` + ``images/``)."""
        return cls(LlffCapture.open(path), object_id)

    def load_image(self, index: int) -> RgbImage:
        """Decode view ``index`` (raises :class:`ImageError` for an unreadable or resized image)."""
        try:
            return self._capture.load_frame(index).image
        except CaptureError as error:
            raise ImageError(str(error)) from None

    def image_path(self, index: int) -> Path:
        """The image file of view ``index`` (raises ``IndexError`` out of range)."""
        return self._capture.views[index].path
