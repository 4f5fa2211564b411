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
from enum import StrEnum
from pathlib import Path

import numpy as np
import numpy.typing as npt

from actial_ros.errors import ActialError, CaptureError, ConfigError, ImageError
from actial_ros.frame import CameraIntrinsics, Frame
from actial_ros.sources.llff import IMAGES_DIRNAME, POSES_FILENAME, LlffCapture
from actial_ros.sources.llff import _decode_file as _llff_decode_file

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


def _jpeg_size(head: bytes) -> tuple[int, int] | None:
    """Size from the first start-of-frame segment within ``head`` (``None`` when not found there)."""
    if not head.startswith(b'\xff\xd8'):
        return None
    pos = 2
    while pos + 4 <= len(head):
        if head[pos] != 0xFF:
            return None
        marker = head[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        length = int.from_bytes(head[pos + 2 : pos + 4], 'big')
        if marker in _SOF_MARKERS:
            if pos + 9 > len(head):
                return None
            height = int.from_bytes(head[pos + 5 : pos + 7], 'big')
            width = int.from_bytes(head[pos + 7 : pos + 9], 'big')
            return (width, height) if width > 0 and height > 0 else None
        pos += 2 + length
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
