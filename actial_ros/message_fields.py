"""Conversions between ROS message fields and core types, duck-typed (no rclpy import).

Works on rclpy message objects and on rosbags' deserialised messages alike, since both expose the
same attribute names. Image payload conversion lives in :mod:`actial_ros.imaging`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from actial_ros.errors import PoseError
from actial_ros.frame import CameraIntrinsics
from actial_ros.geometry import quaternion_xyzw_from_transform, transform_from_position_quaternion

__all__ = [
    'camera_info_fields',
    'camera_info_to_intrinsics',
    'ns_to_stamp',
    'odometry_to_transform',
    'pose_fields',
    'pose_to_transform',
    'stamp_to_ns',
    'transform_to_matrix',
]


def stamp_to_ns(stamp: Any) -> int:
    """``builtin_interfaces/Time`` (``sec``, ``nanosec``) to integer nanoseconds.

    Raises:
        ValueError: negative fields or ``nanosec`` >= 1e9.
    """
    sec, nanosec = int(stamp.sec), int(stamp.nanosec)
    if sec < 0 or not 0 <= nanosec < 1_000_000_000:
        raise ValueError(f'invalid stamp sec={sec} nanosec={nanosec}')
    return sec * 1_000_000_000 + nanosec


def ns_to_stamp(stamp_ns: int) -> tuple[int, int]:
    """Integer nanoseconds to ``(sec, nanosec)`` for ``builtin_interfaces/Time``."""
    if stamp_ns < 0:
        raise ValueError(f'negative stamp {stamp_ns}')
    return stamp_ns // 1_000_000_000, stamp_ns % 1_000_000_000


def pose_to_transform(pose: Any) -> npt.NDArray[np.float64]:
    """``geometry_msgs/Pose`` (position, orientation x y z w) to a ``(4, 4)`` float64 transform.

    Raises:
        PoseError: NaN/inf values or a quaternion far from unit norm.
    """
    position = (pose.position.x, pose.position.y, pose.position.z)
    orientation = (pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w)
    return transform_from_position_quaternion(position, orientation)


def transform_to_matrix(transform: Any) -> npt.NDArray[np.float64]:
    """``geometry_msgs/Transform`` (translation, rotation x y z w) to a ``(4, 4)`` float64 transform.

    Raises:
        PoseError: NaN/inf values or a quaternion far from unit norm.
    """
    translation = (transform.translation.x, transform.translation.y, transform.translation.z)
    rotation = (transform.rotation.x, transform.rotation.y, transform.rotation.z, transform.rotation.w)
    return transform_from_position_quaternion(translation, rotation)


def odometry_to_transform(msg: Any) -> npt.NDArray[np.float64]:
    """``nav_msgs/Odometry`` to ``T_odom_base`` ``(4, 4)`` (``header.frame_id`` -> ``child_frame_id``).

    Raises:
        PoseError: see :func:`pose_to_transform`.
    """
    return pose_to_transform(msg.pose.pose)


def pose_fields(transform: npt.ArrayLike) -> tuple[tuple[float, float, float], tuple[float, float, float, float]]:
    """``(position xyz, quaternion xyzw)`` of a ``(4, 4)`` transform, to fill a ``geometry_msgs/Pose``."""
    matrix = np.asarray(transform, dtype=np.float64)
    quaternion = quaternion_xyzw_from_transform(matrix)
    x, y, z = (float(v) for v in matrix[:3, 3])
    qx, qy, qz, qw = (float(v) for v in quaternion)
    return (x, y, z), (qx, qy, qz, qw)


def camera_info_fields(intrinsics: CameraIntrinsics) -> dict[str, Any]:
    """``sensor_msgs/CameraInfo`` fields of an undistorted pinhole camera (the inverse of
    :func:`camera_info_to_intrinsics`), as plain Python values for rclpy messages and rosbags alike.

    Returns:
        ``width``, ``height`` (pixels), ``distortion_model`` (``'plumb_bob'``), ``d`` (5 zeros), ``k`` (9,
        row-major ``K``), ``r`` (identity, 9) and ``p`` (12, ``[K | 0]``), all floats in pixels.
    """
    k = intrinsics
    return {
        'width': int(k.width),
        'height': int(k.height),
        'distortion_model': 'plumb_bob',
        'd': [0.0] * 5,
        'k': [float(v) for v in k.matrix.reshape(-1)],
        'r': [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        'p': [k.fx, 0.0, k.cx, 0.0, 0.0, k.fy, k.cy, 0.0, 0.0, 0.0, 1.0, 0.0],
    }


def camera_info_to_intrinsics(msg: Any) -> CameraIntrinsics:
    """``sensor_msgs/CameraInfo`` (``k``, ``width``, ``height``) to :class:`CameraIntrinsics`.

    Distortion is ignored (the images are used as delivered).

    Raises:
        PoseError: zero size, a zero or non-finite focal length (an uncalibrated camera publishes
            ``k`` all zeros).
    """
    k = [float(v) for v in msg.k]
    if len(k) != 9 or not all(math.isfinite(v) for v in k):
        raise PoseError(f'CameraInfo.k must hold 9 finite values, got {k}')
    return CameraIntrinsics.from_matrix(k, width=int(msg.width), height=int(msg.height))
