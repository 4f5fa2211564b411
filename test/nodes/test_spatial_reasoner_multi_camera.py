"""Two cameras with different extrinsics over real DDS: the bundled capture split into two virtual
cameras with known mountings (even images: a camera turned 30 deg left and 10 cm left of the base
origin; odd images: one turned 30 deg right, 10 cm right). Labels of same-camera and cross-camera pairs
must match the capture's own poses, which requires each camera's extrinsic to be applied to the one
odometry stream correctly.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from actial_ros.geometry import base_to_optical_extrinsic, relative_pose, viewpoint_label
from actial_ros.sources.llff import LlffCapture

pytest.importorskip('rclpy')
from ros_harness import Checker, start, stop

pytestmark = pytest.mark.ros


def mount(yaw_deg: float, y_m: float) -> dict[str, list[float]]:
    """Extrinsic of a camera turned ``yaw_deg`` about base z (left positive), at (0, y_m, 0.3)."""
    rotation = Rotation.from_euler('z', yaw_deg, degrees=True).as_matrix() @ base_to_optical_extrinsic()[:3, :3]
    return {'translation': [0.0, y_m, 0.3], 'rotation': [float(v) for v in Rotation.from_matrix(rotation).as_quat()]}


LEFT, RIGHT = mount(30.0, 0.1), mount(-30.0, -0.1)


def camera_params(prefix: str, extrinsic: dict[str, list[float]]) -> dict[str, Any]:
    return {
        f'{prefix}extrinsic_translation': str(extrinsic['translation']),
        f'{prefix}extrinsic_rotation_xyzw': str(extrinsic['rotation']),
    }


def test_two_cameras_with_cross_camera_pairs(
    sample_capture: Path, ros_env: dict[str, str], tmp_path: Path, rclpy_context: Any
) -> None:
    checker = Checker(rclpy_context)
    cameras = {
        'camera_id': 'left',
        'image_topic': '/left/image_raw',
        'camera_info_topic': '/left/camera_info',
        **camera_params('', LEFT),
        'additional_cameras': '[right]',
        'right.image_topic': '/right/image_raw',
        'right.camera_info_topic': '/right/camera_info',
        **camera_params('right.', RIGHT),
    }
    node = start(
        'actial_ros.nodes.spatial_reasoner',
        {
            **cameras,
            'backend': 'geometry',
            'diagnostics_period_s': 0.2,
            'max_frame_uses': 4,
            'min_pair_interval_s': 0.0,
            'image_qos': 'reliable',
        },
        ros_env,
        tmp_path / 'node.log',
    )
    manifest = tmp_path / 'manifest.jsonl'
    try:
        checker.spin_until(lambda: checker.node.count_publishers('/spatial_reasoner/answers') > 0, 30, 'the node')
        replay = start(
            'actial_ros.nodes.capture_replay',
            {
                **cameras,
                'capture': sample_capture,
                'frame_stride': 2,
                'right.frame_stride': 2,
                'right.frame_offset': 1,
                'rate_hz': 10.0,
                'manifest': manifest,
            },
            ros_env,
            tmp_path / 'replay.log',
        )
        checker.spin_until(lambda: replay.poll() is not None, 60, 'the replay to finish')
        assert replay.returncode == 0, (tmp_path / 'replay.log').read_text()
        capture = LlffCapture.open(sample_capture)
        checker.spin_until(lambda: checker.idle_after(len(capture)), 60, 'all answers')
        checker.spin_until(lambda: checker.idle_after(len(capture)), 2, 'settling')
    finally:
        assert stop(node) == 0, (tmp_path / 'node.log').read_text()
        checker.close()

    entries = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert {e['camera'] for e in entries} == {'left', 'right'}
    names = {(e['stamp_ns'], e['camera']): e['name'] for e in entries}
    views = {view.name: view for view in capture.views}
    records = [r for r in checker.records if r['kind'] == 'viewpoint']
    cross = [r for r in records if r['camera_1'] != r['camera_2']]
    same = [r for r in records if r['camera_1'] == r['camera_2']]
    assert cross and same
    for record in records:
        first = views[names[(record['stamp_1'], record['camera_1'])]]
        second = views[names[(record['stamp_2'], record['camera_2'])]]
        expected = relative_pose(first.t_world_camera, second.t_world_camera)
        assert math.isclose(record['yaw_deg'], expected.yaw_deg, abs_tol=1e-6), record
        np.testing.assert_allclose(record['t12'], expected.translation, atol=1e-6)
        assert record['truth'] == viewpoint_label(record['question_type'], expected).value
    for name in ('left', 'right'):
        status = checker.diagnostics[f'spatial_reasoner: camera {name}']
        assert int(status['frames_posed']) == len(capture) // 2
        assert int(status['questions']) > 0
        assert status['has_camera_info'] == 'True'
