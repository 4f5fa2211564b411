"""The sim_rig node in-process: what it publishes (clock, odometry, camera_info, image, depth, ground-truth
pose) in simulated time, the pose record, and parameter validation."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from actial_ros.errors import ConfigError
from actial_ros.geometry import camera_pose_from_odometry
from actial_ros.simulation.record import read_pose_record

rclpy = pytest.importorskip('rclpy')
pytest.importorskip('pybullet')
from geometry_msgs.msg import PoseStamped  # noqa: E402
from nav_msgs.msg import Odometry  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

from actial_ros.imaging import image_msg_to_rgb  # noqa: E402
from actial_ros.message_fields import camera_info_to_intrinsics, odometry_to_transform, pose_to_transform, stamp_to_ns  # noqa: E402
from actial_ros.nodes.sim_rig import SimRigNode  # noqa: E402

pytestmark = pytest.mark.ros


def test_rig_node_publishes_a_run_in_simulated_time(rclpy_context: Any, tmp_path: Path) -> None:
    record_path = tmp_path / 'record.jsonl'
    params = {
        'width': 64,
        'height': 48,
        'duration_s': 1.0,
        'step_rate_hz': 20.0,
        'camera_rate_hz': 5.0,
        'odometry_rate_hz': 10.0,
        'start_time_s': 3.0,
        'real_time_factor': 0.0,
        'depth': True,
        'record': str(record_path),
        'on_end': 'exit',
        'settle_s': 0.3,
        'qos_depth': 50,
        'extrinsic_translation': [0.1, 0.0, 0.2],
        'extrinsic_rotation_xyzw': [-0.56, 0.56, -0.43, 0.43],
        'radius_m': 2,  # an integer for a float parameter is accepted
    }
    listener = Node('sim_listener', context=rclpy_context)
    got: dict[str, list[Any]] = {'clock': [], 'odom': [], 'info': [], 'image': [], 'depth': [], 'pose': []}
    topics = [
        ('clock', Clock, '/clock'),
        ('odom', Odometry, '/odom'),
        ('info', CameraInfo, '/camera/camera_info'),
        ('image', Image, '/camera/image_raw'),
        ('depth', Image, '/camera/depth/image_raw'),
        ('pose', PoseStamped, '/sim_rig/camera_pose'),
    ]
    for key, kind, topic in topics:
        listener.create_subscription(kind, topic, lambda msg, key=key: got[key].append(msg), 100)
    rig = SimRigNode(
        context=rclpy_context, parameter_overrides=[Parameter(name, value=value) for name, value in params.items()]
    )
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(listener)
    executor.add_node(rig)
    try:
        deadline = time.monotonic() + 30
        while not (rig.done and len(got['image']) >= 6 and len(got['odom']) >= 11):
            assert time.monotonic() < deadline, f'timed out: { ({k: len(v) for k, v in got.items()}) } {rig.error}'
            executor.spin_once(timeout_sec=0.05)
        for _ in range(10):
            executor.spin_once(timeout_sec=0.02)
    finally:
        executor.shutdown()
        rig.destroy_node()
        listener.destroy_node()
    assert rig.error is None and rig.frames_published == 6 and rig.exit_requested

    record = read_pose_record(record_path)
    assert record.complete and len(record) == 6
    truth = record.by_stamp()
    extrinsic = record.extrinsic
    np.testing.assert_allclose(extrinsic[:3, 3], [0.1, 0.0, 0.2])
    assert [stamp_to_ns(m.header.stamp) for m in got['image']] == [3_000_000_000 + i * 200_000_000 for i in range(6)]
    # The clock: first the start time while waiting for subscribers, then every step, never backwards.
    clock = [stamp_to_ns(m.clock) for m in got['clock']]
    assert clock == sorted(clock) and clock[0] == 3_000_000_000 and clock[-1] == 4_000_000_000
    assert set(range(3_000_000_000, 4_000_000_001, 50_000_000)) <= set(clock)
    odometry = {stamp_to_ns(m.header.stamp): m for m in got['odom']}
    assert len(odometry) == 11  # 10 Hz, every frame included
    assert odometry[3_400_000_000].twist.twist.angular.z == pytest.approx(np.radians(30.0), abs=1e-6)
    for image, info, depth, pose in zip(got['image'], got['info'], got['depth'], got['pose'], strict=True):
        stamp = stamp_to_ns(image.header.stamp)
        assert stamp_to_ns(info.header.stamp) == stamp_to_ns(depth.header.stamp) == stamp
        assert stamp_to_ns(pose.header.stamp) == stamp
        assert image.encoding == 'rgb8' and image_msg_to_rgb(image).shape == (48, 64, 3)
        assert depth.encoding == '32FC1' and len(depth.data) == 64 * 48 * 4
        k = camera_info_to_intrinsics(info)
        assert (k.cx, k.cy, k.width) == (32.0, 24.0, 64)
        frame = truth[stamp]
        np.testing.assert_allclose(odometry_to_transform(odometry[stamp]), frame.t_world_base, atol=1e-9)
        np.testing.assert_allclose(
            camera_pose_from_odometry(odometry_to_transform(odometry[stamp]), extrinsic),
            frame.t_world_camera,
            atol=1e-9,
        )
        np.testing.assert_allclose(pose_to_transform(pose.pose), frame.t_world_camera, atol=1e-9)
        assert np.hypot(*frame.t_world_base[:2, 3]) == pytest.approx(2.0)


def test_rig_node_refuses_bad_parameters(rclpy_context: Any) -> None:
    for name, value, match in [
        ('camera_rate_hz', 7.0, 'divide'),
        ('trajectory', 'spiral', 'trajectory'),
        ('objects', ['toys'], 'not found'),
        ('extrinsic_rotation_xyzw', [0.0, 0.0, 0.0, 0.0], 'quaternion'),
    ]:
        with pytest.raises(ConfigError, match=match):
            SimRigNode(context=rclpy_context, parameter_overrides=[Parameter(name, value=value)])


def test_rig_entry_point_exits_2_on_a_configuration_error(ros_env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, '-m', 'actial_ros.nodes.sim_rig', '--ros-args', '-p', 'floor:=marble'],
        env=ros_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert 'floor must be one of' in result.stderr
