"""ROS 2 messages of a recording as CDR bytes: the message types, the header stamp, and message builders.

The bags hold four message types (:data:`IMAGE_TYPE`, :data:`COMPRESSED_IMAGE_TYPE`, :data:`CAMERA_INFO_TYPE`,
:data:`ODOMETRY_TYPE`), each starting with a ``std_msgs/Header``. :func:`cdr_header_stamp_ns` reads the stamp of
such a message without deserialising it and :func:`set_cdr_header_stamp` rewrites it in place (``bag_recorder``,
``bag_replay``). The builders (:func:`odometry_cdr`, :func:`camera_info_cdr`, :func:`compressed_image_cdr`,
:func:`image_fields_cdr`, :func:`image_cdr`) serialise messages with a ``rosbags`` type store
(:func:`actial_ros.bags.reading.default_typestore`), as the exports (:mod:`actial_ros.bags.export`) and the
simulator write them; the ROS nodes build the same messages with rclpy in
:mod:`actial_ros.nodes.ros_messages`.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from actial_ros.frame import CameraIntrinsics
from actial_ros.imaging import ImageFields, rgb_to_image_fields
from actial_ros.message_fields import camera_info_fields, ns_to_stamp, pose_fields

if TYPE_CHECKING:
    from rosbags.typesys.store import Typestore

__all__ = [
    'CAMERA_INFO_TYPE',
    'COMPRESSED_IMAGE_TYPE',
    'IMAGE_TYPE',
    'ODOMETRY_TYPE',
    'camera_info_cdr',
    'cdr_header_stamp_ns',
    'compressed_image_cdr',
    'image_cdr',
    'image_fields_cdr',
    'odometry_cdr',
    'set_cdr_header_stamp',
]

IMAGE_TYPE = 'sensor_msgs/msg/Image'
COMPRESSED_IMAGE_TYPE = 'sensor_msgs/msg/CompressedImage'
CAMERA_INFO_TYPE = 'sensor_msgs/msg/CameraInfo'
ODOMETRY_TYPE = 'nav_msgs/msg/Odometry'

_NS = 1_000_000_000


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
    :func:`actial_ros.message_fields.camera_info_fields`)."""
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
