"""Multi-camera rosbag source (no ROS): one odometry stream, several cameras with their own extrinsics.

The bundled capture is split into two virtual cameras with known mountings (even images: camera ``left``
turned +30 deg about base z, 10 cm left; odd images: ``right``, -30 deg, 10 cm right), odometry being
``T_world_camera @ inv(extrinsic)`` of the camera that took the frame. Read back, every view must carry
the capture's own pose (so the builder's labels of same-camera and cross-camera pairs equal labels from
the capture), which only holds when each camera's extrinsic is applied to the one odometry stream.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from actial_ros.bags.camera_specs import bag_cameras_from_args, default_camera_info_topic, parse_extrinsic_arg
from actial_ros.bags.cdr import (
    CAMERA_INFO_TYPE,
    COMPRESSED_IMAGE_TYPE,
    ODOMETRY_TYPE,
    camera_info_cdr,
    cdr_header_stamp_ns,
    compressed_image_cdr,
    odometry_cdr,
    set_cdr_header_stamp,
)
from actial_ros.bags.export import RigCamera, write_rig_bag
from actial_ros.bags.reading import default_typestore
from actial_ros.bags.writer import SplitBagWriter
from actial_ros.errors import CaptureError, ConfigError
from actial_ros.frame import CameraIntrinsics
from actial_ros.geometry import LabelThresholds, base_to_optical_extrinsic, relative_pose, viewpoint_label
from actial_ros.imaging import encode_jpeg
from actial_ros.message_fields import pose_fields
from actial_ros.sources.bag_layout import read_bag_layout
from actial_ros.sources.base import SourceOptions
from actial_ros.sources.llff import LlffPosedCapture
from actial_ros.sources.rosbag import RosbagCapture

pytest.importorskip('rosbags')
pq = pytest.importorskip('pyarrow.parquet')

NS = 1_000_000_000
T0 = 1_700_000_000 * NS
TS = default_typestore()
TOPICS = {'left': '/left/image_raw/compressed', 'right': '/right/image_raw/compressed'}


def mount(yaw_deg: float, y_m: float) -> np.ndarray:
    """``T_base_camera_optical`` of a camera turned ``yaw_deg`` about base z (left positive), at (0, y_m, 0.3)."""
    rotation = Rotation.from_euler('z', yaw_deg, degrees=True).as_matrix() @ base_to_optical_extrinsic()[:3, :3]
    return base_to_optical_extrinsic((0.0, y_m, 0.3), Rotation.from_matrix(rotation).as_quat())


LEFT, RIGHT = mount(30.0, 0.1), mount(-30.0, -0.1)


def extrinsic_arg(name: str, matrix: np.ndarray) -> str:
    (tx, ty, tz), (qx, qy, qz, qw) = pose_fields(matrix)
    return f'{name}:{tx!r},{ty!r},{tz!r},{qx!r},{qy!r},{qz!r},{qw!r}'


def flags(left: np.ndarray = LEFT, right: np.ndarray = RIGHT) -> SourceOptions:
    cameras = [f'{name}:{topic}' for name, topic in TOPICS.items()]
    return SourceOptions(
        cameras=bag_cameras_from_args(cameras, [extrinsic_arg('left', left), extrinsic_arg('right', right)])
    )


def write_rig(path: Path, capture: LlffPosedCapture, *, recording_json: bool, swap: bool = False) -> dict[int, int]:
    """The two-camera bag; returns stamp -> capture index."""
    even, odd = tuple(range(0, len(capture), 2)), tuple(range(1, len(capture), 2))
    cameras = [
        RigCamera('left', capture, odd if swap else even, LEFT),
        RigCamera('right', capture, even if swap else odd, RIGHT),
    ]
    written = write_rig_bag(cameras, path, recording_json=recording_json)
    return {stamp: index for _, index, stamp in written}


@pytest.fixture(scope='module')
def capture(sample_capture: Path) -> LlffPosedCapture:
    return LlffPosedCapture.open(sample_capture)


def assert_capture_poses(bag: RosbagCapture, capture: LlffPosedCapture, index_of: dict[int, int]) -> None:
    assert len(bag.views) == len(capture) and not bag.skips
    for i, view in enumerate(bag.views):
        k = index_of[view.stamp_ns]
        camera = 'left' if k % 2 == 0 else 'right'
        assert view.name == f'{camera}@{view.stamp_ns}' and bag.view_camera(i) == camera
        np.testing.assert_allclose(view.t_world_camera, capture.views[k].t_world_camera, atol=1e-9)
        assert view.intrinsics == capture.views[k].intrinsics


def test_each_camera_is_posed_through_its_own_extrinsic(
    tmp_path: Path, capture: LlffPosedCapture, sample_capture: Path
) -> None:
    index_of = write_rig(tmp_path / 'rig', capture, recording_json=False)
    with pytest.raises(CaptureError, match=r'several image topics .*--camera NAME:TOPIC'):
        RosbagCapture.open(tmp_path / 'rig')  # no recording.json, no flags: which cameras is ambiguous

    bag = RosbagCapture.open(tmp_path / 'rig', options=flags())
    assert_capture_poses(bag, capture, index_of)
    assert [(c.name, c.image_topic, c.camera_info_topic, c.transport) for c in bag.cameras] == [
        ('left', TOPICS['left'], '/left/camera_info', 'compressed'),
        ('right', TOPICS['right'], '/right/camera_info', 'compressed'),
    ]
    np.testing.assert_allclose(bag.cameras[1].matrix, RIGHT, atol=1e-12)
    # Images come from the right camera's topic: view k decodes to the capture's image k.
    for i in (0, 1, 7):
        k = index_of[bag.views[i].stamp_ns]
        difference = np.abs(bag.load_image(i).astype(int) - capture.load_image(k).astype(int)).mean()
        assert difference < 3.0, (i, k, difference)

    # The extrinsics matter: swapped mountings give other poses; a camera without one is an error.
    swapped = RosbagCapture.open(tmp_path / 'rig', options=flags(RIGHT, LEFT))
    assert (
        max(np.abs(a.t_world_camera - b.t_world_camera).max() for a, b in zip(swapped.views, bag.views, strict=True))
        > 0.1
    )
    with pytest.raises(CaptureError, match='camera right has no extrinsic'):
        RosbagCapture.open(
            tmp_path / 'rig',
            options=SourceOptions(
                cameras=bag_cameras_from_args([f'{n}:{t}' for n, t in TOPICS.items()], [extrinsic_arg('left', LEFT)])
            ),
        )
    with pytest.raises(CaptureError, match='camera left: no topic /nope'):
        RosbagCapture.open(
            tmp_path / 'rig',
            options=SourceOptions(cameras=bag_cameras_from_args(['left:/nope'], [extrinsic_arg('left', LEFT)])),
        )

    # A YAML camera file gives the same.
    (tx, ty, tz), rotation = pose_fields(RIGHT)
    (lx, ly, lz), left_rotation = pose_fields(LEFT)
    camera_file = tmp_path / 'cameras.yaml'
    camera_file.write_text(
        'cameras:\n'
        f'  - {{name: left, image_topic: {TOPICS["left"]}, extrinsic_translation: [{lx!r}, {ly!r}, {lz!r}],\n'
        f'     extrinsic_rotation_xyzw: {list(left_rotation)!r}}}\n'
        f'  - {{name: right, image_topic: {TOPICS["right"]}, camera_info_topic: /right/camera_info,\n'
        f'     extrinsic_translation: [{tx!r}, {ty!r}, {tz!r}], extrinsic_rotation_xyzw: {list(rotation)!r}}}\n'
    )
    from_file = RosbagCapture.open(
        tmp_path / 'rig', options=SourceOptions(cameras=bag_cameras_from_args(camera_file=camera_file))
    )
    assert_capture_poses(from_file, capture, index_of)


def test_cameras_come_from_recording_json(tmp_path: Path, capture: LlffPosedCapture) -> None:
    index_of = write_rig(tmp_path / 'rig', capture, recording_json=True)
    bag = RosbagCapture.open(tmp_path / 'rig')
    assert_capture_poses(bag, capture, index_of)
    layout = read_bag_layout(tmp_path / 'rig')
    assert layout.named_views and layout.odometry_topic == '/odom'
    assert [c.name for c in layout.cameras] == ['left', 'right']

    # --extrinsic NAME:... without --camera overrides that camera of the recording.
    override = RosbagCapture.open(
        tmp_path / 'rig', options=SourceOptions(cameras=bag_cameras_from_args((), [extrinsic_arg('right', LEFT)]))
    )
    for a, b in zip(override.views, bag.views, strict=True):
        moved = np.abs(a.t_world_camera - b.t_world_camera).max() > 0.1
        assert moved == a.name.startswith('right@')
    with pytest.raises(CaptureError, match=r"extrinsic for cameras \['front'\] not in the recording"):
        RosbagCapture.open(
            tmp_path / 'rig', options=SourceOptions(cameras=bag_cameras_from_args((), [extrinsic_arg('front', LEFT)]))
        )

    # One camera of the rig read on its own (the old single-camera options): stamps as names, the
    # recording's extrinsic and CameraInfo topic of THAT camera.
    right = RosbagCapture.open(tmp_path / 'rig', options=SourceOptions(image_topic=TOPICS['right']))
    assert right.topics == (TOPICS['right'], '/odom', '/right/camera_info')
    assert len(right.views) == len(capture) // 2
    for view in right.views:
        assert view.name == str(view.stamp_ns)
        np.testing.assert_allclose(
            view.t_world_camera, capture.views[index_of[view.stamp_ns]].t_world_camera, atol=1e-9
        )


def test_flag_parsing() -> None:
    assert default_camera_info_topic('/left/image_raw/compressed') == '/left/camera_info'
    assert default_camera_info_topic('/rig/front/image_rect') == '/rig/front/camera_info'
    name, values = parse_extrinsic_arg('left:0,0.1,0.3,-0.5,0.5,-0.5,0.5')
    assert name == 'left' and values[3] == pytest.approx(0.0) and values[7] == pytest.approx(0.1)
    for bad in ('left:1,2,3', 'left', ':0,0,0,0,0,0,1', 'left:0,0,0,0,0,0,0'):
        with pytest.raises(ConfigError):
            parse_extrinsic_arg(bad)
    for bad_cameras, bad_extrinsics in (
        (['left'], []),
        (['left:/a', 'left:/b'], []),
        (['left:/a'], ['right:0,0,0,0,0,0,1']),
        (['le-ft:/a'], []),
    ):
        with pytest.raises(ConfigError):
            bag_cameras_from_args(bad_cameras, bad_extrinsics)
    camera = bag_cameras_from_args(['left:/l/image:/l/info'], ['left:1,2,3,0,0,0,1'])[0]
    assert (camera.image_topic, camera.camera_info_topic) == ('/l/image', '/l/info')
    assert camera.extrinsic is not None and camera.extrinsic[3] == 1.0
    with pytest.raises(ConfigError, match='exclude'):
        SourceOptions(image_topic='/a', cameras=(camera,))
    raw = odometry_cdr(TS, T0 + 5, np.eye(4))
    moved = set_cdr_header_stamp(raw, T0 + 7 * NS + 11)
    assert cdr_header_stamp_ns(moved) == T0 + 7 * NS + 11 and moved[12:] == raw[12:] and moved[:4] == raw[:4]


def base_pose(t: float) -> np.ndarray:
    """A robot driving along x at 0.5 m/s while turning left at 30 deg/s (interpolation is exact)."""
    pose = np.eye(4)
    pose[:3, :3] = Rotation.from_euler('z', 30.0 * t, degrees=True).as_matrix()
    pose[:3, 3] = (0.5 * t, 0.0, 0.0)
    return pose


def test_synchronised_rig_gives_pairs_within_and_across_cameras(tmp_path: Path) -> None:
    """Two cameras at the same stamps (and 2 ms apart on odd frames), odometry at 50 Hz; built with the CLI
    flags. Same-stamp cross-camera pairs are 60 deg apart; every label equals the one of the true poses."""
    from actial_ros.training.dataset.build import build, configure_parser
    from actial_ros.training.dataset.build_config import config_from_args

    k_info = CameraIntrinsics(fx=50.0, fy=50.0, cx=16.0, cy=12.0, width=32, height=24)
    truth: dict[str, np.ndarray] = {}
    grey: dict[str, int] = {}
    with SplitBagWriter(tmp_path, prefix='sync') as writer:
        writer.add_topic('/odom', ODOMETRY_TYPE)
        for name in TOPICS:
            writer.add_topic(f'/{name}/camera_info', CAMERA_INFO_TYPE)
            writer.add_topic(TOPICS[name], COMPRESSED_IMAGE_TYPE)
        for k in range(151):
            stamp = T0 + round(k / 50 * NS)
            writer.write('/odom', stamp, odometry_cdr(TS, stamp, base_pose(k / 50)))
        for k in range(30):
            for name, extrinsic in (('left', LEFT), ('right', RIGHT)):
                t = k / 10 + 0.007 + (0.002 if name == 'right' and k % 2 else 0.0)
                stamp = T0 + round(t * NS)
                writer.write(f'/{name}/camera_info', stamp, camera_info_cdr(TS, stamp, k_info))
                grey[f'{name}@{stamp}'] = (k * 37 + (name == 'right') * 100) % 256
                rgb = np.full((24, 32, 3), grey[f'{name}@{stamp}'], dtype=np.uint8)
                writer.write(TOPICS[name], stamp, compressed_image_cdr(TS, stamp, encode_jpeg(rgb, 90)))
                truth[f'{name}@{stamp}'] = base_pose((stamp - T0) / NS) @ extrinsic
    (tmp_path / 'sync_0000').rename(tmp_path / 'sync')

    parser = argparse.ArgumentParser()
    configure_parser(parser)
    args = parser.parse_args(
        ['--source', f'rosbag:{tmp_path / "sync"}', '--out', str(tmp_path / 'out'), '--test-size', '0']
        + ['--max-pairs-per-object', '0', '--workers', '1', '--no-progress']
        + [f'--camera={name}:{topic}' for name, topic in TOPICS.items()]
        + [f'--extrinsic={extrinsic_arg("left", LEFT)}', f'--extrinsic={extrinsic_arg("right", RIGHT)}']
    )
    config = config_from_args(args)
    assert [c.name for c in config.source_options.cameras] == ['left', 'right']
    # Two cameras at one stamp: each view's image comes from its own camera's topic.
    bag = RosbagCapture.open(tmp_path / 'sync', options=config.source_options)
    assert len(bag.views) == 60 and len({v.stamp_ns for v in bag.views}) == 45
    for index, image in bag.iter_images(range(len(bag.views))):
        assert not isinstance(image, Exception)
        assert abs(float(image.mean()) - grey[bag.views[index].name]) < 2.0
    report = build(config)
    assert report.complete and report.views == {'usable': 60}
    rows = pq.read_table(tmp_path / 'out' / 'data').to_pylist()
    thresholds = LabelThresholds(translation_m=config.pairs.translation_threshold_m, yaw_deg=2.0)
    kinds: set[str] = set()
    for row in rows:
        first, second = truth[row['image_1_name']], truth[row['image_2_name']]
        expected = relative_pose(first, second)
        assert math.isclose(row['yaw_deg'], expected.yaw_deg, abs_tol=1e-6)
        np.testing.assert_allclose(row['t12'], expected.translation, atol=1e-6)
        assert row['answer_label'] == viewpoint_label(row['question_type'], expected, thresholds).value
        (c1, s1), (c2, s2) = (name.split('@') for name in (row['image_1_name'], row['image_2_name']))
        kinds.add('same' if c1 == c2 else 'cross-same-stamp' if s1 == s2 else 'cross')
    assert kinds == {'same', 'cross', 'cross-same-stamp'}
    same_stamp = [r for r in rows if r['image_1_name'].split('@')[1] == r['image_2_name'].split('@')[1]]
    assert all(abs(abs(r['yaw_deg']) - 60.0) < 1e-6 for r in same_stamp)


def test_build_labels_match_the_capture_split_by_object_deterministic_and_resumable(
    tmp_path: Path, capture: LlffPosedCapture
) -> None:
    """Two multi-camera recordings (an objects: source, cameras from recording.json) built into a dataset:
    every row carries the capture's pose and label; objects are split; a resumed build is byte-identical."""
    from actial_ros.training.dataset.build import build
    from actial_ros.training.dataset.build_config import BuildConfig
    from actial_ros.training.dataset.pair_selection import PairConfig, object_scale

    recordings = tmp_path / 'recordings'
    index_of = write_rig(recordings / 'rig_a', capture, recording_json=True)
    index_of.update(write_rig(recordings / 'rig_b', capture, recording_json=True, swap=True))
    threshold = 0.02 * object_scale(capture.poses)  # capture units stand in for metres

    def config(out: str, **kwargs: Any) -> BuildConfig:
        return BuildConfig(
            sources=(f'objects:{recordings}',),
            out=tmp_path / out,
            test_size=20,
            rows_per_shard=30,
            max_width=96,
            max_height=96,
            pairs=PairConfig(max_pairs=20, translation_threshold_m=threshold),
            **kwargs,
        )

    report = build(config('full'))
    assert report.complete and report.objects['train'] == 1 and report.objects['test'] == 1
    rows = pq.read_table(tmp_path / 'full' / 'data').to_pylist()
    assert len(rows) == 3 * (20 + 20)
    thresholds = LabelThresholds(translation_m=threshold, yaw_deg=2.0)
    splits: dict[str, set[str]] = {}
    pairs = {'same': 0, 'cross': 0}
    for row in rows:
        splits.setdefault(row['object_id'], set()).add(row['split'])
        names = (row['image_1_name'], row['image_2_name'])
        assert all(re.fullmatch(r'(left|right)@\d+', name) for name in names)
        k1, k2 = (index_of[int(name.split('@')[1])] for name in names)
        expected = relative_pose(capture.views[k1].t_world_camera, capture.views[k2].t_world_camera)
        assert math.isclose(row['yaw_deg'], expected.yaw_deg, abs_tol=1e-7)
        np.testing.assert_allclose(row['t12'], expected.translation, atol=1e-9)
        assert row['answer_label'] == viewpoint_label(row['question_type'], expected, thresholds).value
        # the camera that took capture image k: rig_a left = even, rig_b left = odd
        even_camera = 'left' if row['object_id'] == 'rig_a' else 'right'
        for name, k in zip(names, (k1, k2), strict=True):
            assert name.startswith(even_camera if k % 2 == 0 else ('right' if even_camera == 'left' else 'left'))
        pairs['same' if names[0].split('@')[0] == names[1].split('@')[0] else 'cross'] += 1
    assert all(len(s) == 1 for s in splits.values()) and set(splits) == {'rig_a', 'rig_b'}
    assert pairs['same'] > 0 and pairs['cross'] > 0

    # Interrupted after one shard, then resumed: byte-identical to the uninterrupted build.
    partial = build(config('resumed', stop_after_shards=1))
    assert not partial.complete and partial.shards_written == 1
    resumed = build(config('resumed'))
    assert resumed.complete and resumed.shards_resumed == 1
    for path in sorted((tmp_path / 'full' / 'data').iterdir()):
        assert (tmp_path / 'resumed' / 'data' / path.name).read_bytes() == path.read_bytes(), path.name
    assert (tmp_path / 'resumed' / 'README.md').read_text() == (tmp_path / 'full' / 'README.md').read_text()
    shutil.rmtree(tmp_path / 'resumed')
    assert json.loads((tmp_path / 'full' / 'build_report.json').read_text())['views']['usable'] == 2 * len(capture)
