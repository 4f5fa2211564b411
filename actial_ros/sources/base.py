"""The source adapter interface: one posed capture (one object) whose images load on demand.

Every source kind (LLFF captures, COLMAP models, NeRF/nerfstudio ``transforms.json`` captures, rosbag2
recordings, and directories of many such objects) is read into a :class:`PosedCapture`:

* :attr:`PosedCapture.views`: one :class:`PosedView` per usable image, with its name, its
  camera-to-world pose of the ROS/OpenCV optical frame (x right, y down, z forward;
  ``../shared/notes/CONVENTIONS.md``) as a ``(4, 4)`` float64 array, and its intrinsics. Views are
  read when the capture is opened (poses only, cheap); images are decoded only when asked for.
* :meth:`PosedCapture.iter_images`: decode the images of some views (``(H, W, 3)`` uint8 RGB), one
  result per requested index, an :class:`~actial_ros.errors.ImageError` in place of an image that
  cannot be read, so that callers count it and go on.
* :meth:`PosedCapture.iter_jpeg`: the images of some views as JPEG bytes that fit a size limit (what the
  dataset builder stores): a JPEG file already within the limit as it is, a larger JPEG decoded at
  reduced scale (:func:`fit_image_file`), anything else decoded, resized and encoded.
* :meth:`PosedCapture.frames`: the views as core :class:`~actial_ros.frame.Frame` objects.
* :attr:`PosedCapture.skips`: views dropped while opening, counted by reason (``bad_pose``,
  ``missing_image``, ``no_odometry``, ...): never a silently wrong pose.

A :class:`CaptureRef` names one capture (kind, path, object id, options) and is what crosses process
boundaries; :func:`actial_ros.sources.discovery.open_capture` opens it and
:func:`actial_ros.sources.discovery.discover` lists the captures of a ``KIND:PATH`` source. This module
imports no concrete source: the adapters (``llff``, ``colmap``, ``transforms``, ``rosbag``, ``objects``)
build on it, and ``detection`` and ``discovery`` sit above them. Image files are read and fitted by
:mod:`actial_ros.sources.image_files`.
"""

from __future__ import annotations

import math
import operator
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from actial_ros.bags.camera_specs import BagCamera
from actial_ros.enums import StrEnum
from actial_ros.errors import ActialError, CaptureError, ConfigError, ImageError
from actial_ros.frame import CameraIntrinsics, Frame
from actial_ros.imaging import MAX_MODEL_HEIGHT, MAX_MODEL_WIDTH
from actial_ros.pairing import DEFAULT_MAX_EXTRAPOLATION_S, DEFAULT_MAX_INTERPOLATION_GAP_S, DEFAULT_TIME_RESET_S
from actial_ros.sources.image_files import check_fit_arguments, fit_image, fit_image_file, read_image_file

__all__ = [
    'DEFAULT_SOURCE_OPTIONS',
    'CaptureRef',
    'ImageFileCapture',
    'PosedCapture',
    'PosedView',
    'SourceKind',
    'SourceOptions',
    'as_capture_error',
]

FloatArray = npt.NDArray[np.float64]


RgbImage = npt.NDArray[np.uint8]


class SourceKind(StrEnum):
    """The kinds of source the dataset builder reads (``KIND`` of ``--source KIND:PATH``)."""

    LLFF = 'llff'
    """``poses_bounds.npy`` + ``images/`` (:mod:`actial_ros.sources.llff`)."""
    COLMAP = 'colmap'
    """A COLMAP model (``sparse/0``, binary or text) + ``images/`` (:mod:`actial_ros.sources.colmap`)."""
    TRANSFORMS = 'transforms'
    """NeRF/nerfstudio ``transforms.json`` (:mod:`actial_ros.sources.transforms`)."""
    ROSBAG = 'rosbag'
    """A rosbag2 bag (sqlite3 or mcap), a bare ``.mcap`` file, or a split recording
    (:mod:`actial_ros.sources.rosbag`)."""
    OBJECTS = 'objects'
    """A directory of many captures, one per object, of any of the kinds above
    (:mod:`actial_ros.sources.objects`)."""


@dataclass(frozen=True, slots=True)
class SourceOptions:
    """Options of the source adapters that are not part of a capture's files.

    Attributes:
        image_topic, camera_info_topic, odometry_topic: rosbag topics; empty: found by message type
            (exactly one topic of the type must exist).
        extrinsic: ``T_base_camera_optical`` as 16 row-major floats; ``None``: the extrinsic stored by the
            recorder in ``recording.json`` when there is one, else the default forward-looking camera at
            the base origin (:func:`actial_ros.geometry.base_to_optical_extrinsic`).
        require_camera_info: a bag without a usable CameraInfo for an image is an error (``True``) or
            gives views without intrinsics (``False``).
        max_interpolation_gap_s, max_extrapolation_s: odometry matching by image stamp, as
            :class:`actial_ros.pairing.OdometryMatchPolicy` (seconds).
        time_reset_s: odometry stamps that jump back by more than this (seconds) make a bag an error
            (two timelines in one recording would give wrong relative poses).
        cameras: several cameras of one bag (:class:`~actial_ros.bags.camera_specs.BagCamera`): either all
            with an image topic (these cameras are read), or all without (extrinsic overrides of the cameras
            ``recording.json`` lists). Empty: the cameras of ``recording.json`` when it lists several, else
            one camera chosen by ``image_topic`` or by type. Excludes ``image_topic``, ``camera_info_topic``
            and ``extrinsic``.
    """

    # The fields with a help are also flags and YAML keys of the dataset builder (``actial-ros-train
    # build-viewpoint``: ``key`` names them; actial_ros.training.config reads this metadata, plain data here).
    image_topic: str = field(
        default='', metadata={'help': 'image topic (default: the only Image/CompressedImage)', 'key': 'bag_image_topic'}
    )
    camera_info_topic: str = field(
        default='', metadata={'help': 'CameraInfo topic (default: the only one)', 'key': 'bag_camera_info_topic'}
    )
    odometry_topic: str = field(
        default='', metadata={'help': 'Odometry topic (default: the only one)', 'key': 'bag_odometry_topic'}
    )
    extrinsic: tuple[float, ...] | None = None
    require_camera_info: bool = field(
        default=True,
        metadata={'help': 'accept bags without CameraInfo', 'key': 'bag_no_camera_info_ok', 'parse': operator.not_},
    )
    max_interpolation_gap_s: float = field(
        default=DEFAULT_MAX_INTERPOLATION_GAP_S,
        metadata={'help': 'largest odometry gap interpolated, s', 'key': 'odometry_max_gap_s'},
    )
    max_extrapolation_s: float = field(
        default=DEFAULT_MAX_EXTRAPOLATION_S,
        metadata={
            'help': 'largest distance to an odometry sample held without a bracket, s',
            'key': 'odometry_max_extrapolation_s',
        },
    )
    time_reset_s: float = DEFAULT_TIME_RESET_S
    cameras: tuple[BagCamera, ...] = ()

    def __post_init__(self) -> None:
        if self.extrinsic is not None and len(self.extrinsic) != 16:
            raise ConfigError(f'extrinsic must hold 16 row-major values, got {len(self.extrinsic)}')
        if self.cameras:
            names = [camera.name for camera in self.cameras]
            if len(set(names)) != len(names):
                raise ConfigError(f'camera names repeat: {names}')
            if len({bool(camera.image_topic) for camera in self.cameras}) > 1:
                missing = [camera.name for camera in self.cameras if not camera.image_topic]
                raise ConfigError(f'cameras {missing} have no image topic while others have one (NAME:IMAGE_TOPIC)')
            if self.image_topic or self.camera_info_topic or self.extrinsic is not None:
                raise ConfigError(
                    'several cameras (--camera/--extrinsic NAME:...) exclude the single-camera image topic, '
                    'camera info topic and extrinsic options'
                )
        for name in ('max_interpolation_gap_s', 'max_extrapolation_s', 'time_reset_s'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f'{name} must be finite and >= 0, got {value}')


DEFAULT_SOURCE_OPTIONS = SourceOptions()
"""The default :class:`SourceOptions` (topics by type, extrinsic from ``recording.json`` or the default)."""


@dataclass(frozen=True, slots=True)
class PosedView:
    """One image of a capture: its name, pose and intrinsics (the image itself is loaded on demand).

    Attributes:
        name: file name relative to the capture's image folder, or the header stamp in nanoseconds as
            text for bag frames.
        t_world_camera: ``(4, 4)`` float64 camera-to-world pose of the optical frame (x right, y down,
            z forward), validated as a rigid transform; in the capture's world frame and length unit
            (SfM units for captures, metres in ``odom`` for bags).
        intrinsics: pinhole intrinsics for the image as stored (pixels), or ``None`` when unknown.
        stamp_ns: header stamp in nanoseconds (bags); captures use the view index.
    """

    name: str
    t_world_camera: FloatArray = field(repr=False, compare=False)
    intrinsics: CameraIntrinsics | None
    stamp_ns: int = 0


class PosedCapture(ABC):
    """One object's posed images. Subclasses fill :attr:`views` when opened and load images lazily.

    Attributes:
        kind: the source kind.
        object_id: the object's identifier (unique within a build).
        path: the capture's path on disk.
        views: usable views, in a deterministic order (sorted names, or stamp order for bags).
        skips: views dropped while opening, by reason.
        metric: ``True`` when the length unit is metres (odometry), ``False`` for the arbitrary scale of
            structure-from-motion captures.
    """

    kind: SourceKind
    object_id: str
    path: Path
    views: tuple[PosedView, ...]
    skips: Counter[str]
    metric: bool = False

    def __len__(self) -> int:
        """Number of usable views."""
        return len(self.views)

    @property
    def poses(self) -> FloatArray:
        """All views' camera-to-world poses as an ``(N, 4, 4)`` float64 array."""
        if not self.views:
            return np.zeros((0, 4, 4), dtype=np.float64)
        return np.stack([view.t_world_camera for view in self.views])

    @abstractmethod
    def load_image(self, index: int) -> RgbImage:
        """Decode the image of view ``index`` to ``(H, W, 3)`` uint8 RGB.

        Raises:
            ImageError: the image is missing, unreadable or corrupt.
            IndexError: ``index`` out of range.
        """

    def iter_images(self, indices: Iterable[int]) -> Iterator[tuple[int, RgbImage | ImageError]]:
        """Decode the images of several views; each requested index is yielded exactly once, in an
        order that depends on the source (increasing index for files, bag order for bags).

        Yields:
            ``(index, image)`` with a ``(H, W, 3)`` uint8 RGB image, or ``(index, error)`` with the
            :class:`ImageError` that explains why the image could not be read.
        """
        for index in sorted(set(indices)):
            try:
                yield index, self.load_image(index)
            except ImageError as error:
                yield index, error
            except CaptureError as error:
                yield index, ImageError(str(error))

    def image_path(self, index: int) -> Path | None:
        """The file that holds the image of view ``index`` as stored, or ``None`` when the image is not a
        file of its own (bag messages). :meth:`iter_jpeg` reads such files directly.

        Raises:
            IndexError: ``index`` out of range.
        """
        _ = self.views[index]
        return None

    def iter_jpeg(
        self,
        indices: Iterable[int],
        *,
        max_width: int = MAX_MODEL_WIDTH,
        max_height: int = MAX_MODEL_HEIGHT,
        quality: int = 90,
    ) -> Iterator[tuple[int, bytes | ImageError]]:
        """The images of several views as JPEG bytes that fit in ``max_width`` x ``max_height`` pixels
        (aspect kept, never upscaled): the images the dataset builder embeds.

        Views with an :meth:`image_path` go through :func:`fit_image_file` with the size their intrinsics
        expect (a JPEG within the limits passes through as its file's bytes, a larger one is decoded at
        reduced scale); the others are decoded by :meth:`iter_images` and go through :func:`fit_image` (resized
        with :func:`actial_ros.imaging.resize_max`, encoded at ``quality``). The stored size is the size of
        :func:`actial_ros.imaging.fit_size` either way, so intrinsics scale to it as for any resized image
        (:meth:`actial_ros.frame.CameraIntrinsics.scaled`).

        Yields:
            ``(index, data)`` once per requested index (files first, in increasing index, then the rest in
            source order), ``data`` being JPEG bytes or the :class:`ImageError` that explains why the
            image could not be used (unreadable, corrupt, another size than the intrinsics expect).

        Raises:
            ImageError: non-positive limits or a quality outside 1 to 100 (before anything is read).
            IndexError: an index out of range.
        """
        check_fit_arguments(max_width, max_height, quality)
        files: list[tuple[int, Path]] = []
        others: list[int] = []
        for index in sorted(set(indices)):
            path = self.image_path(index)
            if path is None:
                others.append(index)
            else:
                files.append((index, path))
        for index, path in files:
            intrinsics = self.views[index].intrinsics
            expected = None if intrinsics is None else (intrinsics.width, intrinsics.height)
            try:
                yield (
                    index,
                    fit_image_file(
                        path, max_width=max_width, max_height=max_height, quality=quality, expected_size=expected
                    ),
                )
            except ImageError as error:
                yield index, error
        for index, image in self.iter_images(others) if others else ():
            if isinstance(image, ImageError):
                yield index, image
                continue
            try:
                yield index, fit_image(image, max_width=max_width, max_height=max_height, quality=quality)
            except ImageError as error:
                yield index, error

    def frames(self) -> Iterator[Frame]:
        """The views as core frames with their images (views whose image fails are skipped and counted
        under ``bad_image`` in :attr:`skips`).

        The frame's ``stamp_ns`` is the view's stamp, ``camera_id`` the object id, ``name`` the view name.
        """
        for index, image in self.iter_images(range(len(self.views))):
            if isinstance(image, ImageError):
                self.skips['bad_image'] += 1
                continue
            view = self.views[index]
            intrinsics = view.intrinsics
            if intrinsics is not None and (intrinsics.width, intrinsics.height) != (image.shape[1], image.shape[0]):
                intrinsics = intrinsics.scaled(int(image.shape[1]), int(image.shape[0]))
            yield Frame(
                image=image,
                stamp_ns=view.stamp_ns,
                intrinsics=intrinsics,
                t_world_camera=np.array(view.t_world_camera, dtype=np.float64),
                camera_id=self.object_id,
                name=view.name,
            )

    def __repr__(self) -> str:
        return f'{type(self).__name__}({str(self.path)!r}, object_id={self.object_id!r}, views={len(self.views)})'


class ImageFileCapture(PosedCapture):
    """A capture whose views are image files on disk, one path per view (COLMAP, transforms.json).

    Subclasses set :attr:`kind` and build themselves in an ``open`` class method that reads the poses.
    """

    def __init__(
        self, path: Path, object_id: str, views: tuple[PosedView, ...], paths: tuple[Path, ...], skips: Counter[str]
    ) -> None:
        """Wrap already-read views (``paths[i]`` is the image of ``views[i]``); use the subclass's ``open``."""
        self.path = path
        self.object_id = object_id
        self.views = views
        self.skips = skips
        self._paths = paths

    def load_image(self, index: int) -> RgbImage:
        """Decode view ``index`` on its stored pixel grid (alpha dropped).

        Raises:
            ImageError: unreadable, corrupt, or another size than the view's intrinsics.
            IndexError: ``index`` out of range.
        """
        image = read_image_file(self._paths[index])
        intrinsics = self.views[index].intrinsics
        if intrinsics is not None and (image.shape[1], image.shape[0]) != (intrinsics.width, intrinsics.height):
            raise ImageError(
                f'image {self._paths[index]} is {image.shape[1]}x{image.shape[0]}, '
                f'expected {intrinsics.width}x{intrinsics.height}'
            )
        return image

    def image_path(self, index: int) -> Path:
        """The image file of view ``index`` (raises ``IndexError`` out of range)."""
        return self._paths[index]


@dataclass(frozen=True, slots=True)
class CaptureRef:
    """A picklable reference to one capture (what the builder sends to worker processes).

    Attributes:
        kind: the capture's own kind (never ``objects``).
        path: its path.
        object_id: the object id it gets.
        source: the ``KIND:PATH`` text of the source it was found in (the ``source`` column).
        options: adapter options.
    """

    kind: SourceKind
    path: str
    object_id: str
    source: str
    options: SourceOptions = DEFAULT_SOURCE_OPTIONS


def as_capture_error(error: BaseException, path: str | Path) -> CaptureError:
    """Wrap an unexpected reader error (pycolmap, rosbags, json) as a :class:`CaptureError` naming ``path``."""
    if isinstance(error, CaptureError):
        return error
    if isinstance(error, ActialError):
        return CaptureError(f'{path}: {error}')
    return CaptureError(f'{path}: {type(error).__name__}: {error}')
