"""bag_recorder over real DDS counts what DDS lost on the way (issue 11, "nothing lost silently"): a burst
that overflows its reader queues (``dds_lost``, from publisher sequence gaps) and a publisher whose QoS can
never match (``incompatible_qos``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

rclpy = pytest.importorskip('rclpy')
from nav_msgs.msg import Odometry  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from ros_harness import read_recording, start, stop, wait_for  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

pytestmark = pytest.mark.ros

RECORDER = 'actial_ros.nodes.bag_recorder'


def image(stamp_s: float) -> Image:
    msg = Image()
    msg.header.stamp.sec, msg.header.stamp.nanosec = int(stamp_s), round((stamp_s % 1) * 1e9) % 1_000_000_000
    msg.header.frame_id = 'camera_optical_frame'
    msg.height, msg.width, msg.encoding, msg.step = 240, 320, 'rgb8', 960
    msg.data = bytes(240 * 960)
    return msg


def stats(root: Path) -> dict[str, Any]:
    return dict(read_recording(root / 'run').get('stats', {}))


def test_a_burst_lost_inside_dds_is_counted(ros_env: dict[str, str], publisher: Node, tmp_path: Path) -> None:
    root, log = tmp_path / 'recordings', tmp_path / 'recorder.log'
    params = {'output_dir': root, 'session': 'run', 'stats_period_s': 0.2, 'image_qos': 'reliable', 'qos_depth': 10}
    recorder = start(RECORDER, params, ros_env, log)
    burst = 2000
    try:
        pub = publisher.create_publisher(Image, '/camera/image_raw', QoSProfile(depth=10))
        wait_for(lambda: pub.get_subscription_count() > 0, 30, 'the recorder')
        pub.publish(image(100.0))  # the baseline: losses before a writer's first delivered message are unknowable
        wait_for(lambda: stats(root).get('images_received', 0) >= 1, 30, 'the first image')
        for k in range(1, burst):
            pub.publish(image(100.0 + 0.001 * k))

        def accounted() -> int:
            now = stats(root)
            return int(now.get('images_received', 0) + now.get('dropped_queue_full_image', 0) + now.get('dds_lost', 0))

        wait_for(lambda: accounted() == burst, 60, 'every image received or counted as lost')
    finally:
        assert stop(recorder) == 0, log.read_text()[-3000:]
    final = stats(root)
    assert final['dds_lost'] > 0, 'the burst was expected to overflow the depth-10 queues'
    assert final['cameras']['camera']['dds_lost'] == final['dds_lost']


def test_a_publisher_with_incompatible_qos_is_counted(ros_env: dict[str, str], publisher: Node, tmp_path: Path) -> None:
    root, log = tmp_path / 'recordings', tmp_path / 'recorder.log'
    params = {'output_dir': root, 'session': 'run', 'stats_period_s': 0.2, 'odometry_qos': 'reliable'}
    recorder = start(RECORDER, params, ros_env, log)
    try:
        best_effort = publisher.create_publisher(
            Odometry, '/odom', QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)
        )
        wait_for(lambda: stats(root).get('incompatible_qos', 0) >= 1, 30, 'incompatible_qos')
        best_effort.publish(Odometry())
    finally:
        assert stop(recorder) == 0, log.read_text()[-3000:]
    assert stats(root).get('odometry_received', 0) == 0
    assert 'has an incompatible QoS' in log.read_text()
