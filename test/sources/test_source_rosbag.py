"""rosbag2 source and bag writer: bags written by the test (rosbags, no ROS), good and bad."""

from __future__ import annotations

import json
import logging
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from captures import SHARED_CAPTURE, needs_shared_capture
from scipy.spatial.transform import Rotation

from actial_ros.bags.cdr import (
    CAMERA_INFO_TYPE,
    COMPRESSED_IMAGE_TYPE,
    IMAGE_TYPE,
    ODOMETRY_TYPE,
    camera_info_cdr,
    cdr_header_stamp_ns,
    compressed_image_cdr,
    image_cdr,
    odometry_cdr,
)
from actial_ros.bags.export import write_capture_bag
from actial_ros.bags.files import bag_parts
from actial_ros.bags.reading import default_typestore
from actial_ros.bags.writer import SplitBagWriter
from actial_ros.errors import CaptureError, ImageError
from actial_ros.frame import CameraIntrinsics
from actial_ros.geometry import base_to_optical_extrinsic, relative_pose
from actial_ros.imaging import encode_jpeg
from actial_ros.sources.base import SourceKind, SourceOptions
from actial_ros.sources.detection import detect_capture_kind
from actial_ros.sources.llff import LlffPosedCapture
from actial_ros.sources.rosbag import RosbagCapture

pytest.importorskip('rosbags')


NS = 1_000_000_000
T0 = 1_700_000_000 * NS
TS = default_typestore()
K = CameraIntrinsics(fx=50.0, fy=50.0, cx=16.0, cy=12.0, width=32, height=24)


def base_pose(t: float) -> np.ndarray:
    """A robot driving along x at 0.5 m/s while turning LEFT (counter-clockwise about z up) at 30 deg/s."""
    pose = np.eye(4)
    pose[:3, :3] = Rotation.from_euler('z', 30.0 * t, degrees=True).as_matrix()
    pose[:3, 3] = (0.5 * t, 0.0, 0.0)
    return pose


def image_bytes(index: int) -> bytes:
    rgb = np.full((24, 32, 3), (index * 37) % 256, dtype=np.uint8)
    return encode_jpeg(rgb, 90)


def write_robot_bag(
    path: Path,
    *,
    storage: str = 'mcap',
    seconds: float = 3.0,
    odom_hz: float = 50.0,
    image_hz: float = 10.0,
    image_offset_s: float = 0.007,
    with_odometry: bool = True,
    with_camera_info: bool = True,
    nan_odometry_at: float | None = None,
    gap: tuple[float, float] | None = None,
    duplicate_image: bool = False,
    corrupt_image: int | None = None,
    time_reset: bool = False,
    odometry_outlier: bool = False,
) -> list[int]:
    """A synthetic robot recording, written in log-time order as a recorder receives it; returns the image stamps."""
    stamps = []
    messages: list[tuple[int, str, bytes]] = []  # (log time, topic, CDR)
    with SplitBagWriter(path.parent, storage=storage, prefix=path.name) as bag_writer:
        if with_odometry or nan_odometry_at is not None:
            bag_writer.add_topic('/odom', ODOMETRY_TYPE)
        bag_writer.add_topic('/camera/camera_info', CAMERA_INFO_TYPE)
        bag_writer.add_topic('/camera/image_raw/compressed', COMPRESSED_IMAGE_TYPE)

        def write(topic: str, log_time: int, data: bytes) -> None:
            messages.append((log_time, topic, data))  # written in log-time order below

        if with_odometry:
            for k in range(int(seconds * odom_hz) + 1):
                t = k / odom_hz
                if gap is not None and gap[0] < t < gap[1]:
                    continue
                stamp = T0 + round(t * NS)
                override = (
                    (math.nan, 0.0, 0.0) if nan_odometry_at is not None and abs(t - nan_odometry_at) < 1e-9 else None
                )
                write('/odom', stamp, odometry_cdr(TS, stamp, base_pose(t), position_override=override))
            if time_reset:  # a simulation restart: received later, stamped near the start again
                for j in range(5):
                    write('/odom', T0 + 6 * NS + j, odometry_cdr(TS, T0 + 2 + j * NS // 50, base_pose(0.0)))
            if odometry_outlier:  # one message with a bogus stamp (5 s in the past) amid the valid ones
                write('/odom', T0 + NS + 1, odometry_cdr(TS, T0 - 5 * NS, base_pose(0.0)))
        elif nan_odometry_at is not None:  # the topic is there, but every pose is NaN
            for k in range(int(seconds * odom_hz) + 1):
                stamp = T0 + round(k / odom_hz * NS)
                write('/odom', stamp, odometry_cdr(TS, stamp, np.eye(4), position_override=(math.nan, 0, 0)))
        for k in range(int(seconds * image_hz)):
            stamp = T0 + round((k / image_hz + image_offset_s) * NS)
            if with_camera_info:
                write('/camera/camera_info', stamp, camera_info_cdr(TS, stamp, K))
            data = b'\xff\xd8\xff garbage' if k == corrupt_image else image_bytes(k)
            write('/camera/image_raw/compressed', stamp, compressed_image_cdr(TS, stamp, data))
            if duplicate_image and k == 3:
                write('/camera/image_raw/compressed', stamp, compressed_image_cdr(TS, stamp, image_bytes(99)))
            stamps.append(stamp)
        for log_time, topic, data in sorted(messages, key=lambda message: message[0]):
            bag_writer.write(topic, log_time, data)
    (path.parent / f'{path.name}_0000').rename(path)
    return stamps


def test_cdr_header_stamp() -> None:
    raw = odometry_cdr(TS, 12 * NS + 345, np.eye(4))
    assert cdr_header_stamp_ns(raw) == 12 * NS + 345
    msg: Any = TS.deserialize_cdr(raw, ODOMETRY_TYPE)
    assert msg.header.stamp.nanosec == 345
    with pytest.raises(ValueError):
        cdr_header_stamp_ns(b'\x00\x01')


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_odometry_is_interpolated_at_image_stamps(tmp_path: Path, storage: str) -> None:
    bag = tmp_path / 'robot'
    stamps = write_robot_bag(bag, storage=storage)
    assert detect_capture_kind(bag) is SourceKind.ROSBAG
    capture = RosbagCapture.open(bag)
    assert capture.metric and capture.object_id == 'robot' and not capture.skips
    assert [v.stamp_ns for v in capture.views] == stamps and capture.views[0].name == str(stamps[0])
    assert capture.views[0].intrinsics == K
    extrinsic = base_to_optical_extrinsic()
    for view in capture.views:
        # Constant velocity and yaw rate: lerp and slerp between samples are exact.
        expected = base_pose((view.stamp_ns - T0) / NS) @ extrinsic
        np.testing.assert_allclose(view.t_world_camera, expected, atol=1e-9)
    # The robot turned LEFT by 30 deg/s: one second apart, the camera yawed -30 deg (CONVENTIONS: left < 0).
    rel = relative_pose(capture.views[0].t_world_camera, capture.views[10].t_world_camera)
    assert rel.yaw_deg == pytest.approx(-30.0, abs=1e-6)
    images = dict(capture.iter_images([0, 5, 9]))
    assert sorted(images) == [0, 5, 9]
    assert all(isinstance(img, np.ndarray) and img.shape == (24, 32, 3) for img in images.values())


def test_extrinsic_from_options_and_from_recording_json(tmp_path: Path) -> None:
    bag = tmp_path / 'robot'
    write_robot_bag(bag)
    shifted = base_to_optical_extrinsic((0.2, 0.0, 0.5))
    options = SourceOptions(extrinsic=tuple(shifted.reshape(-1)))
    view = RosbagCapture.open(bag, options=options).views[0]
    np.testing.assert_allclose(view.t_world_camera, base_pose((view.stamp_ns - T0) / NS) @ shifted, atol=1e-9)
    session = tmp_path / 'session'
    session.mkdir()
    shutil.move(bag, session / 'bag_0000')
    (session / 'recording.json').write_text(
        json.dumps(
            {
                'parameters': {
                    'extrinsic_translation': [0.2, 0.0, 0.5],
                    'extrinsic_rotation_xyzw': [-0.5, 0.5, -0.5, 0.5],
                }
            }
        )
    )
    from_file = RosbagCapture.open(session)
    assert from_file.object_id == 'session'
    np.testing.assert_allclose(from_file.views[0].t_world_camera, view.t_world_camera, atol=1e-12)


@needs_shared_capture
def test_capture_exported_as_bag_reads_back_with_its_poses(tmp_path: Path) -> None:
    llff = LlffPosedCapture.open(SHARED_CAPTURE)
    stamps = write_capture_bag(llff, tmp_path / 'bag', transport='raw', storage='sqlite3', rate_hz=5.0)
    capture = RosbagCapture.open(tmp_path / 'bag')
    assert [v.stamp_ns for v in capture.views] == stamps
    for mine, theirs in zip(capture.views, llff.views, strict=True):
        np.testing.assert_allclose(mine.t_world_camera, theirs.t_world_camera, atol=1e-12)
    np.testing.assert_array_equal(capture.load_image(7), llff.load_image(7))  # rgb8 is lossless


def test_bags_without_odometry_or_camera_info(tmp_path: Path) -> None:
    write_robot_bag(tmp_path / 'no_odom', with_odometry=False)
    with pytest.raises(CaptureError, match='no nav_msgs/Odometry topic'):
        RosbagCapture.open(tmp_path / 'no_odom')
    # The topic is there but every message is NaN: no valid odometry at all.
    write_robot_bag(tmp_path / 'nan_odom', with_odometry=False, nan_odometry_at=0.0)
    with pytest.raises(CaptureError, match='no valid nav_msgs/Odometry'):
        RosbagCapture.open(tmp_path / 'nan_odom')
    write_robot_bag(tmp_path / 'no_info', with_camera_info=False)
    with pytest.raises(CaptureError, match='CameraInfo'):
        RosbagCapture.open(tmp_path / 'no_info')
    capture = RosbagCapture.open(tmp_path / 'no_info', options=SourceOptions(require_camera_info=False))
    assert len(capture.views) == 30 and capture.views[0].intrinsics is None


def test_counted_skips_nan_gap_duplicates_and_corrupt_images(tmp_path: Path) -> None:
    bag = tmp_path / 'robot'
    write_robot_bag(bag, nan_odometry_at=1.0, gap=(2.01, 2.79), duplicate_image=True, corrupt_image=4)
    capture = RosbagCapture.open(bag)
    assert capture.skips['bad_odometry'] == 1
    assert capture.skips['duplicate_stamp'] == 1
    # Images at 2.107, 2.207, ..., 2.707 s fall in a 0.8 s odometry gap (more than the 0.5 s interpolated over).
    assert capture.skips['odometry_gap'] == 7
    assert len(capture.views) == 30 - 7
    # The image next to the NaN sample is interpolated from the neighbours, still exact.
    view = next(v for v in capture.views if abs((v.stamp_ns - T0) / NS - 1.007) < 1e-6)
    np.testing.assert_allclose(view.t_world_camera, base_pose(1.007) @ base_to_optical_extrinsic(), atol=1e-9)
    results = dict(capture.iter_images(range(len(capture.views))))
    assert isinstance(results[4], ImageError)
    assert sum(isinstance(v, ImageError) for v in results.values()) == 1


def test_one_bogus_odometry_stamp_is_skipped_not_an_error(tmp_path: Path) -> None:
    """Before the timeline guard, one odometry stamp 5 s in the past made the whole bag 'two timelines'."""
    write_robot_bag(tmp_path / 'clean')
    write_robot_bag(tmp_path / 'outlier', odometry_outlier=True)
    clean, outlier = RosbagCapture.open(tmp_path / 'clean'), RosbagCapture.open(tmp_path / 'outlier')
    assert outlier.skips['time_outlier'] == 1 and 'time_outlier' not in clean.skips
    assert [v.name for v in outlier.views] == [v.name for v in clean.views]
    for a, b in zip(outlier.views, clean.views, strict=True):
        np.testing.assert_array_equal(a.t_world_camera, b.t_world_camera)


def test_time_reset_is_an_error_and_a_cut_bag_is_salvaged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_robot_bag(tmp_path / 'reset', time_reset=True)
    with pytest.raises(CaptureError, match='jump back'):
        RosbagCapture.open(tmp_path / 'reset')
    bag = tmp_path / 'cut'
    write_robot_bag(bag, seconds=30.0)  # about 1.5 MB: two chunks of rosbags' mcap writer (about 1 MiB each)
    intact = RosbagCapture.open(bag)
    mcap = next(bag.glob('*.mcap'))
    data = mcap.read_bytes()
    mcap.write_bytes(data[: len(data) * 3 // 4])  # inside the second chunk: the first one is whole
    with caplog.at_level(logging.WARNING):
        cut = RosbagCapture.open(bag)
    assert 'cut short' in caplog.text and str(mcap.parent) in caplog.text
    assert cut.skips['salvaged_bag'] == 1 and cut.skips['lost_tail_bytes'] > 0
    assert 0 < cut.skips['salvaged_messages'] < 30 * (50 + 10 + 10)
    # The images of the first chunk (about 20 s of 30), posed exactly as from the whole bag.
    assert 150 < len(cut.views) < len(intact.views)
    assert [v.name for v in cut.views] == [v.name for v in intact.views[: len(cut.views)]]
    for salvaged, whole in zip(cut.views, intact.views, strict=False):
        np.testing.assert_array_equal(salvaged.t_world_camera, whole.t_world_camera)
    # Cut inside the first chunk, or inside the header: nothing to recover, an error that says so.
    for size in (len(data) // 2, 20):
        mcap.write_bytes(data[:size])
        with pytest.raises(CaptureError, match=r'no readable bag.*nothing recoverable'):
            RosbagCapture.open(bag)


def test_split_writer_parts_budget_and_truncated_part(tmp_path: Path) -> None:
    session = tmp_path / 'session'
    image = image_cdr(TS, T0, np.zeros((100, 100, 3), dtype=np.uint8))  # ~30 KB
    with SplitBagWriter(session, max_part_bytes=100_000, max_total_bytes=400_000) as writer:
        writer.add_topic('/odom', ODOMETRY_TYPE)
        writer.add_topic('/camera/camera_info', CAMERA_INFO_TYPE, sticky=True)
        writer.add_topic('/camera/image_raw', IMAGE_TYPE)
        accepted = 0
        for k in range(20):
            stamp = T0 + k * NS // 10
            if k == 0:
                writer.write('/camera/camera_info', stamp, camera_info_cdr(TS, stamp, K))
            writer.write('/odom', stamp, odometry_cdr(TS, stamp, base_pose(k / 10)))
            accepted += writer.write(
                '/camera/image_raw', stamp, image_cdr(TS, stamp, np.zeros((100, 100, 3), dtype=np.uint8))
            )
    assert len(image) > 29_000
    assert writer.budget_exhausted and writer.refused > 0 and accepted < 20
    assert writer.bytes_written <= 400_000
    parts = sorted(p.name for p in session.iterdir())
    assert parts == [f'bag_{i:04d}' for i in range(len(parts))] and len(parts) >= 4
    assert bag_parts(session) == [session / name for name in parts]
    # Each part carries the camera info (sticky), so each part alone is usable.
    for part in parts:
        assert RosbagCapture.open(session / part).views[0].intrinsics == CameraIntrinsics(
            fx=50.0, fy=50.0, cx=16.0, cy=12.0, width=32, height=24
        )
    whole = RosbagCapture.open(session)
    assert len(whole.views) == accepted and whole.parts == tuple(session / p for p in parts)
    # A part cut short (the recorder was killed): skipped and counted, the rest still reads.
    mcap = next((session / parts[1]).glob('*.mcap'))
    mcap.write_bytes(mcap.read_bytes()[:1000])
    partial = RosbagCapture.open(session)
    assert partial.skips['unreadable_bag'] == 1 and 0 < len(partial.views) < accepted
    # A new writer in the same folder continues the numbering.
    with SplitBagWriter(session) as writer:
        writer.add_topic('/odom', ODOMETRY_TYPE)
        writer.write('/odom', T0, odometry_cdr(TS, T0, np.eye(4)))
    assert writer.parts == [session / f'bag_{len(parts):04d}']


def test_topics_are_chosen_by_type_or_by_name(tmp_path: Path) -> None:
    bag = tmp_path / 'two_cameras'
    with SplitBagWriter(tmp_path, prefix='two_cameras') as writer:
        writer.add_topic('/odom', ODOMETRY_TYPE)
        writer.add_topic('/left/camera_info', CAMERA_INFO_TYPE)
        for name in ('/left/image', '/right/image'):
            writer.add_topic(name, COMPRESSED_IMAGE_TYPE)
        writer.add_topic('/left/depth/image_raw', IMAGE_TYPE)
        for k in range(3):
            stamp = T0 + k * NS // 10
            writer.write('/odom', stamp, odometry_cdr(TS, stamp, base_pose(k / 10)))
            writer.write('/left/camera_info', stamp, camera_info_cdr(TS, stamp, K))
            for name in ('/left/image', '/right/image'):
                writer.write(name, stamp, compressed_image_cdr(TS, stamp, image_bytes(k)))
    (tmp_path / 'two_cameras_0000').rename(bag)
    with pytest.raises(CaptureError, match=r"several image topics \['/left/image', '/right/image'\]"):
        RosbagCapture.open(bag)  # the depth topic is not a candidate
    capture = RosbagCapture.open(bag, options=SourceOptions(image_topic='/right/image'))
    assert capture.topics == ('/right/image', '/odom', '/left/camera_info') and len(capture.views) == 3
    with pytest.raises(CaptureError, match='has type'):
        RosbagCapture.open(bag, options=SourceOptions(image_topic='/odom'))
