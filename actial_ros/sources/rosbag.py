"""rosbag2 recordings as posed captures (odometry as ground truth): :class:`RosbagCapture`.

A recording is one object. ``PATH`` is a rosbag2 folder, a bare ``.mcap`` or ``.db3`` file, or a split
recording (:func:`actial_ros.bags.files.bag_parts`). Its cameras and topics (one or several cameras, one
odometry stream) are resolved per part by :func:`actial_ros.sources.bag_layout.resolve_layout`; reading uses
``rosbags`` (no ROS install); message definitions come from the bag, else from the ROS 2 Kilted type store.
A multi-camera recording's views are every camera's posed images, named ``NAME@STAMP_NS``
(:func:`actial_ros.sources.bag_layout.view_name`) and ordered by (stamp, name), so pairs are made within a
camera and across cameras (same or different stamps) alike.

Cut bags (power loss, a killed recorder): every part is opened by
:func:`actial_ros.bags.reading.open_part`. A part rosbags refuses because its storage was cut short
(an mcap without footer, a sqlite3 file shorter than its header says) is salvaged: every complete mcap record
up to the cut (a cut chunk is lost whole: at most about 1 MiB with rosbags' writer), or every row SQLite still
reads. It is read with a warning and counted in :attr:`RosbagCapture.skips`: ``salvaged_bag`` (parts),
``salvaged_messages`` (messages recovered from them), ``lost_tail_bytes`` (mcap bytes after the last
complete record). A recording split into parts (:class:`~actial_ros.bags.writer.SplitBagWriter`,
``bag_recorder``) has at most its last part cut: the closed parts are intact. A part with nothing recoverable
(cut inside its header or first chunk) is skipped and counted as ``unreadable_bag``; a recording with no
readable part is an error.

Poses (``../shared/notes/CONVENTIONS.md``): for an image of camera ``c`` with header stamp ``t``,
``T_odom_camera_optical = T_odom_base(t) @ T_base_camera_optical[c]``. ``T_odom_base(t)`` comes from
:class:`actial_ros.pairing.OdometryHistory` over all odometry messages of the recording (by header
stamp; linear position, slerp rotation between the two nearest samples; never extrapolated beyond
``max_extrapolation_s``; no interpolation across gaps longer than ``max_interpolation_gap_s``). The
extrinsic of each camera is its layout's (:mod:`actial_ros.sources.bag_layout`). Intrinsics: the newest
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
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from actial_ros.bags.cdr import COMPRESSED_IMAGE_TYPE, cdr_header_stamp_ns
from actial_ros.bags.reading import BagReadError, default_typestore, open_part
from actial_ros.enums import DropReason
from actial_ros.errors import CaptureError, ImageError, PoseError
from actial_ros.frame import CameraIntrinsics
from actial_ros.geometry import camera_pose_from_odometry
from actial_ros.imaging import compressed_msg_to_rgb, image_msg_to_rgb
from actial_ros.message_fields import camera_info_to_intrinsics, odometry_to_transform
from actial_ros.pairing import OdometryHistory, OdometryMatchPolicy
from actial_ros.sources.bag_layout import BagLayout, RecordedCamera, recording_parts, resolve_layout, view_name
from actial_ros.sources.base import DEFAULT_SOURCE_OPTIONS, PosedCapture, PosedView, RgbImage, SourceKind, SourceOptions
from actial_ros.timeline import Jump, TimelineGuard

__all__ = ['RosbagCapture']

_NS = 1_000_000_000

FloatArray = npt.NDArray[np.float64]


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
        root, parts, recording = recording_parts(path)
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
                    part_layout = resolve_layout(reader.connections, options, recording, part)
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
