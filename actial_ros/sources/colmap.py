"""Read COLMAP models (binary or text, ``sparse/0`` as MVImgNet ships them per object) with pycolmap.

Layout: an object folder holds ``images/`` and ``sparse/0/`` (``cameras``, ``images``, ``points3D``,
and with COLMAP >= 3.12 also ``rigs`` and ``frames``, each ``.bin`` or ``.txt``). The model folder is
searched as ``PATH/sparse/0``, ``PATH/sparse``, then ``PATH`` itself; the image folder as
``PATH/images``, then the ``images/`` beside ``sparse/``.

Conventions (``../shared/notes/CONVENTIONS.md``): COLMAP stores ``cam_from_world`` (world-to-camera,
quaternion + translation) in the OpenCV camera frame (x right, y down, z forward), which is the ROS
optical frame, so the camera-to-world pose is its inverse, with no axis change. Intrinsics are the
model's ``fx, fy, cx, cy`` (the first focal for one-focal models), scaled to the image size on disk
when the images were resized after reconstruction (same aspect ratio within 1 %); distortion
parameters are ignored (the images are used as stored). Images without a pose (not registered) and
images missing on disk are skipped and counted; a pose that is not finite or whose quaternion is not
of unit norm within 10 % (a zero quaternion, which pycolmap would turn into the identity) is skipped as
``bad_pose``.

Requires ``pycolmap`` (``pip install actial_ros[build]``); imported when a model is opened.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from actial_ros.errors import CaptureError, ImageError, PoseError
from actial_ros.frame import CameraIntrinsics
from actial_ros.geometry import invert_transform, transform_from_position_quaternion
from actial_ros.sources.base import ImageFileCapture, PosedView, SourceKind, as_capture_error
from actial_ros.sources.image_files import image_file_size

__all__ = ['MODEL_FILES', 'ColmapCapture', 'find_images_dir', 'find_model_dir']

MODEL_FILES: tuple[str, ...] = ('cameras.bin', 'cameras.txt')
"""A folder holding one of these (and the matching ``images`` file) is a COLMAP model."""

_IMAGE_FILES = {'cameras.bin': 'images.bin', 'cameras.txt': 'images.txt'}
_ASPECT_TOLERANCE = 0.01


def find_model_dir(root: str | Path) -> Path | None:
    """The COLMAP model folder of ``root`` (``sparse/0``, ``sparse`` or ``root``), or ``None``."""
    base = Path(root)
    for candidate in (base / 'sparse' / '0', base / 'sparse', base):
        for cameras, images in _IMAGE_FILES.items():
            if (candidate / cameras).is_file() and (candidate / images).is_file():
                return candidate
    return None


def find_images_dir(root: str | Path, model_dir: str | Path) -> Path | None:
    """The image folder of a COLMAP object: ``root/images``, else ``images/`` beside ``sparse/``."""
    base, model = Path(root), Path(model_dir)
    for candidate in (base / 'images', model.parent.parent / 'images', model.parent / 'images'):
        if candidate.is_dir():
            return candidate
    return None


class ColmapCapture(ImageFileCapture):
    """A COLMAP model plus its images: one object. Build with :meth:`open`."""

    kind = SourceKind.COLMAP

    @classmethod
    def open(
        cls, path: str | Path, *, object_id: str | None = None, images_dir: str | Path | None = None
    ) -> ColmapCapture:
        """Read a COLMAP model (binary or text) and list its posed images.

        Args:
            path: the object folder (holding ``sparse/0`` or ``sparse``) or the model folder itself.
            object_id: the object id; default: the object folder's name.
            images_dir: the image folder; default: found as described in the module docstring.

        Raises:
            CaptureError: no model or image folder, a model pycolmap cannot read, a camera whose image
                size on disk has another aspect ratio, or no usable view at all.
        """
        import pycolmap

        root = Path(path).expanduser().resolve()
        model_dir = find_model_dir(root)
        if model_dir is None:
            raise CaptureError(f'{root}: no COLMAP model (cameras.bin/.txt + images.bin/.txt in sparse/0, sparse or .)')
        image_root = Path(images_dir) if images_dir is not None else find_images_dir(root, model_dir)
        if image_root is None or not image_root.is_dir():
            raise CaptureError(f'{root}: no images/ folder for the COLMAP model in {model_dir}')
        try:
            reconstruction = pycolmap.Reconstruction(str(model_dir))
            images = sorted(reconstruction.images.values(), key=lambda image: str(image.name))
            cameras = dict(reconstruction.cameras)
        except Exception as error:  # pycolmap raises ValueError, RuntimeError, even MemoryError on corrupt files
            raise as_capture_error(error, model_dir) from error
        if root.name in ('0', 'sparse') and model_dir == root:
            default_id = root.parent.parent.name if root.name == '0' else root.parent.name
        else:
            default_id = root.name

        skips: Counter[str] = Counter()
        scales: dict[int, tuple[float, float, int, int]] = {}
        views: list[PosedView] = []
        paths: list[Path] = []
        for image in images:
            name = str(image.name)
            if not image.has_pose:
                skips['unregistered'] += 1
                continue
            file_path = image_root / name
            if not file_path.is_file():
                skips['missing_image'] += 1
                continue
            try:
                pose = image.cam_from_world()
                # Through the core's quaternion rule (unit norm within 10 %, then normalised): pycolmap turns
                # a zero quaternion into an identity matrix, which would be a silently wrong pose.
                cam_from_world = transform_from_position_quaternion(
                    np.asarray(pose.translation, dtype=np.float64), np.asarray(pose.rotation.quat, dtype=np.float64)
                )
                t_world_camera = invert_transform(cam_from_world)
            except PoseError:
                skips['bad_pose'] += 1
                continue
            camera = cameras.get(int(image.camera_id))
            if camera is None:
                raise CaptureError(f'{model_dir}: image {name} refers to a missing camera {image.camera_id}')
            camera_id = int(image.camera_id)
            if camera_id not in scales:
                scales[camera_id] = _camera_scale(camera, file_path, model_dir)
            sx, sy, width, height = scales[camera_id]
            try:
                intrinsics = CameraIntrinsics(
                    fx=float(camera.focal_length_x) * sx,
                    fy=float(camera.focal_length_y) * sy,
                    cx=float(camera.principal_point_x) * sx,
                    cy=float(camera.principal_point_y) * sy,
                    width=width,
                    height=height,
                )
            except PoseError:
                skips['bad_intrinsics'] += 1
                continue
            t_world_camera.setflags(write=False)
            views.append(
                PosedView(name=name, t_world_camera=t_world_camera, intrinsics=intrinsics, stamp_ns=len(views))
            )
            paths.append(file_path)
        if not views:
            raise CaptureError(f'{root}: the COLMAP model has no usable posed image (skipped: {dict(skips)})')
        return cls(root, object_id or default_id, tuple(views), tuple(paths), skips)


def _camera_scale(camera: object, first_image: Path, model_dir: Path) -> tuple[float, float, int, int]:
    """``(sx, sy, width, height)``: scale from the model's camera size to the size on disk."""
    model_width, model_height = int(camera.width), int(camera.height)  # type: ignore[attr-defined]
    try:
        width, height = image_file_size(first_image)
    except ImageError:
        return 1.0, 1.0, model_width, model_height
    if model_width <= 0 or model_height <= 0:
        raise CaptureError(f'{model_dir}: camera has invalid size {model_width}x{model_height}')
    model_aspect = model_height / model_width
    if abs(height / width - model_aspect) > _ASPECT_TOLERANCE * model_aspect:
        raise CaptureError(
            f'{model_dir}: images are {width}x{height} but the camera model is {model_width}x{model_height} '
            '(aspect ratio differs)'
        )
    return width / model_width, height / model_height, width, height
