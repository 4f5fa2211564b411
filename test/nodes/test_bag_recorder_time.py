"""bag_recorder over real DDS: a real time reset starts a new session; one bogus odometry stamp does not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from actial_ros.bags.reading import default_typestore

rclpy = pytest.importorskip('rclpy')
from nav_msgs.msg import Odometry  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.qos import QoSProfile  # noqa: E402
from ros_harness import read_recording, start, stop, wait_for  # noqa: E402

pytestmark = pytest.mark.ros


def odom(stamp_s: float) -> Odometry:
    msg = Odometry()
    msg.header.stamp.sec, msg.header.stamp.nanosec = int(stamp_s), round((stamp_s % 1) * 1e9) % 1_000_000_000
    msg.pose.pose.orientation.w = 1.0
    return msg


def odometry_stamps(session: Path) -> list[float]:
    from rosbags.highlevel import AnyReader

    stamps: list[float] = []
    for part in sorted(p for p in session.iterdir() if p.is_dir()):
        with AnyReader([part], default_typestore=default_typestore()) as reader:
            wanted = [c for c in reader.connections if c.topic == '/odom']
            for connection, _, raw in reader.messages(connections=wanted):
                msg: Any = reader.deserialize(raw, connection.msgtype)
                stamp = msg.header.stamp
                stamps.append(stamp.sec + stamp.nanosec / 1e9)
    return stamps


def test_one_bogus_stamp_splits_nothing_and_a_real_reset_starts_a_session(
    ros_env: dict[str, str], publisher: Node, tmp_path: Path
) -> None:
    root = tmp_path / 'recordings'
    log = tmp_path / 'recorder.log'
    recorder = start(
        'actial_ros.nodes.bag_recorder',
        {'output_dir': root, 'session': 'run', 'stats_period_s': 0.2, 'odometry_qos': 'reliable'},
        ros_env,
        log,
    )
    first_run = [100.0 + 0.1 * k for k in range(21)]
    bogus = 95.0  # sent after 101.0: 6 s in the past, once
    second_run = [3.0 + 0.1 * k for k in range(11)]  # the simulation restarted
    try:
        pub = publisher.create_publisher(Odometry, '/odom', QoSProfile(depth=100))
        wait_for(lambda: pub.get_subscription_count() > 0, 30, 'the recorder')
        for stamp in [*first_run[:11], bogus, *first_run[11:], *second_run]:
            pub.publish(odom(stamp))
        wait_for(
            lambda: read_recording(root / 'run_r1').get('stats', {}).get('odometry_received', 0) >= 33,
            30,
            'every odometry message',
        )
    finally:
        assert stop(recorder) == 0, log.read_text()[-3000:]
    assert sorted(p.name for p in root.iterdir()) == ['run', 'run_r1'], log.read_text()[-3000:]
    # Everything received is recorded, the outlier too; each session holds one timeline.
    assert odometry_stamps(root / 'run') == pytest.approx([*first_run[:11], bogus, *first_run[11:]])
    assert odometry_stamps(root / 'run_r1') == pytest.approx(second_run)
    stats = read_recording(root / 'run_r1')['stats']
    assert stats['odometry_time_outliers'] == 1 and stats['time_resets'] == 1
