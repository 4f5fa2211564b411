"""The ROS-free rig: step schedule in simulated time, exact ground truth, the rendered target where the
camera looks, parameters, and pacing."""

from __future__ import annotations

import math
import threading
import time
from typing import Any

import numpy as np
import pytest

from actial_ros.errors import ConfigError
from actial_ros.geometry import camera_pose_from_odometry, validate_transform
from actial_ros.simulation.camera import PinholeCamera, project_points
from actial_ros.simulation.mount import camera_mount
from actial_ros.simulation.parameters import RIG_PARAMETERS, default_values, rig_config_from_values
from actial_ros.simulation.timing import Pacer, SimTiming
from actial_ros.simulation.trajectory import DriveTrajectory, OrbitTrajectory, RandomWalkTrajectory

pytest.importorskip('pybullet')

from actial_ros.simulation.rig import RigConfig, SimRig
from actial_ros.simulation.scene import SceneConfig


def test_timing_schedule_and_validation() -> None:
    timing = SimTiming(step_rate_hz=100.0, camera_rate_hz=10.0, odometry_rate_hz=25.0, start_ns=5_000_000_000)
    assert (timing.step_ns, timing.camera_every, timing.odometry_every) == (10_000_000, 10, 4)
    assert timing.stamp_ns(3) == 5_030_000_000
    assert [k for k in range(25) if timing.is_camera_step(k)] == [0, 10, 20]
    # Odometry at its own rate AND at every camera frame (exact stamps for image matching).
    assert [k for k in range(25) if timing.is_odometry_step(k)] == [0, 4, 8, 10, 12, 16, 20, 24]
    assert timing.steps_for(2.0) == 201
    with pytest.raises(ConfigError, match='divide'):
        SimTiming(step_rate_hz=100.0, camera_rate_hz=30.0)
    with pytest.raises(ConfigError, match='nanoseconds'):
        SimTiming(step_rate_hz=3.0, camera_rate_hz=1.0, odometry_rate_hz=1.0)
    with pytest.raises(ConfigError):
        SimTiming(camera_rate_hz=200.0)


def test_rig_frames_carry_exact_ground_truth() -> None:
    extrinsic = camera_mount((0.05, 0.0, 0.2), pitch_down_deg=20.0)
    config = RigConfig(
        camera=PinholeCamera(64, 48),
        scene=SceneConfig(objects=('duck_vhacd.urdf',)),
        trajectory=OrbitTrajectory(radius_m=1.2, height_m=0.5, speed_deg_s=45.0),
        extrinsic=extrinsic,
        timing=SimTiming(step_rate_hz=50.0, camera_rate_hz=5.0, odometry_rate_hz=25.0, start_ns=2_000_000_000),
        duration_s=2.0,
    )
    with SimRig(config) as rig:
        assert rig.total_steps == 101 and rig.total_frames == 11
        steps = list(rig.steps())
        assert len(steps) == 101
        frames = list(rig.frames())
    assert [f.index for f in frames] == list(range(11))
    assert [f.stamp_ns for f in frames] == [2_000_000_000 + i * 200_000_000 for i in range(11)]
    for frame in frames:
        assert frame.rgb.shape == (48, 64, 3) and frame.depth is None
        t = (frame.stamp_ns - 2_000_000_000) / 1e9
        np.testing.assert_allclose(frame.t_world_base, config.trajectory.base_pose(t), atol=1e-12)
        np.testing.assert_allclose(
            frame.t_world_camera, camera_pose_from_odometry(frame.t_world_base, extrinsic), atol=1e-12
        )
        core = frame.to_frame('front')
        assert core.camera_id == 'front' and core.intrinsics == rig.intrinsics and core.name.startswith('sim_')
    camera_steps = [s for s in steps if s.publishes_camera]
    assert all(s.publishes_odometry for s in camera_steps)
    assert steps[-1].t_s == pytest.approx(2.0)
    # After a finite run the base holds still and no more frames are due.
    with SimRig(config) as rig:
        late = rig.step(150)
        assert not late.publishes_camera
        np.testing.assert_allclose(late.t_world_base, rig.base_pose(100))
        np.testing.assert_array_equal(late.linear_velocity, np.zeros(3))


def test_the_orbit_target_renders_at_the_principal_point() -> None:
    """A red ball at the origin, an orbit with the camera pitched so that its optical axis passes through
    the ball's centre: the ball is drawn at (cx, cy) in every frame (rig, mount, trajectory and renderer
    agree on the frames)."""
    radius, height, ball = 1.5, 0.9, 0.3  # base height; ball diameter; the camera sits at the base origin
    pitch = math.degrees(math.atan2(height - ball / 2.0, radius))
    config = RigConfig(
        camera=PinholeCamera(160, 120, fov_v_deg=50.0),
        scene=SceneConfig(objects=(f'sphere2red.urdf;size={ball};x=0;y=0',), floor='none'),
        trajectory=OrbitTrajectory(radius_m=radius, height_m=height, speed_deg_s=72.0, start_deg=17.0),
        extrinsic=camera_mount(pitch_down_deg=pitch),
        timing=SimTiming(10.0, 2.0, 10.0),
        duration_s=4.0,
    )
    with SimRig(config) as rig:
        centre = rig.scene.objects[0].centre
        assert centre == pytest.approx((0.0, 0.0, ball / 2.0), abs=1e-3)
        k = rig.intrinsics
        for frame in rig.frames():
            rgb = frame.rgb.astype(int)
            mask = (rgb[..., 0] > 80) & (rgb[..., 0] > rgb[..., 1] + 40)
            rows, cols = np.nonzero(mask)
            assert mask.sum() > 100
            assert cols.mean() == pytest.approx(k.cx, abs=0.5)
            assert rows.mean() == pytest.approx(k.cy, abs=0.5)
            projected = project_points([centre], frame.t_world_camera, k)[0]
            np.testing.assert_allclose(projected, [k.cx, k.cy], atol=0.05)


def test_other_trajectories_run() -> None:
    for trajectory in (RandomWalkTrajectory(seed=4), DriveTrajectory()):
        config = RigConfig(
            camera=PinholeCamera(32, 24),
            scene=SceneConfig(objects=()),
            trajectory=trajectory,
            timing=SimTiming(10.0, 5.0, 10.0),
            duration_s=1.0,
        )
        with SimRig(config) as rig:
            frames = list(rig.frames())
            assert len(frames) == 6
            for frame in frames:
                validate_transform(frame.t_world_camera)
    drive = RigConfig(scene=SceneConfig(objects=()), trajectory=DriveTrajectory())
    assert drive.effective_duration_s == pytest.approx(11.0)
    assert RigConfig(scene=SceneConfig(objects=())).effective_duration_s is None  # an orbit is endless


def test_parameters_describe_the_config() -> None:
    names = [p.name for p in RIG_PARAMETERS]
    assert len(names) == len(set(names))
    # The extrinsic parameters have the reasoner's names.
    assert {'extrinsic_translation', 'extrinsic_rotation_xyzw'} <= set(names)
    config = rig_config_from_values({})
    assert config.camera.width == 320 and config.trajectory.kind == 'orbit'
    assert config.effective_duration_s is None
    config = rig_config_from_values(
        {
            'trajectory': 'arc',
            'radius_m': 2,
            'speed_deg_s': -20,
            'start_deg': -10,
            'end_deg': 50,
            'duration_s': 3,
            'width': 64,
            'height': 48,
            'camera_rate_hz': 5,
            'extrinsic_translation': [0, 0, 1],
        }
    )
    assert config.trajectory.describe()['speed_deg_s'] == 20.0 and config.duration_s == 3.0
    assert config.extrinsic[2, 3] == 1.0
    drive = rig_config_from_values({'trajectory': 'drive', 'drive_segments': [1, 0.5, 0]})
    assert drive.effective_duration_s == 1.0
    walk = rig_config_from_values({'trajectory': 'random_walk', 'seed': 9})
    assert walk.trajectory.describe()['seed'] == 9 and walk.render.noise_seed == 9
    cases: list[tuple[dict[str, Any], str]] = [
        ({'radius_m': 0.0}, 'outside'),
        ({'camera_rate_hz': 7.0}, 'divide'),
        ({'trajectory': 'loop'}, 'trajectory'),
        ({'on_end': 'stay'}, 'on_end'),
        ({'extrinsic_rotation_xyzw': [0, 0, 0, 0]}, 'quaternion'),
        ({'wobble': 1}, 'unknown'),
        ({'near_m': 10.0, 'far_m': 1.0}, 'clipping'),
        ({'target': [0.0]}, 'target'),
        ({'image_qos': 'fast'}, 'image_qos'),
    ]
    for bad, match in cases:
        with pytest.raises(ConfigError, match=match):
            rig_config_from_values(bad)
    assert set(default_values()) == set(names)


def test_pacer_real_time_and_flat_out() -> None:
    pacer = Pacer(0.01, 0.0)
    started = time.monotonic()
    assert all(pacer.wait(k) for k in range(200))
    assert time.monotonic() - started < 0.1
    pacer = Pacer(0.02, 2.0)  # 10 ms of wall time per step
    started = time.monotonic()
    for k in range(11):
        assert pacer.wait(k)
    assert 0.09 <= time.monotonic() - started < 0.3
    stop = threading.Event()
    pacer = Pacer(10.0, 1.0, stop)
    pacer.start()
    threading.Timer(0.05, stop.set).start()
    started = time.monotonic()
    assert not pacer.wait(1)
    assert time.monotonic() - started < 1.0
