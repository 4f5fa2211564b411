"""Exporting posed captures as rosbag2 recordings, as a robot would have recorded them (tests, offline replay).

:func:`write_capture_bag` exports one posed capture as a bag: odometry, CameraInfo and one image per view.
:func:`write_rig_bag` exports a rig of cameras (:class:`RigCamera`) with one odometry stream, as one bag or a
split recording (:class:`~actial_ros.bags.writer.SplitBagWriter`), with its ``recording.json``
(:mod:`actial_ros.bags.recording`) so that it reads back as a multi-camera recording without flags. The
captures are anything with posed views and images (:class:`ExportableCapture`), such as
:class:`actial_ros.sources.base.PosedCapture`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from actial_ros.bags.cdr import (
    CAMERA_INFO_TYPE,
    COMPRESSED_IMAGE_TYPE,
    IMAGE_TYPE,
    ODOMETRY_TYPE,
    camera_info_cdr,
    compressed_image_cdr,
    image_cdr,
    odometry_cdr,
)
from actial_ros.bags.reading import default_typestore
from actial_ros.bags.recording import recording_camera_entry, write_recording_json
from actial_ros.bags.writer import SplitBagWriter
from actial_ros.errors import ConfigError
from actial_ros.frame import CameraIntrinsics, Frame
from actial_ros.geometry import base_to_optical_extrinsic, validate_transform

__all__ = ['ExportableCapture', 'ExportableView', 'RigCamera', 'write_capture_bag', 'write_rig_bag']

_NS = 1_000_000_000


class ExportableView(Protocol):
    """One posed view of an exported capture (:class:`actial_ros.sources.base.PosedView` is one)."""

    @property
    def t_world_camera(self) -> npt.NDArray[np.float64]:
        """``(4, 4)`` camera-to-world pose of the optical frame."""

    @property
    def intrinsics(self) -> CameraIntrinsics | None:
        """Pinhole intrinsics of the image as stored, or ``None``."""


class ExportableCapture(Protocol):
    """What the exports read of a posed capture (:class:`actial_ros.sources.base.PosedCapture` is one)."""

    @property
    def views(self) -> Sequence[ExportableView]:
        """The posed views."""

    def load_image(self, index: int) -> npt.NDArray[np.uint8]:
        """The ``(H, W, 3)`` uint8 RGB image of view ``index``."""

    def frames(self) -> Iterator[Frame]:
        """The views as core frames with their images."""


def write_capture_bag(
    capture: ExportableCapture,
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
    capture: ExportableCapture
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
