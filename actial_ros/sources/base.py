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
boundaries; :func:`open_capture` opens it, :func:`discover` lists the captures of a ``KIND:PATH``
source. The LLFF adapter :class:`LlffPosedCapture` wraps :class:`actial_ros.sources.llff.LlffCapture`
(the one LLFF reader).
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt

from actial_ros.enums import StrEnum
from actial_ros.errors import ActialError, CaptureError, ConfigError, ImageError
from actial_ros.frame import CameraIntrinsics, Frame
from actial_ros.imaging import MAX_MODEL_HEIGHT, MAX_MODEL_WIDTH, encode_jpeg, fit_size, jpeg_reduction, resize_max
from actial_ros.sources.llff import IMAGES_DIRNAME, POSES_FILENAME, LlffCapture
from actial_ros.sources.llff import _decode_bgr as _llff_decode_bgr
from actial_ros.sources.llff import _decode_file as _llff_decode_file
from actial_ros.sources.llff import _read_file as _llff_read_file

__all__ = [
    'DEFAULT_SOURCE_OPTIONS',
    'BagCamera',
    'CaptureRef',
    'ImageFileCapture',
    'LlffPosedCapture',
    'PosedCapture',
    'PosedView',
    'SourceKind',
    'SourceOptions',
    'as_capture_error',
    'check_unique_ids',
    'detect_capture_kind',
    'discover',
    'fit_image_file',
    'image_file_size',
    'open_capture',
    'parse_source',
    'read_image_file',
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


_CAMERA_NAME = re.compile(r'^[A-Za-z0-9_]+$')


@dataclass(frozen=True, slots=True)
class BagCamera:
    """One camera of a multi-camera rosbag source (``--camera``, ``--extrinsic``, ``--camera-file``).

    Attributes:
        name: the camera's name (letters, digits, ``_``); bag views are named ``NAME@STAMP_NS``.
        image_topic: its Image or CompressedImage topic; empty: the topic ``recording.json`` lists for
            this name (an entry that only overrides the extrinsic).
        camera_info_topic: its CameraInfo topic; empty: the recording's, else ``<namespace>/camera_info``
            next to the image topic (``/left/image_raw/compressed`` -> ``/left/camera_info``).
        extrinsic: ``T_base_camera_optical`` as 16 row-major floats (metres, ``base_link``); ``None``:
            the one ``recording.json`` stores for this camera.

    Raises:
        ConfigError: an invalid name or an extrinsic that is not 16 values.
    """

    name: str
    image_topic: str = ''
    camera_info_topic: str = ''
    extrinsic: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if not _CAMERA_NAME.match(self.name):
            raise ConfigError(f'invalid camera name {self.name!r} (letters, digits and _ only)')
        if self.extrinsic is not None and len(self.extrinsic) != 16:
            raise ConfigError(f'camera {self.name}: extrinsic must hold 16 row-major values')


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
        cameras: several cameras of one bag (:class:`BagCamera`): either all with an image topic (these
            cameras are read), or all without (extrinsic overrides of the cameras ``recording.json``
            lists). Empty: the cameras of ``recording.json`` when it lists several, else one camera
            chosen by ``image_topic`` or by type. Excludes ``image_topic``, ``camera_info_topic`` and
            ``extrinsic``.
    """

    image_topic: str = ''
    camera_info_topic: str = ''
    odometry_topic: str = ''
    extrinsic: tuple[float, ...] | None = None
    require_camera_info: bool = True
    max_interpolation_gap_s: float = 0.5
    max_extrapolation_s: float = 0.05
    time_reset_s: float = 1.0
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
        reduced scale); the others are decoded by :meth:`iter_images`, resized with
        :func:`actial_ros.imaging.resize_max` and encoded at ``quality``. The stored size is the size of
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
        _check_fit_arguments(max_width, max_height, quality)
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
                yield index, encode_jpeg(resize_max(image, max_width, max_height), quality)
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


def read_image_file(path: str | Path) -> RgbImage:
    """Decode a JPEG/PNG file to ``(H, W, 3)`` uint8 RGB on its stored pixel grid (EXIF orientation ignored,
    as structure-from-motion tools compute poses on the raw grid; the LLFF reader's decoder).

    Raises:
        ImageError: the file is missing, empty, a truncated JPEG or undecodable; the message names it.
    """
    try:
        return _llff_decode_file(Path(path))
    except CaptureError as error:
        raise ImageError(str(error)) from None


def fit_image_file(
    path: str | Path,
    *,
    max_width: int = MAX_MODEL_WIDTH,
    max_height: int = MAX_MODEL_HEIGHT,
    quality: int = 90,
    expected_size: tuple[int, int] | None = None,
) -> bytes:
    """JPEG bytes of an image file that fit in ``max_width`` x ``max_height`` pixels (aspect kept, never
    upscaled), decoding no more than needed.

    * A JPEG already within the limits passes through: the result IS the file's bytes (no re-encoding),
      when it is an 8-bit 3-component Huffman JPEG (baseline, extended or progressive) without an EXIF
      orientation other than 1 (readers such as ``datasets`` would rotate an oriented file, while poses
      refer to the stored grid). It is still decoded at 1/8 scale, which parses every segment and all
      of the entropy-coded data, so that an undecodable file is refused as before.
    * A larger JPEG is decoded at reduced scale (libjpeg DCT scaling by the largest factor 2, 4 or 8 of
      :func:`actial_ros.imaging.jpeg_reduction` that keeps it at least the target size), area-resized to
      exactly :func:`actial_ros.imaging.fit_size` of its stored size (the size a full decode +
      :func:`actial_ros.imaging.resize_max` gives, with the same pixel alignment) and encoded at
      ``quality``; the pixels differ from a full decode + resize by about half a grey level on average.
    * Anything else (PNG; a JPEG within the limits that cannot pass through, e.g. grey, CMYK or oriented;
      a JPEG less than twice too large) is decoded in full, resized with
      :func:`actial_ros.imaging.resize_max` where larger and encoded at ``quality``: the very bytes of
      ``encode_jpeg(resize_max(read_image_file(path)), quality)``.

    EXIF orientation is ignored throughout (the stored pixel grid, as :func:`read_image_file`).

    Args:
        path: a JPEG or PNG file.
        max_width, max_height: the limits (pixels, > 0).
        quality: JPEG quality 1 to 100 of re-encoded images.
        expected_size: ``(width, height)`` the file must have on disk (the size its intrinsics were
            computed for), checked against the file's header before any decoding and against the
            decoded pixels; ``None``: not checked.

    Returns:
        JPEG bytes of an image of ``fit_size(width, height, max_width, max_height)`` pixels.

    Raises:
        ImageError: the file is missing, empty, a truncated JPEG or undecodable, its size differs from
            ``expected_size``, or the limits or quality are invalid; the message names the file.
    """
    _check_fit_arguments(max_width, max_height, quality)
    file_path = Path(path)
    try:
        data = _llff_read_file(file_path)
    except CaptureError as error:
        raise ImageError(str(error)) from None
    info = _jpeg_info(data)
    if info is None:  # PNG, or a JPEG whose frame header is not where it should be
        return _encode_decoded(data, file_path, max_width, max_height, quality, expected_size)
    size = (info.width, info.height)
    _check_size(file_path, size, expected_size)
    target = fit_size(info.width, info.height, max_width, max_height)
    within = target == size
    reduction = (8 if info.passable else 1) if within else jpeg_reduction(info.width, info.height, *target)
    if reduction == 1:
        return _encode_decoded(data, file_path, max_width, max_height, quality, expected_size)
    image = _decode_bgr(data, file_path, reduction)
    reduced = (-(-info.width // reduction), -(-info.height // reduction))
    if (image.shape[1], image.shape[0]) != reduced:
        raise ImageError(
            f'image {file_path} decodes to {image.shape[1]}x{image.shape[0]} at 1/{reduction} scale, '
            f'not {reduced[0]}x{reduced[1]} as its header ({info.width}x{info.height}) says'
        )
    if within:  # decoded at 1/8 only to refuse an undecodable file, as a full decode would
        return data
    if reduced != target or (reduced[0] * reduction, reduced[1] * reduction) != size:
        # The reduced image covers ceil(W / r) * r source pixels (a partial last block is padded): scale by
        # the exact source-to-target factor and crop, so that the pixels line up with a full-size resize.
        scaled = cv2.resize(
            image,
            (0, 0),
            fx=target[0] * reduction / info.width,
            fy=target[1] * reduction / info.height,
            interpolation=cv2.INTER_AREA,
        )
        if scaled.shape[1] < target[0] or scaled.shape[0] < target[1]:  # never expected: rounding
            scaled = cv2.resize(image, target, interpolation=cv2.INTER_AREA)
        image = np.ascontiguousarray(scaled[: target[1], : target[0]], dtype=np.uint8)
    return encode_jpeg(image, quality, channel_order='bgr')


def _check_fit_arguments(max_width: int, max_height: int, quality: int) -> None:
    fit_size(1, 1, max_width, max_height)
    if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)) or not 1 <= quality <= 100:
        raise ImageError(f'JPEG quality must be an integer in [1, 100], got {quality!r}')


def _check_size(path: Path, size: tuple[int, int], expected_size: tuple[int, int] | None) -> None:
    if expected_size is not None and size != tuple(expected_size):
        raise ImageError(f'image {path} is {size[0]}x{size[1]}, expected {expected_size[0]}x{expected_size[1]}')


def _decode_bgr(data: bytes, path: Path, reduction: int = 1) -> npt.NDArray[np.uint8]:
    """``(H, W, 3)`` uint8 in BGR order: channel order does not matter to resizing, and the JPEG encoder
    takes BGR (no conversion pass either way)."""
    try:
        return _llff_decode_bgr(data, path, reduction)
    except CaptureError as error:
        raise ImageError(str(error)) from None


def _encode_decoded(
    data: bytes,
    path: Path,
    max_width: int,
    max_height: int,
    quality: int,
    expected_size: tuple[int, int] | None,
) -> bytes:
    """The full-decode path of :func:`fit_image_file`: decode, check the size, resize, encode (the bytes
    of ``encode_jpeg(resize_max(read_image_file(path)), quality)``)."""
    image = _decode_bgr(data, path)
    _check_size(path, (int(image.shape[1]), int(image.shape[0])), expected_size)
    return encode_jpeg(resize_max(image, max_width, max_height), quality, channel_order='bgr')


def image_file_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` of a JPEG or PNG file read from its header (no decoding); other formats and
    unusual JPEGs fall back to decoding the file.

    Raises:
        ImageError: the file cannot be read or is not an image.
    """
    file_path = Path(path)
    try:
        with file_path.open('rb') as handle:
            head = handle.read(64 * 1024)
    except OSError as error:
        raise ImageError(f'cannot read image {file_path}: {error}') from None
    size = _png_size(head) if head.startswith(b'\x89PNG\r\n\x1a\n') else _jpeg_size(head)
    if size is None:
        image = read_image_file(file_path)
        return int(image.shape[1]), int(image.shape[0])
    return size


def _png_size(head: bytes) -> tuple[int, int] | None:
    if len(head) < 24 or head[12:16] != b'IHDR':
        return None
    width, height = int.from_bytes(head[16:20], 'big'), int.from_bytes(head[20:24], 'big')
    return (width, height) if width > 0 and height > 0 else None


_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_PASSABLE_SOF = frozenset({0xC0, 0xC1, 0xC2})
"""Huffman baseline, extended sequential and progressive: the JPEGs every reader decodes."""
_SOS, _APP1, _EXIF_ORIENTATION_TAG = 0xDA, 0xE1, 0x0112


@dataclass(frozen=True, slots=True)
class _JpegInfo:
    """What :func:`fit_image_file` reads from a JPEG's segments before the image data.

    Attributes:
        width, height: from the first start-of-frame segment (pixels, > 0).
        passable: the file may be stored as it is: an 8-bit, 3-component SOF0/1/2 frame, every segment up
            to the start of scan read, and no EXIF block with an orientation other than 1 or that cannot be
            read.
    """

    width: int
    height: int
    passable: bool


def _jpeg_size(head: bytes) -> tuple[int, int] | None:
    """Size from the first start-of-frame segment within ``head`` (``None`` when not found there)."""
    info = _jpeg_info(head)
    return None if info is None else (info.width, info.height)


def _jpeg_info(data: bytes) -> _JpegInfo | None:
    """The first start-of-frame segment of the JPEG ``data`` (or of its first bytes), with the EXIF
    orientation of any APP1 segment before the first start of scan; ``None`` when no valid frame size is
    found there."""
    if not data.startswith(b'\xff\xd8'):
        return None
    frame: tuple[int, int, bool] | None = None  # width, height, 8-bit 3-component SOF0/1/2
    oriented = False
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            break
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        if marker == _SOS:
            if frame is None:
                return None
            return _JpegInfo(frame[0], frame[1], passable=frame[2] and not oriented)
        length = int.from_bytes(data[pos + 2 : pos + 4], 'big')
        if marker in _SOF_MARKERS and frame is None:
            if pos + 10 > len(data):
                break
            precision = data[pos + 4]
            height = int.from_bytes(data[pos + 5 : pos + 7], 'big')
            width = int.from_bytes(data[pos + 7 : pos + 9], 'big')
            if width <= 0 or height <= 0:
                return None
            frame = (width, height, marker in _PASSABLE_SOF and precision == 8 and data[pos + 9] == 3)
        elif marker == _APP1 and data[pos + 4 : pos + 10] == b'Exif\x00\x00':
            orientation = _exif_orientation(data[pos + 10 : pos + 2 + length])
            oriented = oriented or orientation not in (None, 1)
        pos += 2 + length
    return None if frame is None else _JpegInfo(frame[0], frame[1], passable=False)


def _exif_orientation(tiff: bytes) -> int | None:
    """The orientation tag (0x0112) of IFD0 of an EXIF block (``tiff``: the TIFF structure that follows the
    ``Exif`` identifier of an APP1 segment): 1 to 8, ``None`` when the block has no such tag, 0 when the
    block cannot be read."""
    if len(tiff) < 8 or tiff[:2] not in (b'II', b'MM'):
        return 0
    order: Literal['little', 'big'] = 'little' if tiff[:2] == b'II' else 'big'
    if int.from_bytes(tiff[2:4], order) != 42:
        return 0
    ifd = int.from_bytes(tiff[4:8], order)
    if ifd + 2 > len(tiff):
        return 0
    for entry in range(ifd + 2, ifd + 2 + 12 * int.from_bytes(tiff[ifd : ifd + 2], order), 12):
        if entry + 12 > len(tiff):
            return 0
        if int.from_bytes(tiff[entry : entry + 2], order) == _EXIF_ORIENTATION_TAG:
            return int.from_bytes(tiff[entry + 8 : entry + 10], order)
    return None


# ----------------------------------------------------------------------------------------------------
# References, detection and discovery
# ----------------------------------------------------------------------------------------------------


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


def detect_capture_kind(path: str | Path) -> SourceKind | None:
    """The kind of capture at ``path``, or ``None`` when it is none of them.

    Checked in this order: LLFF (``poses_bounds.npy`` and ``images/``), ``transforms.json``, COLMAP
    (``sparse/0``, ``sparse`` or the folder itself holding ``cameras.bin``/``cameras.txt``), rosbag (a
    ``metadata.yaml``, a ``.mcap`` file, or a split recording: sub-folders that are bags).
    """
    from actial_ros.sources.colmap import find_model_dir
    from actial_ros.sources.rosbag import is_rosbag
    from actial_ros.sources.transforms import TRANSFORMS_FILENAME

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


def as_capture_error(error: BaseException, path: str | Path) -> CaptureError:
    """Wrap an unexpected reader error (pycolmap, rosbags, json) as a :class:`CaptureError` naming ``path``."""
    if isinstance(error, CaptureError):
        return error
    if isinstance(error, ActialError):
        return CaptureError(f'{path}: {error}')
    return CaptureError(f'{path}: {type(error).__name__}: {error}')
