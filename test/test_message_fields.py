"""Duck-typed conversions between ROS message fields and core types (actial_ros.message_fields)."""

from __future__ import annotations

import math
from types import SimpleNamespace as NS

import numpy as np
import pytest

from actial_ros.errors import PoseError
from actial_ros.frame import CameraIntrinsics
from actial_ros.message_fields import (
    camera_info_fields,
    camera_info_to_intrinsics,
    ns_to_stamp,
    odometry_to_transform,
    pose_fields,
    stamp_to_ns,
    transform_to_matrix,
)


def test_stamps_round_trip() -> None:
    assert stamp_to_ns(NS(sec=12, nanosec=345)) == 12_000_000_345
    assert ns_to_stamp(12_000_000_345) == (12, 345)
    with pytest.raises(ValueError):
        stamp_to_ns(NS(sec=1, nanosec=1_000_000_000))
    with pytest.raises(ValueError):
        ns_to_stamp(-1)


def test_odometry_pose_yawed_90_degrees() -> None:
    # A robot at (1, 2, 0) turned +90 deg about z: quaternion (0, 0, sin 45, cos 45); its x axis is world +y.
    half = math.sqrt(0.5)
    pose = NS(position=NS(x=1.0, y=2.0, z=0.0), orientation=NS(x=0.0, y=0.0, z=half, w=half))
    matrix = odometry_to_transform(NS(pose=NS(pose=pose)))
    np.testing.assert_allclose(matrix[:3, 0], (0.0, 1.0, 0.0), atol=1e-12)
    np.testing.assert_allclose(matrix[:3, 3], (1.0, 2.0, 0.0))
    (x, y, z), quaternion = pose_fields(matrix)
    assert (x, y, z) == (1.0, 2.0, 0.0)
    np.testing.assert_allclose(quaternion, (0.0, 0.0, half, half), atol=1e-12)


def test_transform_and_nan_rejection() -> None:
    transform = NS(translation=NS(x=0.1, y=0.0, z=0.3), rotation=NS(x=-0.5, y=0.5, z=-0.5, w=0.5))
    matrix = transform_to_matrix(transform)
    np.testing.assert_allclose(matrix[:3, 2], (1.0, 0.0, 0.0), atol=1e-12)  # optical z = base x
    transform.translation.x = math.nan
    with pytest.raises(PoseError):
        transform_to_matrix(transform)


def test_camera_info() -> None:
    info = NS(k=[500.0, 0, 320.0, 0, 510.0, 240.0, 0, 0, 1], width=640, height=480)
    k = camera_info_to_intrinsics(info)
    assert (k.fx, k.fy, k.cx, k.cy, k.width, k.height) == (500.0, 510.0, 320.0, 240.0, 640, 480)
    with pytest.raises(PoseError):
        camera_info_to_intrinsics(NS(k=[0.0] * 9, width=640, height=480))  # uncalibrated


def test_real_ros_messages() -> None:
    geometry_msgs = pytest.importorskip('geometry_msgs.msg')
    sensor_msgs = pytest.importorskip('sensor_msgs.msg')
    stamped = geometry_msgs.TransformStamped()
    stamped.transform.rotation.w = 1.0
    np.testing.assert_allclose(transform_to_matrix(stamped.transform), np.eye(4))
    info = sensor_msgs.CameraInfo(width=4, height=2, k=[2.0, 0.0, 2.0, 0.0, 2.0, 1.0, 0.0, 0.0, 1.0])
    assert camera_info_to_intrinsics(info).matrix[0, 0] == 2.0


def test_camera_info_fields_round_trip_through_camera_info_to_intrinsics() -> None:
    k = CameraIntrinsics(fx=500.0, fy=480.0, cx=319.5, cy=241.0, width=640, height=480)
    fields = camera_info_fields(k)
    assert (fields['width'], fields['height'], fields['distortion_model']) == (640, 480, 'plumb_bob')
    assert fields['k'] == [500.0, 0.0, 319.5, 0.0, 480.0, 241.0, 0.0, 0.0, 1.0]
    assert fields['p'] == [500.0, 0.0, 319.5, 0.0, 0.0, 480.0, 241.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    assert fields['d'] == [0.0] * 5 and fields['r'] == [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    assert camera_info_to_intrinsics(NS(**fields)) == k
