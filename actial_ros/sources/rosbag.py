"""rosbag2 recordings as posed captures (odometry as ground truth), and a size-splitting bag writer.

Reading (:class:`RosbagCapture`): a recording is one object. ``PATH`` may be

* a rosbag2 folder (``metadata.yaml`` + ``.db3`` or ``.mcap``), sqlite3 or mcap storage;
* a bare ``.mcap`` or ``.db3`` file (a folder without ``metadata.yaml`` holding one of them);
* a split recording: a folder whose sub-folders (sorted by name) are the parts of one recording, as
  :class:`SplitBagWriter` and the ``bag_recorder`` node write them (``bag_0000/``, ``bag_0001/``, ...).
  A part without ``metadata.yaml`` (the recorder was killed) is read through its ``.mcap`` (else ``.db3``)
  file.

Cut bags (power loss, a killed recorder): every part is opened by
:func:`actial_ros.sources.bag_reading.open_part`. A part rosbags refuses because its storage was cut short
(an mcap without footer, a sqlite3 file shorter than its header says) is salvaged: every complete mcap record
up to the cut (a cut chunk is lost whole: at most about 1 MiB with rosbags' writer), or every row SQLite still
reads. It is read with a warning and counted in :attr:`RosbagCapture.skips`: ``salvaged_bag`` (parts),
``salvaged_messages`` (messages recovered from them), ``lost_tail_bytes`` (mcap bytes after the last
complete record). A recording split into parts (:class:`SplitBagWriter`, ``bag_recorder``) has at most its
last part cut: the closed parts are intact. A part with nothing recoverable (cut inside its header or first
chunk) is skipped and counted as ``unreadable_bag``; a recording with no readable part is an error.

Topics: an Image or CompressedImage topic, a CameraInfo topic and an Odometry topic, each named in
:class:`~actial_ros.sources.base.SourceOptions` or found by message type (exactly one topic of the
type; image topics with ``depth`` in their name are not candidates when another image topic exists).
Reading uses ``rosbags`` (no ROS install); message definitions come from the bag, else from the ROS 2
Kilted type store.

Several cameras (:class:`BagLayout`, :func:`read_bag_layout`): one odometry stream, any number of
cameras, each with its image topic, CameraInfo topic and extrinsic. The cameras are
``SourceOptions.cameras`` (``--camera NAME:IMAGE_TOPIC[:CAMERA_INFO_TOPIC]``, ``--extrinsic
NAME:TX,TY,TZ,QX,QY,QZ,QW``, ``--camera-file``: :func:`bag_cameras_from_args`), else the cameras
``recording.json`` lists when it lists several (``bag_recorder`` with ``additional_cameras``,
:func:`write_rig_bag`). A camera's missing CameraInfo topic or extrinsic comes from ``recording.json``
(same name, else same image topic); the CameraInfo topic else defaults to ``<namespace>/camera_info``
beside the image topic. A multi-camera recording is ONE object: its views are every camera's posed
images, named ``NAME@STAMP_NS`` (:func:`view_name`) and ordered by (stamp, name), so pairs are made
within a camera and across cameras (same or different stamps) alike.

Poses (``../shared/notes/CONVENTIONS.md``): for an image of camera ``c`` with header stamp ``t``,
``T_odom_camera_optical = T_odom_base(t) @ T_base_camera_optical[c]``. ``T_odom_base(t)`` comes from
:class:`actial_ros.pairing.OdometryHistory` over all odometry messages of the recording (by header
stamp; linear position, slerp rotation between the two nearest samples; never extrapolated beyond
``max_extrapolation_s``; no interpolation across gaps longer than ``max_interpolation_gap_s``). The
extrinsic of a single camera is ``SourceOptions.extrinsic``, else the one the recorder stored in
``recording.json``, else :func:`actial_ros.geometry.base_to_optical_extrinsic`. Intrinsics: the newest
valid CameraInfo of the camera stamped at or before the image, else the first one after it. Lengths are
metres (``metric = True``).

Counted skips (never a silently wrong pose): ``bad_odometry`` (NaN, bad quaternion),
``odometry_duplicate``, ``duplicate_stamp`` (a second image with the same header stamp),
``no_odometry`` / ``odometry_gap`` (image outside or between odometry samples too far apart),
``no_camera_info``, ``bad_camera_info``, ``bad_message`` (CDR that does not deserialise),
``unreadable_bag``; and the salvage counters above. Errors (:class:`~actial_ros.errors.CaptureError`): no
image, odometry or (by default) CameraInfo topic, several candidate topics, odometry whose stamps jump back by more than
``time_reset_s`` (two timelines in one recording), nothing readable, no posed image; a camera whose
topic is missing, two cameras on one image topic, a camera of several without extrinsic.

Writing: :class:`SplitBagWriter` writes raw CDR messages to numbered rosbag2 parts, starting a new part
when a part reaches a size limit and refusing messages (counted) once a total disk budget is spent;
:func:`write_capture_bag` exports a posed capture as a bag, :func:`write_rig_bag` a rig of cameras
with one odometry stream (tests, offline replay).
"""

from __future__ import annotations

import bisect
import json
import logging
import math
import re
import struct
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from actial_ros.enums import DropReason
from actial_ros.errors import CaptureError, ConfigError, ImageError, PoseError
from actial_ros.frame import CameraIntrinsics
from actial_ros.geometry import (
    BASE_TO_OPTICAL_QUATERNION_XYZW,
    base_to_optical_extrinsic,
    camera_pose_from_odometry,
    validate_transform,
)
from actial_ros.imaging import ImageFields, compressed_msg_to_rgb, image_msg_to_rgb, rgb_to_image_fields
from actial_ros.messages import (
    camera_info_fields,
    camera_info_to_intrinsics,
    ns_to_stamp,
    odometry_to_transform,
    pose_fields,
)
from actial_ros.pairing import OdometryHistory, OdometryMatchPolicy
from actial_ros.sources.bag_reading import BagReadError, default_typestore, open_part
from actial_ros.sources.base import (
    DEFAULT_SOURCE_OPTIONS,
    BagCamera,
    PosedCapture,
    PosedView,
    RgbImage,
    SourceKind,
    SourceOptions,
)
from actial_ros.timeline import Jump, TimelineGuard

if TYPE_CHECKING:
    from rosbags.typesys.store import Typestore

__all__ = [
    'CAMERA_INFO_TYPE',
    'COMPRESSED_IMAGE_TYPE',
    'IMAGE_TYPE',
    'ODOMETRY_TYPE',
    'RECORDING_FILENAME',
    'BagCamera',
    'BagLayout',
    'RecordedCamera',
    'RigCamera',
    'RosbagCapture',
    'SplitBagWriter',
    'bag_cameras_from_args',
    'bag_parts',
    'camera_from_mapping',
    'camera_info_cdr',
    'cdr_header_stamp_ns',
    'compressed_image_cdr',
    'default_camera_info_topic',
    'default_typestore',
    'image_cdr',
    'image_fields_cdr',
    'image_message_counts',
    'is_rosbag',
    'load_camera_file',
    'odometry_cdr',
    'parse_camera_arg',
    'parse_extrinsic_arg',
    'read_bag_layout',
    'recording_camera_entry',
    'set_cdr_header_stamp',
    'view_name',
    'write_capture_bag',
    'write_recording_json',
    'write_rig_bag',
]

_LOG = logging.getLogger(__name__)

IMAGE_TYPE = 'sensor_msgs/msg/Image'
COMPRESSED_IMAGE_TYPE = 'sensor_msgs/msg/CompressedImage'
CAMERA_INFO_TYPE = 'sensor_msgs/msg/CameraInfo'
ODOMETRY_TYPE = 'nav_msgs/msg/Odometry'
RECORDING_FILENAME = 'recording.json'
"""File the recorder writes beside its parts: parameters (topics, extrinsic) and counters."""

_IMAGE_TYPES = (IMAGE_TYPE, COMPRESSED_IMAGE_TYPE)
_NS = 1_000_000_000
_MESSAGE_OVERHEAD = 40
"""Bytes counted per message on top of its payload (mcap record + index entry, approximately)."""

FloatArray = npt.NDArray[np.float64]


def cdr_header_stamp_ns(raw: bytes | bytearray | memoryview) -> int:
    """Header stamp (ns) of a CDR-serialised ROS 2 message whose first field is ``std_msgs/Header``.

    Layout (OMG CDR as rmw writes it): 4 bytes of encapsulation header (byte 1: 0 big-endian, 1
    little-endian), then ``stamp.sec`` (int32) and ``stamp.nanosec`` (uint32). Image, CompressedImage,
    CameraInfo and Odometry all start with a Header, so no full deserialisation is needed.

    Raises:
        ValueError: shorter than 12 bytes, unknown encapsulation, or an invalid stamp.
    """
    data = bytes(raw[:12])
    if len(data) < 12 or data[0] != 0 or data[1] not in (0, 1):
        raise ValueError('not a CDR message with a header')
    sec, nanosec = (int(v) for v in struct.unpack('<iI' if data[1] == 1 else '>iI', data[4:12]))
    if sec < 0 or nanosec >= _NS:
        raise ValueError(f'invalid stamp sec={sec} nanosec={nanosec}')
    return sec * _NS + nanosec


def set_cdr_header_stamp(raw: bytes | bytearray | memoryview, stamp_ns: int) -> bytes:
    """A copy of a CDR message whose first field is a Header (or a ``builtin_interfaces/Time``, e.g.
    ``rosgraph_msgs/Clock``) with that stamp replaced by ``stamp_ns``; every other byte is unchanged.

    Raises:
        ValueError: not a CDR message with a header (see :func:`cdr_header_stamp_ns`), or a negative
            stamp or one beyond the int32 seconds range.
    """
    cdr_header_stamp_ns(raw)  # validates the layout
    sec, nanosec = divmod(int(stamp_ns), _NS)
    if not 0 <= sec < 2**31:
        raise ValueError(f'stamp {stamp_ns} ns is out of range')
    data = bytearray(raw)
    data[4:12] = struct.pack('<iI' if data[1] == 1 else '>iI', sec, nanosec)
    return bytes(data)


# ----------------------------------------------------------------------------------------------------
# Finding the parts of a recording
# ----------------------------------------------------------------------------------------------------


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


# ----------------------------------------------------------------------------------------------------
# Cameras of a recording: command-line flags, camera files, recording.json
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordedCamera:
    """One camera of a bag, resolved against the bag's topics.

    Attributes:
        name: the camera's name (views of a multi-camera bag are named ``NAME@STAMP_NS``).
        image_topic: its Image or CompressedImage topic in the bag.
        image_type: ``sensor_msgs/msg/Image`` or ``sensor_msgs/msg/CompressedImage``.
        camera_info_topic: its CameraInfo topic, or ``None`` when the bag has none for it.
        extrinsic: ``T_base_camera_optical`` as 16 row-major floats (metres, ``base_link``).
    """

    name: str
    image_topic: str
    image_type: str
    camera_info_topic: str | None
    extrinsic: tuple[float, ...]

    @property
    def matrix(self) -> FloatArray:
        """``T_base_camera_optical`` as a ``(4, 4)`` float64 array."""
        return np.asarray(self.extrinsic, dtype=np.float64).reshape(4, 4)

    @property
    def transport(self) -> str:
        """``'compressed'`` for CompressedImage, else ``'raw'`` (the nodes' ``image_transport``)."""
        return 'compressed' if self.image_type == COMPRESSED_IMAGE_TYPE else 'raw'


@dataclass(frozen=True, slots=True)
class BagLayout:
    """The cameras and the odometry topic a bag is read with (:func:`read_bag_layout`).

    Attributes:
        cameras: the cameras, in the order they were given (the recording's order otherwise).
        odometry_topic: the one nav_msgs/Odometry topic that poses every camera.
        named_views: view names are ``NAME@STAMP_NS`` (several cameras, or cameras named with
            ``--camera``) rather than the bare stamp (one camera found by type, as before).
    """

    cameras: tuple[RecordedCamera, ...]
    odometry_topic: str
    named_views: bool


def view_name(camera: str, stamp_ns: int) -> str:
    """The name of a multi-camera bag view: ``'{camera}@{stamp_ns}'`` (e.g. ``left@1700000000100000000``)."""
    return f'{camera}@{int(stamp_ns)}'


def default_camera_info_topic(image_topic: str) -> str:
    """``<namespace>/camera_info`` beside an image topic (a trailing ``/compressed`` is ignored):
    ``/left/image_raw`` and ``/left/image_raw/compressed`` give ``/left/camera_info``."""
    topic = image_topic.rstrip('/')
    if topic.endswith('/compressed'):
        topic = topic[: -len('/compressed')]
    namespace = topic.rsplit('/', 1)[0]
    return f'{namespace}/camera_info'


def _extrinsic_tuple(translation: Any, rotation_xyzw: Any, where: str) -> tuple[float, ...]:
    try:
        matrix = base_to_optical_extrinsic(
            [float(v) for v in translation],
            [float(v) for v in rotation_xyzw],
        )
    except (PoseError, TypeError, ValueError) as error:
        raise ConfigError(f'{where}: invalid extrinsic: {error}') from error
    return tuple(float(v) for v in matrix.reshape(-1))


def camera_from_mapping(entry: Any, where: str = 'camera') -> BagCamera:
    """A :class:`BagCamera` from a mapping with the keys of a ``recording.json`` camera entry.

    Keys: ``name`` (required), ``image_topic``, ``camera_info_topic``, ``extrinsic_translation``
    (3 floats, metres, ``base_link``; default zeros) and ``extrinsic_rotation_xyzw`` (4 floats; default:
    forward-looking); without either extrinsic key the camera has no extrinsic (taken from elsewhere).

    Raises:
        ConfigError: not a mapping, no name, or invalid values.
    """
    if not isinstance(entry, dict) or not isinstance(entry.get('name'), str):
        raise ConfigError(f'{where}: a camera needs at least a "name" (got {entry!r})')
    extrinsic = None
    if 'extrinsic_translation' in entry or 'extrinsic_rotation_xyzw' in entry:
        extrinsic = _extrinsic_tuple(
            entry.get('extrinsic_translation', (0.0, 0.0, 0.0)),
            entry.get('extrinsic_rotation_xyzw', BASE_TO_OPTICAL_QUATERNION_XYZW),
            f'{where}: camera {entry["name"]}',
        )
    return BagCamera(
        name=str(entry['name']),
        image_topic=str(entry.get('image_topic') or ''),
        camera_info_topic=str(entry.get('camera_info_topic') or ''),
        extrinsic=extrinsic,
    )


def load_camera_file(path: str | Path) -> tuple[BagCamera, ...]:
    """The cameras of a JSON or YAML camera file: a list of camera mappings, or a mapping with a
    ``cameras`` list (so a recorder's ``recording.json`` is a camera file); keys as
    :func:`camera_from_mapping`.

    Raises:
        ConfigError: unreadable file, bad syntax or bad entries.
    """
    import yaml

    file = Path(path)
    try:
        text = file.read_text()
        data = yaml.safe_load(text) if file.suffix.lower() in ('.yaml', '.yml') else json.loads(text)
    except (OSError, ValueError, yaml.YAMLError) as error:
        raise ConfigError(f'cannot read camera file {file}: {error}') from error
    entries = data.get('cameras') if isinstance(data, dict) else data
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f'{file}: expected a list of cameras (or a mapping with a "cameras" list)')
    return tuple(camera_from_mapping(entry, str(file)) for entry in entries)


def parse_camera_arg(text: str) -> BagCamera:
    """``NAME:IMAGE_TOPIC[:CAMERA_INFO_TOPIC]`` (``--camera``) as a :class:`BagCamera` without extrinsic.

    Raises:
        ConfigError: malformed text (ROS topic names never contain ``:``).
    """
    parts = text.split(':')
    if len(parts) not in (2, 3) or not all(parts[:2]):
        raise ConfigError(f'a camera is NAME:IMAGE_TOPIC[:CAMERA_INFO_TOPIC], got {text!r}')
    return BagCamera(name=parts[0], image_topic=parts[1], camera_info_topic=parts[2] if len(parts) == 3 else '')


def parse_extrinsic_arg(text: str) -> tuple[str, tuple[float, ...]]:
    """``NAME:TX,TY,TZ,QX,QY,QZ,QW`` (``--extrinsic``): the camera name and ``T_base_camera_optical`` as
    16 row-major floats (translation in metres in ``base_link``, rotation quaternion x, y, z, w).

    Raises:
        ConfigError: malformed text or an invalid quaternion.
    """
    name, sep, values = text.partition(':')
    try:
        numbers = [float(v) for v in values.split(',')]
    except ValueError:
        numbers = []
    if not sep or not name or len(numbers) != 7:
        raise ConfigError(f'an extrinsic is NAME:TX,TY,TZ,QX,QY,QZ,QW, got {text!r}')
    return name, _extrinsic_tuple(numbers[:3], numbers[3:], f'--extrinsic {name}')


def bag_cameras_from_args(
    cameras: Sequence[str] = (), extrinsics: Sequence[str] = (), camera_file: str | Path | None = None
) -> tuple[BagCamera, ...]:
    """Merge ``--camera-file``, ``--camera`` and ``--extrinsic`` flags into :attr:`SourceOptions.cameras`.

    A camera file and ``--camera`` flags list cameras (names must not repeat); ``--extrinsic NAME:...``
    sets the extrinsic of a listed camera, or, when no camera is listed, overrides the extrinsic of the
    camera ``NAME`` of each recording's ``recording.json``.

    Raises:
        ConfigError: malformed flags, repeated names, or an extrinsic for a camera that is not listed.
    """
    listed: list[BagCamera] = list(load_camera_file(camera_file)) if camera_file else []
    listed += [parse_camera_arg(text) for text in cameras]
    names = [camera.name for camera in listed]
    if len(set(names)) != len(names):
        raise ConfigError(f'camera names repeat: {names}')
    by_name = {camera.name: camera for camera in listed}
    overrides: dict[str, BagCamera] = {}
    for text in extrinsics:
        name, extrinsic = parse_extrinsic_arg(text)
        if name in overrides:
            raise ConfigError(f'two extrinsics for camera {name}')
        if listed and name not in by_name:
            raise ConfigError(f'--extrinsic {name}: no camera {name} (cameras: {", ".join(names)})')
        overrides[name] = BagCamera(name=name, extrinsic=extrinsic)
    if not listed:
        return tuple(overrides.values())
    return tuple(
        replace(camera, extrinsic=overrides[camera.name].extrinsic) if camera.name in overrides else camera
        for camera in listed
    )


# ----------------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------------


def _choose(connections: Sequence[Any], types: Sequence[str], wanted: str, what: str, where: Path) -> str | None:
    if wanted:
        matching = [c for c in connections if c.topic == wanted]
        if not matching:
            return None
        bad = [c.msgtype for c in matching if c.msgtype not in types]
        if bad:
            raise CaptureError(f'{where}: topic {wanted} has type {bad[0]}, expected {" or ".join(types)}')
        return wanted
    topics = sorted({c.topic for c in connections if c.msgtype in types})
    if what == 'image' and len(topics) > 1:
        colour = [topic for topic in topics if 'depth' not in topic.lower()]
        topics = colour or topics  # a depth stream beside the colour camera is not a candidate
    if len(topics) > 1:
        hint = ' or read them as several cameras (--camera NAME:TOPIC, --extrinsic NAME:...)' if what == 'image' else ''
        raise CaptureError(f'{where}: several {what} topics {topics}; name one (e.g. --bag-{what}-topic){hint}')
    return topics[0] if topics else None


def recording_camera_entry(
    name: str,
    image_topic: str,
    camera_info_topic: str,
    extrinsic: npt.ArrayLike,
    *,
    image_transport: str = 'raw',
) -> dict[str, Any]:
    """One camera of a ``recording.json`` ``cameras`` list (what :func:`camera_from_mapping` reads back).

    Args:
        extrinsic: ``T_base_camera_optical``, a ``(4, 4)`` transform (metres, ``base_link`` frame).
    """
    (tx, ty, tz), quaternion = pose_fields(extrinsic)
    return {
        'name': name,
        'image_topic': image_topic,
        'image_transport': image_transport,
        'camera_info_topic': camera_info_topic,
        'extrinsic_translation': [tx, ty, tz],
        'extrinsic_rotation_xyzw': list(quaternion),
    }


def write_recording_json(folder: str | Path, cameras: Sequence[dict[str, Any]], *, odometry_topic: str) -> Path:
    """Write ``recording.json`` into the bag ``folder``: its cameras (:func:`recording_camera_entry`) and
    odometry topic, marked closed, so that a build or replay of the bag needs no camera flags.

    Returns:
        The file written.
    """
    target = Path(folder) / RECORDING_FILENAME
    record = {'cameras': list(cameras), 'parameters': {'odometry_topic': odometry_topic}, 'closed': True}
    target.write_text(json.dumps(record, indent=2, sort_keys=True) + '\n')
    return target


class _Recording:
    """The ``recording.json`` beside a recording, read on first use (errors only when it is consulted)."""

    def __init__(self, root: Path) -> None:
        self.path = root / RECORDING_FILENAME if root.is_dir() else root.parent / RECORDING_FILENAME
        self._data: dict[str, Any] | None = None
        self._loaded = False

    def data(self) -> dict[str, Any] | None:
        if not self._loaded:
            self._loaded = True
            if self.path.is_file():
                try:
                    data = json.loads(self.path.read_text())
                except (OSError, ValueError) as error:
                    raise CaptureError(f'{self.path}: cannot read the recording: {error}') from error
                if not isinstance(data, dict):
                    raise CaptureError(f'{self.path}: not a recording (a JSON object is expected)')
                self._data = data
        return self._data

    def cameras(self) -> list[BagCamera]:
        data = self.data()
        entries = data.get('cameras') if data is not None else None
        if not entries:
            return []
        try:
            if not isinstance(entries, list):
                raise ConfigError('"cameras" is not a list')
            return [camera_from_mapping(entry, str(self.path)) for entry in entries]
        except ConfigError as error:
            raise CaptureError(f'{self.path}: cannot read the cameras: {error}') from error

    def legacy_extrinsic(self) -> tuple[float, ...] | None:
        """The top-level extrinsic parameters (a single-camera recorder's)."""
        data = self.data()
        if data is None:
            return None
        params = data.get('parameters', data)
        if isinstance(params, dict) and 'cameras' in data and 'extrinsic_translation' not in params:
            return None  # the extrinsics are in the camera list only
        try:
            return _extrinsic_tuple(params['extrinsic_translation'], params['extrinsic_rotation_xyzw'], 'recording')
        except (KeyError, TypeError, ConfigError) as error:
            raise CaptureError(f'{self.path}: cannot read the extrinsic: {error}') from error

    def legacy_name(self) -> str:
        data = self.data()
        params = data.get('parameters', data) if data is not None else {}
        name = params.get('camera_id') if isinstance(params, dict) else None
        return name if isinstance(name, str) and name else 'camera'


_DEFAULT_EXTRINSIC = tuple(float(v) for v in base_to_optical_extrinsic().reshape(-1))


def _recorded_or_assumed_extrinsic(recording: _Recording, camera: str, where: Path) -> tuple[float, ...]:
    """The recording's single-camera extrinsic, else the default forward-looking mount with a loud warning:
    a camera pitched, turned or raised on the robot gets wrong pitch and yaw labels under that assumption."""
    recorded = recording.legacy_extrinsic()
    if recorded is not None:
        return recorded
    _LOG.warning(
        '%s: camera %s has no recorded extrinsic (no %s with its mount) and none was given: ASSUMING the default '
        'forward-looking mount at base_link (T_base_camera_optical translation 0,0,0, rotation xyzw %s). If the '
        'camera was pitched, turned or offset, the labels are wrong: pass --extrinsic-translation/'
        '--extrinsic-rotation-xyzw or --extrinsic %s:TX,TY,TZ,QX,QY,QZ,QW, or write a %s beside the bag.',
        where,
        camera,
        RECORDING_FILENAME,
        ','.join(f'{v:.6g}' for v in BASE_TO_OPTICAL_QUATERNION_XYZW),
        camera,
        RECORDING_FILENAME,
    )
    return _DEFAULT_EXTRINSIC


def _image_type(connections: Sequence[Any], topic: str, camera: str, where: Path) -> str:
    types = {c.msgtype for c in connections if c.topic == topic}
    if not types:
        raise CaptureError(f'{where}: camera {camera}: no topic {topic} in the bag')
    bad = sorted(types - set(_IMAGE_TYPES))
    if bad:
        raise CaptureError(f'{where}: camera {camera}: topic {topic} has type {bad[0]}, expected an image type')
    return str(sorted(types)[0])


def _info_topic(connections: Sequence[Any], wanted: str, image_topic: str) -> str | None:
    infos = {c.topic for c in connections if c.msgtype == CAMERA_INFO_TYPE}
    if wanted:
        return wanted if wanted in infos else None
    derived = default_camera_info_topic(image_topic)
    return derived if derived in infos else None


def _layout(connections: Sequence[Any], options: SourceOptions, recording: _Recording, where: Path) -> BagLayout:
    odometry = _choose(connections, (ODOMETRY_TYPE,), options.odometry_topic, 'odometry', where)
    if odometry is None:
        raise CaptureError(
            f'{where}: no nav_msgs/Odometry topic {options.odometry_topic}'.rstrip()
            + ' (the camera pose comes from odometry)'
        )
    single_explicit = not options.cameras and (options.image_topic or options.extrinsic is not None)
    recorded = [] if options.extrinsic is not None and not options.cameras else recording.cameras()
    if options.cameras and options.cameras[0].image_topic:
        specs, named = list(options.cameras), True
    elif options.cameras:
        known = {camera.name: camera for camera in recorded}
        unknown = [camera.name for camera in options.cameras if camera.name not in known]
        if unknown:
            listed = ', '.join(known) or f'none ({recording.path} lists no cameras)'
            raise CaptureError(f'{where}: extrinsic for cameras {unknown} not in the recording (cameras: {listed})')
        overrides = {camera.name: camera.extrinsic for camera in options.cameras}
        specs = [replace(camera, extrinsic=overrides.get(camera.name, camera.extrinsic)) for camera in recorded]
        named = len(specs) > 1
    elif len(recorded) > 1 and not single_explicit:
        specs, named = recorded, True
    else:
        return BagLayout((_single_camera(connections, options, recording, recorded, where),), odometry, False)
    by_name = {camera.name: camera for camera in recorded}
    by_topic = {camera.image_topic: camera for camera in recorded}
    cameras: list[RecordedCamera] = []
    for spec in specs:
        stored = by_name.get(spec.name) or by_topic.get(spec.image_topic)
        image_topic = spec.image_topic or (stored.image_topic if stored else '')
        if not image_topic:
            raise CaptureError(f'{where}: camera {spec.name} has no image topic')
        extrinsic = spec.extrinsic or (stored.extrinsic if stored else None)
        if extrinsic is None and len(specs) == 1:
            extrinsic = _recorded_or_assumed_extrinsic(recording, spec.name, where)
        if extrinsic is None:
            raise CaptureError(
                f'{where}: camera {spec.name} has no extrinsic: give --extrinsic {spec.name}:TX,TY,TZ,QX,QY,QZ,QW '
                '(T_base_camera_optical) or a camera file, or record with bag_recorder (recording.json)'
            )
        info_wanted = spec.camera_info_topic or (stored.camera_info_topic if stored else '')
        cameras.append(
            RecordedCamera(
                name=spec.name,
                image_topic=image_topic,
                image_type=_image_type(connections, image_topic, spec.name, where),
                camera_info_topic=_info_topic(connections, info_wanted, image_topic),
                extrinsic=tuple(extrinsic),
            )
        )
    topics = [camera.image_topic for camera in cameras]
    if len(set(topics)) != len(topics):
        raise CaptureError(f'{where}: two cameras read the same image topic: {topics}')
    return BagLayout(tuple(cameras), odometry, named)


def _single_camera(
    connections: Sequence[Any], options: SourceOptions, recording: _Recording, recorded: list[BagCamera], where: Path
) -> RecordedCamera:
    image = _choose(connections, _IMAGE_TYPES, options.image_topic, 'image', where)
    if image is None:
        raise CaptureError(f'{where}: no sensor_msgs/Image or CompressedImage topic {options.image_topic}'.rstrip())
    stored = next((camera for camera in recorded if camera.image_topic == image), None)
    try:
        camera_info = _choose(connections, (CAMERA_INFO_TYPE,), options.camera_info_topic, 'camera_info', where)
    except CaptureError:
        # Several CameraInfo topics (a multi-camera bag read as one camera): the recording's, or the one beside it.
        camera_info = _info_topic(connections, stored.camera_info_topic if stored else '', image)
        if camera_info is None:
            raise
    if options.extrinsic is not None:
        extrinsic = tuple(float(v) for v in options.extrinsic)
    elif stored is not None and stored.extrinsic is not None:
        extrinsic = stored.extrinsic
    else:
        extrinsic = _recorded_or_assumed_extrinsic(recording, recording.legacy_name(), where)
    try:
        validate_transform(np.asarray(extrinsic, dtype=np.float64).reshape(4, 4), name='extrinsic')
    except PoseError as error:
        raise CaptureError(f'{where}: {error}') from error
    name = stored.name if stored is not None else recording.legacy_name()
    image_type = next(c.msgtype for c in connections if c.topic == image)
    return RecordedCamera(name, image, image_type, camera_info, extrinsic)


def read_bag_layout(path: str | Path, options: SourceOptions = DEFAULT_SOURCE_OPTIONS) -> BagLayout:
    """The cameras (topics, message types, extrinsics) and odometry topic a recording is read with, from its
    first readable part and ``recording.json`` (no message is read; what the demo and replay need). A cut part
    is salvaged (:func:`~actial_ros.sources.bag_reading.open_part`, with a warning): its topics are those of
    its complete records.

    Raises:
        CaptureError: not a recording, no readable part, or topics/cameras that do not resolve
            (see :meth:`RosbagCapture.open`).
    """
    root = Path(path).expanduser().resolve()
    parts = bag_parts(root)
    if not parts:
        raise CaptureError(f'{root} is not a rosbag2 recording (no metadata.yaml, .mcap or .db3)')
    recording = _Recording(root)
    typestore = default_typestore()
    errors = []
    for part in parts:
        try:
            with open_part(part, typestore) as reader:
                connections = list(reader.connections)
        except Exception as error:  # BagReadError, OSError: try the next part
            errors.append(f'{part}: {type(error).__name__}: {error}')
            continue
        return _layout(connections, options, recording, part)
    raise CaptureError(f'{root}: no readable bag: {"; ".join(errors)}')


def image_message_counts(path: str | Path, topics: Iterable[str]) -> dict[str, int]:
    """Messages per topic over every readable part of a recording, from the bags' metadata/indexes (a salvaged
    part: the messages recovered from it)."""
    wanted = set(topics)
    counts = dict.fromkeys(sorted(wanted), 0)
    typestore = default_typestore()
    for part in bag_parts(path):
        try:
            with open_part(part, typestore) as reader:
                for connection in reader.connections:
                    if connection.topic in wanted:
                        counts[connection.topic] += int(connection.msgcount)
        except Exception:  # an unreadable part counts nothing
            continue
    return counts


class RosbagCapture(PosedCapture):
    """A rosbag2 recording: the images of one or several cameras posed by odometry. Build with :meth:`open`.

    Images are read from the bag when asked for (:meth:`iter_images` reads the image topics once for any
    number of images).
    """

    kind = SourceKind.ROSBAG
    metric = True

    def __init__(
        self,
        path: Path,
        object_id: str,
        views: tuple[PosedView, ...],
        parts: tuple[Path, ...],
        layout: BagLayout,
        view_cameras: tuple[int, ...],
        skips: Counter[str],
    ) -> None:
        """Wrap already-read views; use :meth:`open`."""
        self.path = path
        self.object_id = object_id
        self.views = views
        self.skips = skips
        self._parts = parts
        self._layout = layout
        self._view_cameras = view_cameras
        self._index = {
            (layout.cameras[camera].image_topic, view.stamp_ns): i
            for i, (view, camera) in enumerate(zip(views, view_cameras, strict=True))
        }

    @property
    def topics(self) -> tuple[str, str, str | None]:
        """``(image, odometry, camera_info)`` topics of the first camera (camera_info ``None`` when absent)."""
        first = self._layout.cameras[0]
        return first.image_topic, self._layout.odometry_topic, first.camera_info_topic

    @property
    def layout(self) -> BagLayout:
        """The cameras and odometry topic read."""
        return self._layout

    @property
    def cameras(self) -> tuple[RecordedCamera, ...]:
        """The cameras read (one for a single-camera bag)."""
        return self._layout.cameras

    def view_camera(self, index: int) -> str:
        """The name of the camera that took view ``index``."""
        return self._layout.cameras[self._view_cameras[index]].name

    @property
    def parts(self) -> tuple[Path, ...]:
        """The readable parts of the recording."""
        return self._parts

    @classmethod
    def open(
        cls, path: str | Path, *, object_id: str | None = None, options: SourceOptions = DEFAULT_SOURCE_OPTIONS
    ) -> RosbagCapture:
        """Read a recording's odometry, camera infos and image stamps, and pose every image of every camera.

        Args:
            path: a bag folder, a ``.mcap`` file or a split recording folder.
            object_id: the object id; default: the folder name (a file's stem).
            options: topics or cameras, extrinsics and odometry matching.

        Raises:
            CaptureError: see the module docstring.
        """
        root = Path(path).expanduser().resolve()
        parts = bag_parts(root)
        if not parts:
            raise CaptureError(f'{root} is not a rosbag2 recording (no metadata.yaml, .mcap or .db3)')
        recording = _Recording(root)
        typestore = default_typestore()
        skips: Counter[str] = Counter()

        readable: list[Path] = []
        errors: list[str] = []
        odometry: list[tuple[int, FloatArray | None]] = []
        camera_infos: list[list[tuple[int, CameraIntrinsics | None]]] = []
        image_stamps: list[list[int]] = []
        layout: BagLayout | None = None
        for part in parts:
            try:
                with open_part(part, typestore) as reader:
                    part_layout = _layout(reader.connections, options, recording, part)
                    if layout is not None and part_layout != layout:
                        raise CaptureError(f'{part}: cameras/topics {part_layout} differ from the first part {layout}')
                    if layout is None:
                        layout = part_layout
                        camera_infos = [[] for _ in layout.cameras]
                        image_stamps = [[] for _ in layout.cameras]
                    image_of = {camera.image_topic: k for k, camera in enumerate(layout.cameras)}
                    info_of: dict[str, list[int]] = {}
                    for k, camera in enumerate(layout.cameras):
                        if camera.camera_info_topic is not None:
                            info_of.setdefault(camera.camera_info_topic, []).append(k)
                    topics = {layout.odometry_topic, *image_of, *info_of}
                    wanted = [c for c in reader.connections if c.topic in topics]
                    for connection, _, raw in reader.messages(connections=wanted):
                        camera_index = image_of.get(connection.topic)
                        if camera_index is not None:
                            try:
                                image_stamps[camera_index].append(cdr_header_stamp_ns(raw))
                            except ValueError:
                                skips['bad_message'] += 1
                            continue
                        try:
                            msg: Any = reader.deserialize(raw, connection.msgtype)
                        except Exception:  # rosbags raises several types for corrupt CDR
                            skips['bad_message'] += 1
                            continue
                        try:
                            stamp = int(msg.header.stamp.sec) * _NS + int(msg.header.stamp.nanosec)
                        except (AttributeError, TypeError, ValueError):
                            skips['bad_message'] += 1
                            continue
                        if connection.topic == layout.odometry_topic:
                            try:
                                odometry.append((stamp, odometry_to_transform(msg)))
                            except (PoseError, ValueError):
                                odometry.append((stamp, None))
                        else:
                            try:
                                intrinsics: CameraIntrinsics | None = camera_info_to_intrinsics(msg)
                            except (PoseError, ValueError):
                                intrinsics = None
                            for k in info_of.get(connection.topic, ()):
                                camera_infos[k].append((stamp, intrinsics))
                    if reader.salvage is not None:  # set after reading when rosbags failed half-way
                        skips.update(reader.salvage.counters())
                readable.append(part)
            except BagReadError as error:  # nothing recoverable
                skips['unreadable_bag'] += 1
                errors.append(str(error))
            except CaptureError:
                raise
            except Exception as error:  # OSError, errors of a file that changed while read
                skips['unreadable_bag'] += 1
                errors.append(f'{part}: {type(error).__name__}: {error}')
        if layout is None or not readable:
            raise CaptureError(f'{root}: no readable bag: {"; ".join(errors)}')

        history = cls._odometry_history(odometry, options, skips, root)
        several = len(layout.cameras) > 1
        entries: list[tuple[int, str, int, PosedView]] = []
        for k, camera in enumerate(layout.cameras):
            label = f' of camera {camera.name}' if several else ''
            infos = camera_infos[k]
            if options.require_camera_info and camera.camera_info_topic is None:
                if several and not image_stamps[k]:
                    continue  # a camera that recorded nothing needs no intrinsics
                raise CaptureError(f'{root}: no sensor_msgs/CameraInfo topic{label} (intrinsics are required)')
            if options.require_camera_info and image_stamps[k] and not any(i is not None for _, i in infos):
                raise CaptureError(
                    f'{root}: no valid sensor_msgs/CameraInfo message on {camera.camera_info_topic}{label} '
                    f'(intrinsics are required; skipped: {dict(skips)})'
                )
            intrinsics_at = cls._camera_info_lookup(infos, skips)
            extrinsic = camera.matrix
            seen: set[int] = set()
            for stamp in sorted(image_stamps[k]):
                if stamp in seen:
                    skips['duplicate_stamp'] += 1
                    continue
                seen.add(stamp)
                result = history.lookup(stamp)
                if result is None:
                    result = history.hold_newest(stamp)
                    if result is None:
                        result = DropReason.NO_ODOMETRY
                if isinstance(result, DropReason):
                    skips[result.value] += 1
                    continue
                intrinsics = intrinsics_at(stamp)
                if intrinsics is None and options.require_camera_info:
                    skips['no_camera_info'] += 1
                    continue
                pose = camera_pose_from_odometry(result, extrinsic)
                pose.setflags(write=False)
                name = view_name(camera.name, stamp) if layout.named_views else str(stamp)
                entries.append(
                    (
                        stamp,
                        camera.name,
                        k,
                        PosedView(name=name, t_world_camera=pose, intrinsics=intrinsics, stamp_ns=stamp),
                    )
                )
        if not entries:
            raise CaptureError(f'{root}: no image could be posed from odometry (skipped: {dict(skips)})')
        entries.sort(key=lambda entry: (entry[0], entry[1]))
        name = object_id or (root.stem if root.is_file() else root.name)
        views = tuple(entry[3] for entry in entries)
        view_cameras = tuple(entry[2] for entry in entries)
        return cls(root, name, views, tuple(readable), layout, view_cameras, skips)

    @staticmethod
    def _odometry_history(
        odometry: list[tuple[int, FloatArray | None]], options: SourceOptions, skips: Counter[str], root: Path
    ) -> OdometryHistory:
        policy = OdometryMatchPolicy(
            max_interpolation_gap_s=options.max_interpolation_gap_s,
            max_extrapolation_s=options.max_extrapolation_s,
            time_reset_s=options.time_reset_s,
            history=max(2, len(odometry) + 1),
        )
        # In recorded order: an isolated stamp far from its neighbours is an outlier (skipped); a
        # confirmed jump back means two timelines in one recording (an error), as the node decides live.
        guard: TimelineGuard[FloatArray | None] = TimelineGuard(
            jump_s=policy.time_reset_s, confirmations=policy.time_jump_confirmations
        )
        kept: list[tuple[int, FloatArray | None]] = []
        for stamp, pose in odometry:
            verdict = guard.offer(stamp, pose)
            skips[DropReason.TIME_OUTLIER.value] += len(verdict.outliers)
            if verdict.jump is Jump.BACKWARD:
                back_s = (max(t for t, _ in kept) - verdict.accepted[0][0]) / _NS
                raise CaptureError(
                    f'{root}: odometry stamps jump back by {back_s:.3f} s (more than time_reset_s='
                    f'{options.time_reset_s:g}, confirmed by {policy.time_jump_confirmations} stamps): the '
                    'recording holds several timelines; split it'
                )
            kept.extend(verdict.accepted)
        skips[DropReason.TIME_OUTLIER.value] += len(guard.reset())  # unconfirmed at the end of the recording
        if not skips[DropReason.TIME_OUTLIER.value]:
            del skips[DropReason.TIME_OUTLIER.value]
        history = OdometryHistory(policy)
        for stamp, pose in sorted(kept, key=lambda sample: sample[0]):
            if pose is None:
                skips[DropReason.BAD_ODOMETRY.value] += 1
                continue
            reason = history.add(stamp, pose)
            if reason is not None:
                skips[reason.value] += 1
        if len(history) == 0:
            raise CaptureError(f'{root}: no valid nav_msgs/Odometry message (skipped: {dict(skips)})')
        return history

    @staticmethod
    def _camera_info_lookup(camera_infos: list[tuple[int, CameraIntrinsics | None]], skips: Counter[str]) -> Any:
        valid = sorted((stamp, k) for stamp, k in camera_infos if k is not None) if camera_infos else []
        bad = sum(1 for _, k in camera_infos if k is None)
        if bad:
            skips['bad_camera_info'] += bad
        stamps = [stamp for stamp, _ in valid]

        def lookup(stamp: int) -> CameraIntrinsics | None:
            if not valid:
                return None
            index = bisect.bisect_right(stamps, stamp)
            return valid[index - 1][1] if index > 0 else valid[0][1]

        return lookup

    def load_image(self, index: int) -> RgbImage:
        """Decode the image of view ``index`` (reads the image topics until it is found).

        Raises:
            ImageError: the message cannot be decoded.
        """
        for _, image in self.iter_images([index]):
            if isinstance(image, ImageError):
                raise image
            return image
        raise ImageError(f'{self.path}: image {self.views[index].name} not found')

    def iter_images(self, indices: Iterable[int]) -> Iterator[tuple[int, RgbImage | ImageError]]:
        """Decode several views' images in one pass over the image topics (in bag order).

        Yields each requested index once: an image, or the :class:`ImageError` explaining why not (an
        undecodable message, or a message no longer found).
        """
        wanted = {
            (self._layout.cameras[self._view_cameras[i]].image_topic, self.views[i].stamp_ns): i
            for i in sorted(set(indices))
        }
        if not wanted:
            return
        topics = {topic for topic, _ in wanted}
        typestore = default_typestore()
        for part in self._parts:
            if not wanted:
                break
            try:
                with open_part(part, typestore, warn=False) as reader:  # a salvaged part was reported by open()
                    connections = [c for c in reader.connections if c.topic in topics]
                    for connection, _, raw in reader.messages(connections=connections):
                        try:
                            stamp = cdr_header_stamp_ns(raw)
                        except ValueError:
                            continue
                        index = wanted.pop((connection.topic, stamp), None)
                        if index is None:
                            continue
                        yield index, self._decode(reader, raw, connection.msgtype)
                        if not wanted:
                            break
            except Exception:  # a part that became unreadable: its images are reported missing below
                continue
        for index in wanted.values():
            yield index, ImageError(f'{self.path}: image {self.views[index].name} not found in the bag')

    @staticmethod
    def _decode(reader: Any, raw: bytes, msgtype: str) -> RgbImage | ImageError:
        try:
            msg = reader.deserialize(raw, msgtype)
        except Exception as error:
            return ImageError(f'undecodable {msgtype} message: {type(error).__name__}: {error}')
        try:
            return compressed_msg_to_rgb(msg) if msgtype == COMPRESSED_IMAGE_TYPE else image_msg_to_rgb(msg)
        except ImageError as error:
            return error


# ----------------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------------


class SplitBagWriter:
    """Write raw CDR messages to a recording split into rosbag2 parts by size, within a disk budget.

    Parts are ``directory/{prefix}_0000``, ``{prefix}_0001``, ... (each a complete rosbag2 folder with
    ``metadata.yaml``, written when the part is closed); :class:`RosbagCapture` reads the folder as one
    recording. A writer that dies (power loss) leaves only its current part cut: the closed parts are whole,
    and the cut part's complete records (mcap: all but its last, about 1 MiB, chunk) are salvaged on reading
    (:mod:`actial_ros.sources.bag_reading`). A new part starts when the current one would exceed
    ``max_part_bytes``; the last message of each ``sticky`` topic (e.g. camera_info) is written again at the
    start of every new part, so each part is self-contained. Sizes are counted as payload + 40 bytes per
    message.

    Args:
        directory: the recording folder (created; existing parts are left alone and numbering continues
            after them).
        storage: ``'mcap'`` or ``'sqlite3'``.
        max_part_bytes: size at which a new part starts (> 0).
        max_total_bytes: disk budget of this writer; once a message would exceed it, it and every later
            message are refused (counted in :attr:`refused`); ``None``: unlimited.
        prefix: part folder prefix.
        typestore: message definitions for the connections (default: :func:`default_typestore`).

    Raises:
        ConfigError: invalid storage or sizes.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        storage: str = 'mcap',
        max_part_bytes: int = 512 * 1024 * 1024,
        max_total_bytes: int | None = None,
        prefix: str = 'bag',
        typestore: Typestore | None = None,
    ) -> None:
        from rosbags.rosbag2 import StoragePlugin

        plugins = {'mcap': StoragePlugin.MCAP, 'sqlite3': StoragePlugin.SQLITE3}
        if storage not in plugins:
            raise ConfigError(f"storage must be 'mcap' or 'sqlite3', got {storage!r}")
        if max_part_bytes <= 0 or (max_total_bytes is not None and max_total_bytes <= 0):
            raise ConfigError(f'sizes must be > 0, got part {max_part_bytes}, total {max_total_bytes}')
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._plugin = plugins[storage]
        self._max_part = int(max_part_bytes)
        self._max_total = max_total_bytes
        self._prefix = prefix
        self._typestore = typestore or default_typestore()
        self._topics: dict[str, str] = {}
        self._sticky: dict[str, tuple[int, bytes] | None] = {}
        self._writer: Any = None
        self._connections: dict[str, Any] = {}
        self._part_bytes = 0
        existing = sorted(self.directory.glob(f'{prefix}_[0-9][0-9][0-9][0-9]'))
        self._next_index = int(existing[-1].name.rsplit('_', 1)[1]) + 1 if existing else 0
        self.parts: list[Path] = []
        """Parts written by this writer, in order."""
        self.bytes_written = 0
        """Bytes counted so far (payload + per-message overhead)."""
        self.messages_written: Counter[str] = Counter()
        """Messages written per topic."""
        self.refused = 0
        """Messages refused because the disk budget was spent."""

    @property
    def budget_exhausted(self) -> bool:
        """True once a message was refused for the disk budget (recording has stopped)."""
        return self.refused > 0

    def add_topic(self, topic: str, msgtype: str, *, sticky: bool = False) -> None:
        """Declare a topic before writing to it (``sticky``: repeat its last message in each new part)."""
        self._topics[topic] = msgtype
        if sticky:
            self._sticky.setdefault(topic, None)
        if self._writer is not None and topic not in self._connections:
            self._connections[topic] = self._writer.add_connection(topic, msgtype, typestore=self._typestore)

    def write(self, topic: str, timestamp_ns: int, raw: bytes | bytearray | memoryview) -> bool:
        """Write one CDR message; returns ``False`` when refused for the disk budget.

        Raises:
            ConfigError: the topic was not declared with :meth:`add_topic`.
        """
        if topic not in self._topics:
            raise ConfigError(f'topic {topic} was not declared with add_topic()')
        data = bytes(raw)
        size = len(data) + _MESSAGE_OVERHEAD
        if self.refused or (self._max_total is not None and self.bytes_written + size > self._max_total):
            self.refused += 1
            return False
        if self._writer is None or (self._part_bytes > 0 and self._part_bytes + size > self._max_part):
            self._open_part()
        self._write(topic, timestamp_ns, data)
        if topic in self._sticky:
            self._sticky[topic] = (timestamp_ns, data)
        return True

    def _write(self, topic: str, timestamp_ns: int, data: bytes) -> None:
        self._writer.write(self._connections[topic], int(timestamp_ns), data)
        size = len(data) + _MESSAGE_OVERHEAD
        self._part_bytes += size
        self.bytes_written += size
        self.messages_written[topic] += 1

    def _open_part(self) -> None:
        from rosbags.rosbag2 import Writer

        self._close_part()
        path = self.directory / f'{self._prefix}_{self._next_index:04d}'
        self._next_index += 1
        writer = Writer(path, version=9, storage_plugin=self._plugin)
        writer.open()
        self._writer = writer
        self._connections = {
            topic: writer.add_connection(topic, msgtype, typestore=self._typestore)
            for topic, msgtype in self._topics.items()
        }
        self._part_bytes = 0
        self.parts.append(path)
        for topic, last in self._sticky.items():
            if last is not None:
                self._write(topic, last[0], last[1])

    def _close_part(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def close(self) -> None:
        """Close the current part (writes its ``metadata.yaml``). Idempotent."""
        self._close_part()

    def __enter__(self) -> SplitBagWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _header(typestore: Typestore, stamp_ns: int, frame_id: str) -> Any:
    sec, nanosec = ns_to_stamp(stamp_ns)
    header_cls = typestore.types['std_msgs/msg/Header']
    time_cls = typestore.types['builtin_interfaces/msg/Time']
    return header_cls(stamp=time_cls(sec=sec, nanosec=nanosec), frame_id=frame_id)


def odometry_cdr(
    typestore: Typestore,
    stamp_ns: int,
    t_odom_base: npt.ArrayLike,
    *,
    frame_id: str = 'odom',
    child_frame_id: str = 'base_link',
    linear_velocity: npt.ArrayLike = (0.0, 0.0, 0.0),
    angular_velocity: npt.ArrayLike = (0.0, 0.0, 0.0),
    position_override: Sequence[float] | None = None,
) -> bytes:
    """CDR bytes of a ``nav_msgs/Odometry`` holding ``T_odom_base`` (zero covariance).

    ``linear_velocity`` (m/s) and ``angular_velocity`` (rad/s) fill the twist, in ``child_frame_id``;
    ``position_override`` writes those values as the position verbatim (tests: NaN odometry).
    """
    types = typestore.types
    (x, y, z), (qx, qy, qz, qw) = pose_fields(t_odom_base)
    if position_override is not None:
        x, y, z = (float(v) for v in position_override)
    point = types['geometry_msgs/msg/Point'](x=x, y=y, z=z)
    quaternion = types['geometry_msgs/msg/Quaternion'](x=qx, y=qy, z=qz, w=qw)
    pose = types['geometry_msgs/msg/Pose'](position=point, orientation=quaternion)
    zeros = np.zeros(36, dtype=np.float64)
    vector = types['geometry_msgs/msg/Vector3']
    twist = types['geometry_msgs/msg/Twist'](
        linear=vector(*(float(v) for v in np.ravel(linear_velocity))),
        angular=vector(*(float(v) for v in np.ravel(angular_velocity))),
    )
    msg = types[ODOMETRY_TYPE](
        header=_header(typestore, stamp_ns, frame_id),
        child_frame_id=child_frame_id,
        pose=types['geometry_msgs/msg/PoseWithCovariance'](pose=pose, covariance=zeros),
        twist=types['geometry_msgs/msg/TwistWithCovariance'](twist=twist, covariance=zeros.copy()),
    )
    return bytes(typestore.serialize_cdr(msg, ODOMETRY_TYPE))


def camera_info_cdr(
    typestore: Typestore, stamp_ns: int, intrinsics: CameraIntrinsics, *, frame_id: str = 'camera_optical_frame'
) -> bytes:
    """CDR bytes of a ``sensor_msgs/CameraInfo`` for pinhole ``intrinsics`` (plumb_bob, zero distortion;
    :func:`actial_ros.messages.camera_info_fields`)."""
    types = typestore.types
    fields = camera_info_fields(intrinsics)
    roi = types['sensor_msgs/msg/RegionOfInterest'](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    msg = types[CAMERA_INFO_TYPE](
        header=_header(typestore, stamp_ns, frame_id),
        height=fields['height'],
        width=fields['width'],
        distortion_model=fields['distortion_model'],
        d=np.asarray(fields['d'], dtype=np.float64),
        k=np.asarray(fields['k'], dtype=np.float64),
        r=np.asarray(fields['r'], dtype=np.float64),
        p=np.asarray(fields['p'], dtype=np.float64),
        binning_x=0,
        binning_y=0,
        roi=roi,
    )
    return bytes(typestore.serialize_cdr(msg, CAMERA_INFO_TYPE))


def compressed_image_cdr(
    typestore: Typestore, stamp_ns: int, data: bytes, *, fmt: str = 'jpeg', frame_id: str = 'camera_optical_frame'
) -> bytes:
    """CDR bytes of a ``sensor_msgs/CompressedImage`` carrying encoded image ``data``."""
    msg = typestore.types[COMPRESSED_IMAGE_TYPE](
        header=_header(typestore, stamp_ns, frame_id), format=fmt, data=np.frombuffer(data, dtype=np.uint8)
    )
    return bytes(typestore.serialize_cdr(msg, COMPRESSED_IMAGE_TYPE))


def image_fields_cdr(
    typestore: Typestore, stamp_ns: int, fields: ImageFields, *, frame_id: str = 'camera_optical_frame'
) -> bytes:
    """CDR bytes of a ``sensor_msgs/Image`` with ``fields`` (any encoding, e.g. 32FC1 depth)."""
    msg = typestore.types[IMAGE_TYPE](
        header=_header(typestore, stamp_ns, frame_id),
        height=fields.height,
        width=fields.width,
        encoding=fields.encoding,
        is_bigendian=fields.is_bigendian,
        step=fields.step,
        data=np.frombuffer(fields.data, dtype=np.uint8),
    )
    return bytes(typestore.serialize_cdr(msg, IMAGE_TYPE))


def image_cdr(
    typestore: Typestore,
    stamp_ns: int,
    rgb: npt.NDArray[np.uint8],
    *,
    encoding: str = 'rgb8',
    frame_id: str = 'camera_optical_frame',
) -> bytes:
    """CDR bytes of a ``sensor_msgs/Image`` of ``rgb`` (``(H, W, 3)`` uint8) in ``encoding``.

    Raises:
        ImageError: an unsupported ``encoding`` (:func:`actial_ros.imaging.rgb_to_image_fields`).
    """
    return image_fields_cdr(typestore, stamp_ns, rgb_to_image_fields(rgb, encoding), frame_id=frame_id)


def write_capture_bag(
    capture: PosedCapture,
    path: str | Path,
    *,
    storage: str = 'mcap',
    transport: str = 'compressed',
    rate_hz: float = 10.0,
    start_ns: int = 1_700_000_000 * _NS,
    extrinsic: npt.ArrayLike | None = None,
    image_topic: str | None = None,
    camera_info_topic: str = '/camera/camera_info',
    odometry_topic: str = '/odom',
    jpeg_quality: int = 95,
) -> list[int]:
    """Export a posed capture as a rosbag2 bag, as a robot would have recorded it.

    View ``i`` is stamped ``start_ns + i / rate_hz``; odometry carries
    ``T_odom_base = T_world_camera @ inv(T_base_camera_optical)`` at the same stamp, so reading the bag
    back with the same extrinsic gives the capture's poses. CompressedImage JPEG (``transport
    'compressed'``) or Image rgb8 (``'raw'``); a CameraInfo per image.

    Returns:
        The image stamps (ns), in view order.

    Raises:
        ConfigError: bad transport or rate; WriterError from rosbags when ``path`` exists.
    """
    from actial_ros.geometry import invert_transform
    from actial_ros.imaging import encode_jpeg

    if transport not in ('compressed', 'raw'):
        raise ConfigError(f"transport must be 'compressed' or 'raw', got {transport!r}")
    if not (math.isfinite(rate_hz) and rate_hz > 0):
        raise ConfigError(f'rate_hz must be > 0, got {rate_hz}')
    t_base_camera = base_to_optical_extrinsic() if extrinsic is None else validate_transform(extrinsic)
    base_from_camera = invert_transform(t_base_camera)
    typestore = default_typestore()
    topic = image_topic or ('/camera/image_raw/compressed' if transport == 'compressed' else '/camera/image_raw')
    from rosbags.rosbag2 import StoragePlugin, Writer

    plugins = {'mcap': StoragePlugin.MCAP, 'sqlite3': StoragePlugin.SQLITE3}
    if storage not in plugins:
        raise ConfigError(f"storage must be 'mcap' or 'sqlite3', got {storage!r}")
    stamps: list[int] = []
    with Writer(Path(path), version=9, storage_plugin=plugins[storage]) as writer:
        odom = writer.add_connection(odometry_topic, ODOMETRY_TYPE, typestore=typestore)
        info = writer.add_connection(camera_info_topic, CAMERA_INFO_TYPE, typestore=typestore)
        image_type = COMPRESSED_IMAGE_TYPE if transport == 'compressed' else IMAGE_TYPE
        image = writer.add_connection(topic, image_type, typestore=typestore)
        for index, frame in enumerate(capture.frames()):
            stamp = start_ns + round(index * _NS / rate_hz)
            assert frame.t_world_camera is not None
            writer.write(odom, stamp, odometry_cdr(typestore, stamp, frame.t_world_camera @ base_from_camera))
            if frame.intrinsics is not None:
                writer.write(info, stamp, camera_info_cdr(typestore, stamp, frame.intrinsics))
            if transport == 'compressed':
                data = compressed_image_cdr(typestore, stamp, encode_jpeg(frame.image, jpeg_quality))
            else:
                data = image_cdr(typestore, stamp, frame.image)
            writer.write(image, stamp, data)
            stamps.append(stamp)
    return stamps


@dataclass(frozen=True)
class RigCamera:
    """One camera of a rig exported by :func:`write_rig_bag`.

    Attributes:
        name: camera name (in ``recording.json`` and view names ``NAME@STAMP``).
        capture: the posed capture whose views this camera publishes (all cameras share its world frame).
        indices: the capture's view indices this camera took (view ``k`` is stamped ``start + k / rate``).
        extrinsic: ``T_base_camera_optical`` ``(4, 4)`` (metres, ``base_link``); ``None``: forward-looking.
        image_topic: its image topic; default ``/NAME/image_raw`` (``.../compressed`` when compressed).
        camera_info_topic: its CameraInfo topic; default ``/NAME/camera_info``.
    """

    name: str
    capture: PosedCapture
    indices: tuple[int, ...]
    extrinsic: npt.NDArray[np.float64] | None = None
    image_topic: str = ''
    camera_info_topic: str = ''


def write_rig_bag(
    cameras: Sequence[RigCamera],
    path: str | Path,
    *,
    storage: str = 'mcap',
    transport: str = 'compressed',
    rate_hz: float = 10.0,
    start_ns: int = 1_700_000_000 * _NS,
    odometry_topic: str = '/odom',
    jpeg_quality: int = 95,
    recording_json: bool = True,
    max_part_bytes: int | None = None,
) -> list[tuple[str, int, int]]:
    """Export a rig of cameras as one rosbag2 bag with one odometry stream, as a robot would record it.

    Capture view ``k`` is stamped ``start_ns + k / rate_hz`` for every camera that lists it; the odometry
    message at that stamp carries ``T_odom_base = T_world_camera @ inv(T_base_camera_optical)`` of the FIRST
    such camera, so reading each camera back through its own extrinsic gives the capture's poses whenever
    the rig is consistent (e.g. one capture split into virtual cameras, each view taken by one camera).
    With ``recording_json`` the cameras (topics, extrinsics) are written to ``path/recording.json`` in the
    recorder's format, so the builder reads the bag as a multi-camera recording without flags. With
    ``max_part_bytes``, ``path`` becomes a split recording (``bag_0000/``, ... as ``bag_recorder`` writes,
    through :class:`SplitBagWriter`) instead of one bag folder.

    Returns:
        ``(camera name, capture index, stamp_ns)`` of every image written, in stamp order.

    Raises:
        ConfigError: no camera, repeated names or topics, bad transport, rate or storage, an index out of
            range; WriterError from rosbags when ``path`` exists; ImageError when an image cannot be read.
    """
    from rosbags.rosbag2 import StoragePlugin, Writer

    from actial_ros.geometry import invert_transform
    from actial_ros.imaging import encode_jpeg

    if transport not in ('compressed', 'raw'):
        raise ConfigError(f"transport must be 'compressed' or 'raw', got {transport!r}")
    if not (math.isfinite(rate_hz) and rate_hz > 0):
        raise ConfigError(f'rate_hz must be > 0, got {rate_hz}')
    plugins = {'mcap': StoragePlugin.MCAP, 'sqlite3': StoragePlugin.SQLITE3}
    if storage not in plugins:
        raise ConfigError(f"storage must be 'mcap' or 'sqlite3', got {storage!r}")
    if not cameras or len({c.name for c in cameras}) != len(cameras):
        raise ConfigError('a rig needs at least one camera and unique camera names')
    suffix = '/compressed' if transport == 'compressed' else ''
    image_topics = [c.image_topic or f'/{c.name}/image_raw{suffix}' for c in cameras]
    info_topics = [c.camera_info_topic or f'/{c.name}/camera_info' for c in cameras]
    if len(set(image_topics + info_topics)) != 2 * len(cameras):
        raise ConfigError(f'camera topics repeat: {image_topics + info_topics}')
    extrinsics = [
        base_to_optical_extrinsic() if c.extrinsic is None else validate_transform(c.extrinsic) for c in cameras
    ]
    for camera in cameras:
        bad = [k for k in camera.indices if not 0 <= k < len(camera.capture.views)]
        if bad:
            raise ConfigError(f'camera {camera.name}: view indices {bad} out of range')
    typestore = default_typestore()
    image_type = COMPRESSED_IMAGE_TYPE if transport == 'compressed' else IMAGE_TYPE
    length = max((max(c.indices, default=-1) for c in cameras), default=-1) + 1
    written: list[tuple[str, int, int]] = []
    splitter = (
        SplitBagWriter(path, storage=storage, max_part_bytes=max_part_bytes, typestore=typestore)
        if max_part_bytes is not None
        else None
    )
    writer: Any = splitter if splitter is not None else Writer(Path(path), version=9, storage_plugin=plugins[storage])
    if splitter is None:
        writer.open()
    connections: dict[str, Any] = {}

    def add(topic: str, msgtype: str, *, sticky: bool = False) -> None:
        if splitter is not None:
            splitter.add_topic(topic, msgtype, sticky=sticky)
        else:
            connections[topic] = writer.add_connection(topic, msgtype, typestore=typestore)

    def emit(topic: str, stamp: int, data: bytes) -> None:
        if splitter is not None:
            splitter.write(topic, stamp, data)
        else:
            writer.write(connections[topic], stamp, data)

    try:
        add(odometry_topic, ODOMETRY_TYPE)
        for image_topic, info_topic in zip(image_topics, info_topics, strict=True):
            add(image_topic, image_type)
            add(info_topic, CAMERA_INFO_TYPE, sticky=True)
        members = [set(c.indices) for c in cameras]
        for k in range(length):
            owners = [n for n, member in enumerate(members) if k in member]
            if not owners:
                continue
            stamp = start_ns + round(k * _NS / rate_hz)
            first = cameras[owners[0]]
            t_odom_base = first.capture.views[k].t_world_camera @ invert_transform(extrinsics[owners[0]])
            emit(odometry_topic, stamp, odometry_cdr(typestore, stamp, t_odom_base))
            for n in owners:
                camera = cameras[n]
                view = camera.capture.views[k]
                frame_id = f'{camera.name}_optical_frame'
                rgb = camera.capture.load_image(k)
                intrinsics = view.intrinsics
                if intrinsics is not None:
                    if (intrinsics.width, intrinsics.height) != (rgb.shape[1], rgb.shape[0]):
                        intrinsics = intrinsics.scaled(int(rgb.shape[1]), int(rgb.shape[0]))
                    emit(info_topics[n], stamp, camera_info_cdr(typestore, stamp, intrinsics, frame_id=frame_id))
                if transport == 'compressed':
                    data = compressed_image_cdr(typestore, stamp, encode_jpeg(rgb, jpeg_quality), frame_id=frame_id)
                else:
                    data = image_cdr(typestore, stamp, rgb, frame_id=frame_id)
                emit(image_topics[n], stamp, data)
                written.append((camera.name, k, stamp))
    finally:
        writer.close()
    if recording_json:
        entries = [
            recording_camera_entry(camera.name, image_topic, info_topic, extrinsic, image_transport=transport)
            for camera, image_topic, info_topic, extrinsic in zip(
                cameras, image_topics, info_topics, extrinsics, strict=True
            )
        ]
        write_recording_json(path, entries, odometry_topic=odometry_topic)
    return written
