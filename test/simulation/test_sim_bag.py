"""A simulated run written to a rosbag2 without ROS: topics, stamps, images and poses agree with the rig."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from actial_ros.errors import ConfigError
from actial_ros.geometry import camera_pose_from_odometry
from actial_ros.imaging import image_msg_to_rgb
from actial_ros.message_fields import camera_info_to_intrinsics, odometry_to_transform, stamp_to_ns
from actial_ros.simulation.bag import SimTopics, write_sim_bag
from actial_ros.simulation.camera import PinholeCamera
from actial_ros.simulation.mount import camera_mount
from actial_ros.simulation.record import read_pose_record
from actial_ros.simulation.render import RenderOptions
from actial_ros.simulation.rig import RigConfig, SimRig
from actial_ros.simulation.scene import SceneConfig
from actial_ros.simulation.timing import SimTiming
from actial_ros.simulation.trajectory import OrbitTrajectory

pytest.importorskip('pybullet')
AnyReader = pytest.importorskip('rosbags.highlevel').AnyReader

CONFIG = RigConfig(
    camera=PinholeCamera(64, 48),
    render=RenderOptions(depth=True, noise_std=3.0, noise_seed=1),
    scene=SceneConfig(objects=('duck_vhacd.urdf', 'objects/mug.urdf')),
    trajectory=OrbitTrajectory(radius_m=1.4, height_m=0.6, speed_deg_s=40.0),
    extrinsic=camera_mount((0.0, 0.0, 0.1), pitch_down_deg=20.0),
    timing=SimTiming(step_rate_hz=20.0, camera_rate_hz=5.0, odometry_rate_hz=10.0, start_ns=1_000_000_000),
    duration_s=1.0,
)


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_bag_holds_the_run(tmp_path: Path, storage: str) -> None:
    bag, record_path = tmp_path / 'run', tmp_path / 'run.jsonl'
    with SimRig(CONFIG) as rig:
        summary = write_sim_bag(bag, rig, storage=storage, record=record_path)
        reference = {f.stamp_ns: f for f in rig.frames()}  # rendering is deterministic
    topics = SimTopics()
    assert summary.frames == 6 and summary.last_stamp_ns == 2_000_000_000
    assert summary.counts == {
        topics.clock: 21,
        topics.odometry: 11,
        topics.camera_info: 6,
        topics.image: 6,
        topics.depth: 6,
    }
    record = read_pose_record(record_path)
    assert record.complete and len(record) == 6
    truth = record.by_stamp()

    odometry: dict[int, np.ndarray] = {}
    images: dict[int, np.ndarray] = {}
    clocks: list[int] = []
    with AnyReader([bag]) as reader:
        for connection, logged, raw in reader.messages():
            msg = reader.deserialize(raw, connection.msgtype)
            if connection.topic == topics.clock:
                clocks.append(stamp_to_ns(msg.clock))
                continue
            stamp = stamp_to_ns(msg.header.stamp)
            assert logged == stamp  # logged at simulated time
            if connection.topic == topics.odometry:
                assert (msg.header.frame_id, msg.child_frame_id) == ('odom', 'base_link')
                odometry[stamp] = odometry_to_transform(msg)
            elif connection.topic == topics.camera_info:
                intrinsics = camera_info_to_intrinsics(msg)
                assert intrinsics == rig.intrinsics
            elif connection.topic == topics.image:
                assert msg.header.frame_id == 'camera_optical_frame' and msg.encoding == 'rgb8'
                images[stamp] = image_msg_to_rgb(msg)
            elif connection.topic == topics.depth:
                assert msg.encoding == '32FC1'
                depth = np.frombuffer(bytes(msg.data), '<f4').reshape(msg.height, msg.width)
                np.testing.assert_array_equal(depth, reference[stamp].depth)
    assert clocks == [1_000_000_000 + k * 50_000_000 for k in range(21)]
    assert set(images) == set(truth) == set(reference)
    for stamp, frame in truth.items():
        np.testing.assert_array_equal(images[stamp], reference[stamp].rgb)
        # Odometry with exactly the image's stamp, composed with the extrinsic, is the recorded camera pose.
        np.testing.assert_allclose(
            camera_pose_from_odometry(odometry[stamp], CONFIG.extrinsic), frame.t_world_camera, atol=1e-9
        )
        np.testing.assert_allclose(odometry[stamp], frame.t_world_base, atol=1e-9)


def test_bag_refuses_endless_runs_and_existing_paths(tmp_path: Path) -> None:
    endless = RigConfig(camera=PinholeCamera(32, 24), scene=SceneConfig(objects=()))
    with SimRig(endless) as rig, pytest.raises(ConfigError, match='endless'):
        write_sim_bag(tmp_path / 'x', rig)
    (tmp_path / 'exists').mkdir()
    with SimRig(CONFIG) as rig:
        with pytest.raises(ConfigError, match='exists'):
            write_sim_bag(tmp_path / 'exists', rig)
        with pytest.raises(ConfigError, match='storage'):
            write_sim_bag(tmp_path / 'y', rig, storage='parquet')
