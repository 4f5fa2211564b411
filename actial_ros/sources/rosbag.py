"""rosbag2 recordings as posed captures (odometry as ground truth), and a size-splitting bag writer.

Reading (:class:`RosbagCapture`): a recording is one object. ``PATH`` may be

* a rosbag2 folder (``metadata.yaml`` + ``.db3`` or ``.mcap``), sqlite3 or mcap storage;
* a bare ``.mcap`` file;
* a split recording: a folder whose sub-folders (sorted by name) are the parts of one recording, as
  :class:`SplitBagWriter` and the ``bag_recorder`` node write them (``bag_0000/``, ``bag_0001/``, ...).
  A part without ``metadata.yaml`` (the recorder was killed) is read through its ``.mcap`` file; a part
  that cannot be read (truncated mcap: no footer) is skipped and counted as ``unreadable_bag``.

Topics: an Image or CompressedImage topic, a CameraInfo topic and an Odometry topic, each named in
:class:`~actial_ros.sources.base.SourceOptions` or found by message type (exactly one topic of the
type; image topics with ``depth`` in their name are not candidates when another image topic exists).
Reading uses ``rosbags`` (no ROS install); message definitions come from the bag, else from the ROS 2
Kilted type store.

Poses (``../shared/notes/CONVENTIONS.md``): for an image with header stamp ``t``,
``T_odom_camera_optical = T_odom_base(t) @ T_base_camera_optical``. ``T_odom_base(t)`` comes from
:class:`actial_ros.pairing.OdometryHistory` over all odometry messages of the recording (by header
stamp; linear position, slerp rotation between the two nearest samples; never extrapolated beyond
``max_extrapolation_s``; no interpolation across gaps longer than ``max_interpolation_gap_s``). The
extrinsic is ``SourceOptions.extrinsic``, else the one the recorder stored in ``recording.json``, else
:func:`actial_ros.geometry.base_to_optical_extrinsic`. Intrinsics: the newest valid CameraInfo stamped
at or before the image, else the first one after it. Lengths are metres (``metric = True``).

Counted skips (never a silently wrong pose): ``bad_odometry`` (NaN, bad quaternion),
``odometry_duplicate``, ``duplicate_stamp`` (a second image with the same header stamp),
``no_odometry`` / ``odometry_gap`` (image outside or between odometry samples too far apart),
``no_camera_info``, ``bad_camera_info``, ``bad_message`` (CDR that does not deserialise),
``unreadable_bag``. Errors (:class:`~actial_ros.errors.CaptureError`): no image, odometry or (by
default) CameraInfo topic, several candidate topics, odometry whose stamps jump back by more than
``time_reset_s`` (two timelines in one recording), nothing readable, no posed image.

Writing: :class:`SplitBagWriter` writes raw CDR messages to numbered rosbag2 parts, starting a new part
when a part reaches a size limit and refusing messages (counted) once a total disk budget is spent;
:func:`write_capture_bag` exports a posed capture as a bag (tests, offline replay).
"""

from __future__ import annotations

import bisect
import json
import math
import re
import struct
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from actial_ros.enums import DropReason
from actial_ros.errors import CaptureError, ConfigError, ImageError, PoseError
from actial_ros.frame import CameraIntrinsics
from actial_ros.geometry import base_to_optical_extrinsic, camera_pose_from_odometry, validate_transform
from actial_ros.imaging import compressed_msg_to_rgb, image_msg_to_rgb, rgb_to_image_fields
from actial_ros.messages import camera_info_to_intrinsics, ns_to_stamp, odometry_to_transform, pose_fields
from actial_ros.pairing import OdometryHistory, OdometryMatchPolicy
from actial_ros.sources.base import (
    DEFAULT_SOURCE_OPTIONS,
    PosedCapture,
    PosedView,
    RgbImage,
    SourceKind,
    SourceOptions,
)

if TYPE_CHECKING:
    from rosbags.typesys.store import Typestore

__all__ = [
    'CAMERA_INFO_TYPE',
    'COMPRESSED_IMAGE_TYPE',
    'IMAGE_TYPE',
    'ODOMETRY_TYPE',
    'RECORDING_FILENAME',
    'RosbagCapture',
    'SplitBagWriter',
    'bag_parts',
    'camera_info_cdr',
    'cdr_header_stamp_ns',
    'compressed_image_cdr',
    'default_typestore',
    'image_cdr',
    'is_rosbag',
    'odometry_cdr',
    'write_capture_bag',
]

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


def default_typestore() -> Typestore:
    """The ROS 2 Kilted type store of ``rosbags`` (message definitions for bags that carry none)."""
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_KILTED)


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


# ----------------------------------------------------------------------------------------------------
# Finding the parts of a recording
# ----------------------------------------------------------------------------------------------------


def _is_bag_dir(path: Path) -> bool:
    return (path / 'metadata.yaml').is_file()


def _part_of(path: Path) -> Path | None:
    """The readable path of one part folder: the folder with metadata, else its single ``.mcap``."""
    if _is_bag_dir(path):
        return path
    mcaps = sorted(path.glob('*.mcap'))
    return mcaps[0] if len(mcaps) == 1 else None


_PART_NAME = re.compile(r'^(?P<prefix>.+)_(?P<index>\d{4})$')


def bag_parts(path: str | Path) -> list[Path]:
    """The paths to read, in order, for the recording at ``path`` (see the module docstring).

    A folder is a split recording when it holds a ``recording.json`` or when all its bag sub-folders are
    named ``PREFIX_NNNN`` with one common prefix (a folder of unrelated bags is not one recording).
    Returns an empty list when ``path`` is not a recording.
    """
    root = Path(path)
    if root.is_file():
        return [root] if root.suffix == '.mcap' else []
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
    mcaps = sorted(root.glob('*.mcap'))
    return mcaps[:1] if len(mcaps) == 1 else []


def is_rosbag(path: str | Path) -> bool:
    """True when ``path`` is a rosbag2 folder, a ``.mcap`` file, or a split recording."""
    return bool(bag_parts(path))


# ----------------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Topics:
    image: str
    image_type: str
    odometry: str
    camera_info: str | None


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
        raise CaptureError(f'{where}: several {what} topics {topics}; name one (e.g. --bag-{what}-topic)')
    return topics[0] if topics else None


def _read_extrinsic(root: Path, options: SourceOptions) -> FloatArray:
    if options.extrinsic is not None:
        return validate_transform(np.asarray(options.extrinsic, dtype=np.float64).reshape(4, 4), name='extrinsic')
    recording = root / RECORDING_FILENAME if root.is_dir() else root.parent / RECORDING_FILENAME
    if recording.is_file():
        try:
            data = json.loads(recording.read_text())
            params = data.get('parameters', data)
            return base_to_optical_extrinsic(params['extrinsic_translation'], params['extrinsic_rotation_xyzw'])
        except (OSError, ValueError, KeyError, TypeError, PoseError) as error:
            raise CaptureError(f'{recording}: cannot read the extrinsic: {error}') from error
    return base_to_optical_extrinsic()


class RosbagCapture(PosedCapture):
    """A rosbag2 recording: camera images posed by odometry. Build with :meth:`open`.

    Images are read from the bag when asked for (:meth:`iter_images` reads the image topic once for any
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
        topics: _Topics,
        skips: Counter[str],
    ) -> None:
        """Wrap already-read views; use :meth:`open`."""
        self.path = path
        self.object_id = object_id
        self.views = views
        self.skips = skips
        self._parts = parts
        self._topics = topics
        self._index = {view.stamp_ns: i for i, view in enumerate(views)}

    @property
    def topics(self) -> tuple[str, str, str | None]:
        """``(image, odometry, camera_info)`` topics read (camera_info ``None`` when absent)."""
        return self._topics.image, self._topics.odometry, self._topics.camera_info

    @property
    def parts(self) -> tuple[Path, ...]:
        """The readable parts of the recording."""
        return self._parts

    @classmethod
    def open(
        cls, path: str | Path, *, object_id: str | None = None, options: SourceOptions = DEFAULT_SOURCE_OPTIONS
    ) -> RosbagCapture:
        """Read a recording's odometry, camera info and image stamps, and pose every image.

        Args:
            path: a bag folder, a ``.mcap`` file or a split recording folder.
            object_id: the object id; default: the folder name (a file's stem).
            options: topics, extrinsic and odometry matching.

        Raises:
            CaptureError: see the module docstring.
        """
        from rosbags.highlevel import AnyReader

        root = Path(path).expanduser().resolve()
        parts = bag_parts(root)
        if not parts:
            raise CaptureError(f'{root} is not a rosbag2 recording (no metadata.yaml or .mcap)')
        extrinsic = _read_extrinsic(root, options)
        typestore = default_typestore()
        skips: Counter[str] = Counter()

        readable: list[Path] = []
        errors: list[str] = []
        odometry: list[tuple[int, FloatArray | None]] = []
        camera_infos: list[tuple[int, CameraIntrinsics | None]] = []
        image_stamps: list[int] = []
        topics: _Topics | None = None
        for part in parts:
            try:
                with AnyReader([part], default_typestore=typestore) as reader:
                    part_topics = cls._topics_of(reader.connections, options, part)
                    if topics is not None and part_topics != topics:
                        raise CaptureError(f'{part}: topics {part_topics} differ from the first part {topics}')
                    topics = part_topics
                    wanted = [
                        c for c in reader.connections if c.topic in (topics.image, topics.odometry, topics.camera_info)
                    ]
                    for connection, _, raw in reader.messages(connections=wanted):
                        if connection.topic == topics.image:
                            try:
                                image_stamps.append(cdr_header_stamp_ns(raw))
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
                        if connection.topic == topics.odometry:
                            try:
                                odometry.append((stamp, odometry_to_transform(msg)))
                            except (PoseError, ValueError):
                                odometry.append((stamp, None))
                        else:
                            try:
                                camera_infos.append((stamp, camera_info_to_intrinsics(msg)))
                            except (PoseError, ValueError):
                                camera_infos.append((stamp, None))
                readable.append(part)
            except CaptureError:
                raise
            except Exception as error:  # AnyReaderError, ReaderError, struct errors of a truncated file
                skips['unreadable_bag'] += 1
                errors.append(f'{part}: {type(error).__name__}: {error}')
        if topics is None or not readable:
            raise CaptureError(f'{root}: no readable bag: {"; ".join(errors)}')

        history = cls._odometry_history(odometry, options, skips, root)
        intrinsics_at = cls._camera_info_lookup(camera_infos, skips)
        if options.require_camera_info and topics.camera_info is None:
            raise CaptureError(f'{root}: no sensor_msgs/CameraInfo topic (intrinsics are required)')
        if options.require_camera_info and not any(k is not None for _, k in camera_infos):
            raise CaptureError(
                f'{root}: no valid sensor_msgs/CameraInfo message on {topics.camera_info} (intrinsics are required; '
                f'skipped: {dict(skips)})'
            )

        views: list[PosedView] = []
        seen: set[int] = set()
        for stamp in sorted(image_stamps):
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
            views.append(PosedView(name=str(stamp), t_world_camera=pose, intrinsics=intrinsics, stamp_ns=stamp))
        if not views:
            raise CaptureError(f'{root}: no image could be posed from odometry (skipped: {dict(skips)})')
        name = object_id or (root.stem if root.is_file() else root.name)
        return cls(root, name, tuple(views), tuple(readable), topics, skips)

    @staticmethod
    def _topics_of(connections: Sequence[Any], options: SourceOptions, part: Path) -> _Topics:
        image = _choose(connections, _IMAGE_TYPES, options.image_topic, 'image', part)
        if image is None:
            raise CaptureError(f'{part}: no sensor_msgs/Image or CompressedImage topic {options.image_topic}'.rstrip())
        odometry = _choose(connections, (ODOMETRY_TYPE,), options.odometry_topic, 'odometry', part)
        if odometry is None:
            raise CaptureError(
                f'{part}: no nav_msgs/Odometry topic {options.odometry_topic}'.rstrip()
                + ' (the camera pose comes from odometry)'
            )
        camera_info = _choose(connections, (CAMERA_INFO_TYPE,), options.camera_info_topic, 'camera_info', part)
        image_type = next(c.msgtype for c in connections if c.topic == image)
        return _Topics(image=image, image_type=image_type, odometry=odometry, camera_info=camera_info)

    @staticmethod
    def _odometry_history(
        odometry: list[tuple[int, FloatArray | None]], options: SourceOptions, skips: Counter[str], root: Path
    ) -> OdometryHistory:
        newest: int | None = None
        for stamp, _ in odometry:
            if newest is not None and newest - stamp > options.time_reset_s * _NS:
                raise CaptureError(
                    f'{root}: odometry stamps jump back by {(newest - stamp) / _NS:.3f} s (more than '
                    f'time_reset_s={options.time_reset_s:g}): the recording holds several timelines; split it'
                )
            newest = stamp if newest is None else max(newest, stamp)
        policy = OdometryMatchPolicy(
            max_interpolation_gap_s=options.max_interpolation_gap_s,
            max_extrapolation_s=options.max_extrapolation_s,
            history=max(2, len(odometry) + 1),
        )
        history = OdometryHistory(policy)
        for stamp, pose in sorted(odometry, key=lambda sample: sample[0]):
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
        """Decode the image of view ``index`` (reads the image topic until it is found).

        Raises:
            ImageError: the message cannot be decoded.
        """
        for _, image in self.iter_images([index]):
            if isinstance(image, ImageError):
                raise image
            return image
        raise ImageError(f'{self.path}: image {self.views[index].name} not found')

    def iter_images(self, indices: Iterable[int]) -> Iterator[tuple[int, RgbImage | ImageError]]:
        """Decode several views' images in one pass over the image topic (in bag order).

        Yields each requested index once: an image, or the :class:`ImageError` explaining why not (an
        undecodable message, or a message no longer found).
        """
        from rosbags.highlevel import AnyReader

        wanted = {self.views[i].stamp_ns: i for i in sorted(set(indices))}
        if not wanted:
            return
        typestore = default_typestore()
        for part in self._parts:
            if not wanted:
                break
            try:
                with AnyReader([part], default_typestore=typestore) as reader:
                    connections = [c for c in reader.connections if c.topic == self._topics.image]
                    for connection, _, raw in reader.messages(connections=connections):
                        try:
                            stamp = cdr_header_stamp_ns(raw)
                        except ValueError:
                            continue
                        index = wanted.pop(stamp, None)
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
    recording. A new part starts when the current one would exceed ``max_part_bytes``; the last message
    of each ``sticky`` topic (e.g. camera_info) is written again at the start of every new part, so each
    part is self-contained. Sizes are counted as payload + 40 bytes per message.

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
    position_override: Sequence[float] | None = None,
) -> bytes:
    """CDR bytes of a ``nav_msgs/Odometry`` holding ``T_odom_base`` (zero covariance and twist).

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
    twist = types['geometry_msgs/msg/Twist'](linear=vector(x=0.0, y=0.0, z=0.0), angular=vector(x=0.0, y=0.0, z=0.0))
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
    """CDR bytes of a ``sensor_msgs/CameraInfo`` for pinhole ``intrinsics`` (plumb_bob, zero distortion)."""
    types = typestore.types
    k = intrinsics
    roi = types['sensor_msgs/msg/RegionOfInterest'](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    msg = types[CAMERA_INFO_TYPE](
        header=_header(typestore, stamp_ns, frame_id),
        height=k.height,
        width=k.width,
        distortion_model='plumb_bob',
        d=np.zeros(5, dtype=np.float64),
        k=np.asarray(k.matrix, dtype=np.float64).reshape(-1),
        r=np.eye(3, dtype=np.float64).reshape(-1),
        p=np.array([k.fx, 0.0, k.cx, 0.0, 0.0, k.fy, k.cy, 0.0, 0.0, 0.0, 1.0, 0.0], dtype=np.float64),
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


def image_cdr(
    typestore: Typestore,
    stamp_ns: int,
    rgb: npt.NDArray[np.uint8],
    *,
    encoding: str = 'rgb8',
    frame_id: str = 'camera_optical_frame',
) -> bytes:
    """CDR bytes of a ``sensor_msgs/Image`` of ``rgb`` (``(H, W, 3)`` uint8) in ``encoding``."""
    fields = rgb_to_image_fields(rgb, encoding)
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
