"""bag_recorder with two cameras over real DDS, then the dataset builder on its recording.

``capture_replay`` publishes the bundled capture as two virtual cameras with known mountings (even images:
``left``, turned +30 deg, 10 cm left; odd: ``right``, -30 deg, 10 cm right; one odometry stream).
``bag_recorder`` records both (``additional_cameras``), deciding keyframes per camera, and writes both
cameras into ``recording.json``; ``build-viewpoint`` reads the session without flags. Every row must carry
the capture's own pose and label, for same-camera and cross-camera pairs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from actial_ros.geometry import LabelThresholds, base_to_optical_extrinsic, relative_pose, viewpoint_label
from actial_ros.keyframes import rotation_angle_deg
from actial_ros.sources.llff import LlffPosedCapture
from actial_ros.sources.rosbag import RosbagCapture

pytest.importorskip('rclpy')
pq = pytest.importorskip('pyarrow.parquet')
from ros_harness import read_recording, start, stop, wait_for  # noqa: E402

pytestmark = pytest.mark.ros

MIN_ROTATION_DEG = 15.0


def mount(yaw_deg: float, y_m: float) -> dict[str, list[float]]:
    """Extrinsic of a camera turned ``yaw_deg`` about base z (left positive), at (0, y_m, 0.3)."""
    rotation = Rotation.from_euler('z', yaw_deg, degrees=True).as_matrix() @ base_to_optical_extrinsic()[:3, :3]
    return {'translation': [0.0, y_m, 0.3], 'rotation': [float(v) for v in Rotation.from_matrix(rotation).as_quat()]}


LEFT, RIGHT = mount(30.0, 0.1), mount(-30.0, -0.1)
CAMERAS: dict[str, Any] = {
    'camera_id': 'left',
    'image_topic': '/left/image_raw',
    'camera_info_topic': '/left/camera_info',
    'extrinsic_translation': str(LEFT['translation']),
    'extrinsic_rotation_xyzw': str(LEFT['rotation']),
    'additional_cameras': '[right]',
    'right.image_topic': '/right/image_raw',
    'right.camera_info_topic': '/right/camera_info',
    'right.extrinsic_translation': str(RIGHT['translation']),
    'right.extrinsic_rotation_xyzw': str(RIGHT['rotation']),
}


def expected_keyframes(capture: LlffPosedCapture, indices: range) -> list[int]:
    """Keyframes of one camera alone: kept when turned MIN_ROTATION_DEG since ITS last kept frame."""
    poses = capture.poses
    kept = [indices[0]]
    for k in indices[1:]:
        if rotation_angle_deg(poses[kept[-1]][:3, :3].T @ poses[k][:3, :3]) >= MIN_ROTATION_DEG:
            kept.append(k)
    return kept


def test_recorder_records_two_cameras_and_the_builder_reads_them(
    sample_capture: Path, ros_env: dict[str, str], tmp_path: Path
) -> None:
    from actial_ros.training.dataset.build import build
    from actial_ros.training.dataset.build_config import BuildConfig
    from actial_ros.training.dataset.pair_selection import PairConfig, object_scale

    capture = LlffPosedCapture.open(sample_capture)
    session = tmp_path / 'recordings' / 'rig'
    recorder = start(
        'actial_ros.nodes.bag_recorder',
        {
            **CAMERAS,
            'output_dir': tmp_path / 'recordings',
            'session': 'rig',
            'max_bag_size_mb': 2.0,
            'stats_period_s': 0.2,
            # SfM units, not metres: keep frames by rotation only.
            'keyframe_min_rotation_deg': MIN_ROTATION_DEG,
            'keyframe_min_translation_m': 1000.0,
        },
        ros_env,
        tmp_path / 'recorder.log',
    )
    manifest = tmp_path / 'manifest.jsonl'
    try:
        wait_for(lambda: 'stats' in read_recording(session), 30, 'the recorder')
        replay = start(
            'actial_ros.nodes.capture_replay',
            {
                **CAMERAS,
                'capture': sample_capture,
                'frame_stride': 2,
                'right.frame_stride': 2,
                'right.frame_offset': 1,
                'rate_hz': 20.0,
                'manifest': manifest,
                'image_qos': 'reliable',
                'settle_s': 2.0,  # the recorder's odometry subscription must match too (not waited for)
            },
            ros_env,
            tmp_path / 'replay.log',
        )
        assert replay.wait(90) == 0, (tmp_path / 'replay.log').read_text()
        wait_for(
            lambda: (
                read_recording(session)['stats'].get('images_received', 0) == len(capture)
                and read_recording(session)['stats'].get('queue') == 0
            ),
            30,
            'every image at the recorder',
        )
    finally:
        assert stop(recorder) == 0, (tmp_path / 'recorder.log').read_text()
    final = read_recording(session)
    assert final['closed'] is True
    assert [c['name'] for c in final['cameras']] == ['left', 'right']
    assert final['cameras'][1]['image_topic'] == '/right/image_raw'
    np.testing.assert_allclose(final['cameras'][1]['extrinsic_translation'], RIGHT['translation'], atol=1e-12)
    stats = final['stats']
    assert len(stats['parts']) >= 3  # split parts of 2 MB

    # Keyframes were decided per camera: each camera keeps exactly what its own frames alone give.
    entries = [json.loads(line) for line in manifest.read_text().splitlines()]
    index_of = {(e['stamp_ns'], e['camera']): e['index'] for e in entries}
    bag = RosbagCapture.open(session)
    assert not bag.skips and [c.name for c in bag.cameras] == ['left', 'right']
    for name, indices in (('left', range(0, len(capture), 2)), ('right', range(1, len(capture), 2))):
        kept = sorted(index_of[(v.stamp_ns, name)] for i, v in enumerate(bag.views) if bag.view_camera(i) == name)
        expected = expected_keyframes(capture, indices)
        assert kept == expected and len(expected) < len(indices)
        assert stats['cameras'][name]['images_received'] == len(indices)
        assert stats['cameras'][name]['images_written'] == len(expected)
    for i, view in enumerate(bag.views):
        k = index_of[(view.stamp_ns, bag.view_camera(i))]
        np.testing.assert_allclose(view.t_world_camera, capture.views[k].t_world_camera, atol=1e-9)

    # The builder reads the session as one object with both cameras (from recording.json, no flags).
    threshold = 0.02 * object_scale(capture.poses)
    report = build(
        BuildConfig(
            sources=(f'rosbag:{session}',),
            out=tmp_path / 'data',
            test_size=0,
            max_width=96,
            max_height=96,
            pairs=PairConfig(max_pairs=None, translation_threshold_m=threshold),
        )
    )
    assert report.complete
    rows = pq.read_table(tmp_path / 'data' / 'data').to_pylist()
    thresholds = LabelThresholds(translation_m=threshold, yaw_deg=2.0)
    kinds = set()
    for row in rows:
        (c1, s1), (c2, s2) = (name.split('@') for name in (row['image_1_name'], row['image_2_name']))
        k1, k2 = index_of[(int(s1), c1)], index_of[(int(s2), c2)]
        expected_pose = relative_pose(capture.views[k1].t_world_camera, capture.views[k2].t_world_camera)
        assert math.isclose(row['yaw_deg'], expected_pose.yaw_deg, abs_tol=1e-7)
        assert row['answer_label'] == viewpoint_label(row['question_type'], expected_pose, thresholds).value
        kinds.add('same' if c1 == c2 else 'cross')
    assert kinds == {'same', 'cross'}
