"""Trajectories of the simulated base and the camera mount (pure math, no pybullet)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from actial_ros.enums import QuestionType, ViewpointLabel
from actial_ros.errors import ConfigError
from actial_ros.geometry import (
    base_to_optical_extrinsic,
    camera_pose_from_odometry,
    relative_pose,
    validate_transform,
    viewpoint_label,
)
from actial_ros.simulation.mount import camera_mount, mount_parameters
from actial_ros.simulation.trajectory import (
    ArcTrajectory,
    DriveSegment,
    DriveTrajectory,
    OrbitTrajectory,
    RandomWalkTrajectory,
    base_twist,
    make_trajectory,
    planar_pose,
)


def _heading_to(pose: np.ndarray, target: tuple[float, float]) -> float:
    """Angle (deg) between the base's +x axis and the direction to the target, in the floor plane."""
    forward = pose[:2, 0]
    to_target = np.asarray(target) - pose[:2, 3]
    cross = forward[0] * to_target[1] - forward[1] * to_target[0]
    return abs(math.degrees(math.atan2(float(cross), float(forward @ to_target))))


def test_orbit_faces_the_target_at_radius_and_height() -> None:
    orbit = OrbitTrajectory(target=(0.5, -0.2), radius_m=2.0, height_m=0.4, speed_deg_s=30.0, start_deg=10.0)
    for t in np.linspace(0.0, 20.0, 17):
        pose = validate_transform(orbit.base_pose(float(t)))
        assert math.hypot(pose[0, 3] - 0.5, pose[1, 3] + 0.2) == pytest.approx(2.0)
        assert pose[2, 3] == pytest.approx(0.4)
        assert _heading_to(pose, (0.5, -0.2)) == pytest.approx(0.0, abs=1e-6)
        np.testing.assert_allclose(pose[:3, 2], [0.0, 0.0, 1.0], atol=1e-12)  # level
    assert orbit.natural_duration_s is None


def test_counter_clockwise_orbit_moves_right_and_turns_left() -> None:
    """CONVENTIONS.md sanity check: around an object, moving right means turning left; the yaw between
    two views of a level forward camera is minus the azimuth change."""
    orbit = OrbitTrajectory(radius_m=1.5, speed_deg_s=30.0)
    extrinsic = base_to_optical_extrinsic()
    for t1, t2 in [(0.0, 1.0), (2.0, 4.5), (5.0, 8.0)]:
        pair = relative_pose(
            camera_pose_from_odometry(orbit.base_pose(t1), extrinsic),
            camera_pose_from_odometry(orbit.base_pose(t2), extrinsic),
        )
        assert pair.yaw_deg == pytest.approx(-30.0 * (t2 - t1), abs=1e-9)
        assert viewpoint_label(QuestionType.EGO_TRANSLATION, pair) is ViewpointLabel.RIGHT
        assert viewpoint_label(QuestionType.ROTATION, pair) is ViewpointLabel.LEFT
        assert viewpoint_label(QuestionType.OBJECT_TRANSLATION, pair) is ViewpointLabel.LEFT


def test_arc_sweeps_back_and_forth_between_its_ends() -> None:
    arc = ArcTrajectory(radius_m=1.0, speed_deg_s=20.0, start_deg=-30.0, end_deg=50.0)
    azimuths = [arc.azimuth_deg(float(t)) for t in np.linspace(0.0, 20.0, 401)]
    assert min(azimuths) == pytest.approx(-30.0) and max(azimuths) == pytest.approx(50.0)
    assert arc.azimuth_deg(4.0) == pytest.approx(50.0)  # 80 degrees at 20 deg/s
    assert arc.azimuth_deg(6.0) == pytest.approx(10.0)  # on the way back
    assert max(abs(b - a) for a, b in itertools.pairwise(azimuths)) <= 20.0 * 0.05 + 1e-9
    pose = arc.base_pose(4.0)
    assert math.degrees(math.atan2(pose[1, 3], pose[0, 3])) == pytest.approx(50.0)
    assert _heading_to(pose, (0.0, 0.0)) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ConfigError):
        ArcTrajectory(start_deg=10.0, end_deg=10.0)


def test_random_walk_is_seeded_bounded_and_looks_at_the_target() -> None:
    walk = RandomWalkTrajectory(target=(0.2, 0.1), radius_range_m=(1.0, 1.8), height_range_m=(0.3, 0.6), seed=7)
    again = RandomWalkTrajectory(target=(0.2, 0.1), radius_range_m=(1.0, 1.8), height_range_m=(0.3, 0.6), seed=7)
    other = RandomWalkTrajectory(target=(0.2, 0.1), radius_range_m=(1.0, 1.8), height_range_m=(0.3, 0.6), seed=8)
    times = np.linspace(0.0, 30.0, 121)
    poses = [walk.base_pose(float(t)) for t in times]
    # Same seed, same path, even when queried in another order.
    for t in reversed(times):
        np.testing.assert_array_equal(again.base_pose(float(t)), walk.base_pose(float(t)))
    assert any(not np.allclose(other.base_pose(float(t)), walk.base_pose(float(t))) for t in times[1:])
    azimuths = []
    for pose in poses:
        radius = math.hypot(pose[0, 3] - 0.2, pose[1, 3] - 0.1)
        assert 1.0 - 1e-9 <= radius <= 1.8 + 1e-9
        assert 0.3 - 1e-9 <= pose[2, 3] <= 0.6 + 1e-9
        assert _heading_to(pose, (0.2, 0.1)) == pytest.approx(0.0, abs=1e-6)
        azimuths.append(math.atan2(pose[1, 3] - 0.1, pose[0, 3] - 0.2))
    assert np.ptp(np.unwrap(azimuths)) > math.radians(30)  # it does wander
    # Smooth: no jumps between samples 0.25 s apart.
    steps = [np.linalg.norm(b[:3, 3] - a[:3, 3]) for a, b in itertools.pairwise(poses)]
    assert max(steps) < 0.5


def test_drive_integrates_segments_in_closed_form_and_then_holds() -> None:
    drive = DriveTrajectory(
        start=(-1.0, -1.0),
        start_yaw_deg=0.0,
        height_m=0.2,
        segments=(DriveSegment(4.0, 0.5), DriveSegment(3.0, 0.3, 30.0), DriveSegment(4.0, 0.5)),
    )
    assert drive.natural_duration_s == pytest.approx(11.0)
    np.testing.assert_allclose(drive.base_pose(4.0)[:3, 3], [1.0, -1.0, 0.2], atol=1e-12)
    radius = 0.3 / math.radians(30.0)
    end_of_turn = drive.base_pose(7.0)
    np.testing.assert_allclose(end_of_turn[:3, 3], [1.0 + radius, -1.0 + radius, 0.2], atol=1e-12)
    np.testing.assert_allclose(end_of_turn[:3, :3], planar_pose(0, 0, 0, math.pi / 2)[:3, :3], atol=1e-12)
    final = drive.base_pose(11.0)
    np.testing.assert_allclose(final[:3, 3], [1.0 + radius, 1.0 + radius, 0.2], atol=1e-12)
    np.testing.assert_array_equal(drive.base_pose(50.0), final)
    # Numerical integration agrees with the closed form mid-turn.
    x, y, yaw, dt = 1.0, -1.0, 0.0, 1e-4
    for _ in range(int(1.5 / dt)):
        mid = yaw + math.radians(15.0) * dt  # midpoint heading of the step
        x, y = x + 0.3 * math.cos(mid) * dt, y + 0.3 * math.sin(mid) * dt
        yaw += math.radians(30.0) * dt
    np.testing.assert_allclose(drive.base_pose(5.5)[:2, 3], [x, y], atol=1e-6)


def test_twist_is_in_the_base_frame() -> None:
    orbit = OrbitTrajectory(radius_m=2.0, speed_deg_s=45.0)
    linear, angular = base_twist(orbit, 3.0)
    # Counter-clockwise around the target: the base slides to its right (-y) while turning left (+z).
    np.testing.assert_allclose(linear, [0.0, -2.0 * math.radians(45.0), 0.0], atol=1e-6)
    np.testing.assert_allclose(angular, [0.0, 0.0, math.radians(45.0)], atol=1e-6)
    drive = DriveTrajectory(segments=(DriveSegment(5.0, 0.4, -20.0),))
    linear, angular = base_twist(drive, 2.0)
    np.testing.assert_allclose(linear, [0.4, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(angular, [0.0, 0.0, math.radians(-20.0)], atol=1e-6)


def test_make_trajectory_builds_and_refuses() -> None:
    assert isinstance(make_trajectory('orbit', {'radius_m': 2, 'target': [1, 2]}), OrbitTrajectory)
    drive = make_trajectory('drive', {'segments': [1.0, 0.5, 0.0, 2.0, 0.1, 10.0]})
    assert isinstance(drive, DriveTrajectory) and len(drive.segments) == 2
    assert make_trajectory('random_walk', {'seed': 3, 'radius_range_m': [1, 2]}).describe()['seed'] == 3
    with pytest.raises(ConfigError, match='unknown trajectory'):
        make_trajectory('spiral')
    with pytest.raises(ConfigError, match='invalid options'):
        make_trajectory('orbit', {'wobble': 1.0})
    with pytest.raises(ConfigError, match='triples'):
        make_trajectory('drive', {'segments': [1.0, 0.5]})
    with pytest.raises(ConfigError):
        make_trajectory('orbit', {'radius_m': 0.0})
    with pytest.raises(ConfigError):
        make_trajectory('random_walk', {'radius_range_m': [2.0, 1.0]})
    with pytest.raises(ConfigError):
        DriveSegment(0.0, 1.0)


def test_camera_mount_pitch_and_yaw() -> None:
    np.testing.assert_allclose(camera_mount(), base_to_optical_extrinsic(), atol=1e-12)
    pitched = camera_mount((0.1, 0.0, 0.3), pitch_down_deg=30.0)
    # The optical axis (column z of the rotation) in base_link: forward and down.
    np.testing.assert_allclose(
        pitched[:3, 2], [math.cos(math.radians(30)), 0.0, -math.sin(math.radians(30))], atol=1e-12
    )
    np.testing.assert_allclose(pitched[:3, 0], [0.0, -1.0, 0.0], atol=1e-12)  # image right = base right
    np.testing.assert_allclose(pitched[:3, 3], [0.1, 0.0, 0.3])
    sideways = camera_mount(yaw_deg=90.0)
    np.testing.assert_allclose(sideways[:3, 2], [0.0, 1.0, 0.0], atol=1e-12)  # looking left
    params = mount_parameters(pitched)
    rebuilt = base_to_optical_extrinsic(params['extrinsic_translation'], params['extrinsic_rotation_xyzw'])
    np.testing.assert_allclose(rebuilt, pitched, atol=1e-12)
    with pytest.raises(ConfigError):
        camera_mount(pitch_down_deg=120.0)
