"""The recorder's keyframe policy (ROS-free): keep an image only when the camera pose changed enough."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from actial_ros.errors import ConfigError
from actial_ros.geometry import base_to_optical_extrinsic
from actial_ros.keyframes import KeyframePolicy, KeyframeSelector, rotation_angle_deg
from actial_ros.pairing import OdometryMatchPolicy

NS = 1_000_000_000


def base(yaw_deg: float = 0.0, x: float = 0.0) -> np.ndarray:
    pose = np.eye(4)
    pose[:3, :3] = Rotation.from_euler('z', yaw_deg, degrees=True).as_matrix()
    pose[0, 3] = x
    return pose


def test_rotation_angle() -> None:
    assert rotation_angle_deg(np.eye(3)) == 0.0
    assert rotation_angle_deg(Rotation.from_euler('x', 30, degrees=True).as_matrix()) == pytest.approx(30.0)
    assert rotation_angle_deg(Rotation.from_euler('z', 180, degrees=True).as_matrix()) == pytest.approx(180.0)
    with pytest.raises(ConfigError):
        KeyframePolicy(min_rotation_deg=-1.0)


def test_keeps_frames_on_rotation_translation_and_interval() -> None:
    selector: KeyframeSelector[str] = KeyframeSelector(
        KeyframePolicy(min_rotation_deg=9.5, min_translation_m=0.5, max_interval_s=2.95)
    )
    # Odometry every 0.1 s: turning left 20 deg/s for 1 s, then driving 1 m/s for 1 s, then standing still.
    # Images at k / 10 + 0.05 s: image k < 10 is at yaw 2k + 1 deg, image 10 <= k < 20 at x = k / 10 - 0.95 m.
    for k in range(51):
        t = k / 10
        yaw = 2.0 * min(k, 10)
        x = 0.1 * min(max(k - 10, 0), 10)
        selector.add_odometry(round(t * NS), base(yaw, x))
    decisions = []
    for k in range(50):
        decisions += selector.add_image(round((k / 10 + 0.05) * NS), f'img{k}')
    kept = [(d.payload, d.reason) for d in decisions if d.keep]
    # img5: 10 deg from img0; then 9 deg more at most (< 9.5); img15: 0.55 m from img5; img45: 2.95 s after img15.
    assert kept == [('img0', 'first'), ('img5', 'rotation'), ('img15', 'translation'), ('img45', 'interval')]
    assert selector.counts['unchanged'] == 50 - len(kept) and len(decisions) == 50
    # The pose handed back is the camera's: odometry composed with the optical extrinsic.
    first = decisions[0]
    assert first.t_odom_camera is not None
    np.testing.assert_allclose(first.t_odom_camera, base(1.0, 0.0) @ base_to_optical_extrinsic(), atol=1e-9)


def test_images_wait_for_odometry_and_bad_input_is_counted() -> None:
    selector: KeyframeSelector[int] = KeyframeSelector(
        KeyframePolicy(min_rotation_deg=0.0, min_translation_m=0.0),
        match_policy=OdometryMatchPolicy(pending_timeout_s=1.0, max_interpolation_gap_s=2.0),
        max_pending=3,
    )
    assert selector.add_image(1 * NS, 1) == []  # no odometry yet: waits
    assert selector.pending == 1
    decisions = selector.add_odometry(NS // 2, base()) + selector.add_odometry(3 * NS // 2, base(20.0))
    assert [(d.payload, d.keep) for d in decisions] == [(1, True)]  # interpolated between the two samples
    assert selector.add_image(1 * NS, 9)[0].reason == 'duplicate'
    selector.add_odometry(2 * NS, base(float('nan')))
    assert selector.counts['bad_odometry'] == 1
    selector.add_odometry(2 * NS, base(25.0))
    assert selector.add_odometry(2 * NS, base(25.0)) == [] and selector.counts['odometry_duplicate'] == 1
    # Images newer than the odometry wait; the oldest beyond max_pending is dropped; an image older than the
    # pending timeout is decided with the newest odometry when close enough, else dropped.
    for k, stamp in enumerate((21, 22, 23, 24)):
        decisions = selector.add_image(stamp * NS // 10, 100 + k)
    assert [d.reason for d in decisions] == ['pending_full'] and selector.pending == 3
    late = selector.add_image(40 * NS // 10, 200)
    # 2.2 s is pushed out (max_pending), 2.3 and 2.4 s are more than 1 s older than 4.0 s and 0.3 s from odometry.
    assert [(d.payload, d.reason) for d in late] == [
        (101, 'pending_full'),
        (102, 'odometry_timeout'),
        (103, 'odometry_timeout'),
    ]
    flushed = selector.flush()
    assert [(d.payload, d.reason) for d in flushed] == [(200, 'no_odometry')]
    # Between odometry samples 5 s apart (more than 2 s): a gap, not interpolated.
    selector.add_odometry(7 * NS, base(30.0))
    gap = selector.add_image(5 * NS, 300)
    assert [d.reason for d in gap] == ['odometry_gap']
