"""The simulated rig without ROS: a scene, a base moving along a trajectory, a camera mounted on the base,
a step schedule in simulated time, and exact ground truth for every step.

The rclpy node (:mod:`actial_ros.nodes.sim_rig`) publishes what :class:`SimRig` produces; the bag writer
(:mod:`actial_ros.simulation.bag`) and the benchmark use it directly.

Ground truth: ``T_world_base`` comes from the trajectory (world = ``odom``), and
``T_world_camera = T_world_base @ T_base_camera_optical`` with
:func:`actial_ros.geometry.camera_pose_from_odometry`, the very composition the ``spatial_reasoner``
node applies to odometry, so a reasoner with the same extrinsic recovers the rendered camera poses.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt

from actial_ros.errors import ConfigError
from actial_ros.frame import CameraIntrinsics, Frame
from actial_ros.geometry import base_to_optical_extrinsic, camera_pose_from_odometry, validate_transform
from actial_ros.simulation.camera import PinholeCamera
from actial_ros.simulation.render import Renderer, RenderOptions
from actial_ros.simulation.scene import Scene, SceneConfig, build_scene
from actial_ros.simulation.timing import SimTiming
from actial_ros.simulation.trajectory import OrbitTrajectory, Trajectory, base_twist
from actial_ros.simulation.world import SimWorld

__all__ = ['RigConfig', 'SimFrame', 'SimRig', 'SimStep']

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class RigConfig:
    """Everything that defines a simulated run.

    Attributes:
        camera: image size, vertical field of view, clipping planes.
        render: lighting, noise, depth.
        scene: floor and objects.
        trajectory: the base's path.
        extrinsic: ``T_base_camera_optical`` ``(4, 4)`` (default: forward-looking camera at the base
            origin, as the ``spatial_reasoner`` node's default).
        timing: step, camera and odometry rates; start time.
        duration_s: simulated seconds of motion; 0: the trajectory's natural duration (endless when it
            has none, e.g. an orbit).
        camera_id: name of the camera in frames produced by :meth:`SimFrame.to_frame`.
    """

    camera: PinholeCamera = field(default_factory=PinholeCamera)
    render: RenderOptions = field(default_factory=RenderOptions)
    scene: SceneConfig = field(default_factory=SceneConfig)
    trajectory: Trajectory = field(default_factory=OrbitTrajectory)
    extrinsic: FloatArray = field(default_factory=base_to_optical_extrinsic, repr=False)
    timing: SimTiming = field(default_factory=SimTiming)
    duration_s: float = 0.0
    camera_id: str = 'camera'

    def __post_init__(self) -> None:
        object.__setattr__(self, 'extrinsic', validate_transform(self.extrinsic, name='T_base_camera_optical'))
        if not (math.isfinite(self.duration_s) and self.duration_s >= 0):
            raise ConfigError(f'duration_s must be >= 0, got {self.duration_s}')

    @property
    def effective_duration_s(self) -> float | None:
        """Simulated seconds of the run; ``None``: endless."""
        if self.duration_s > 0:
            return self.duration_s
        return self.trajectory.natural_duration_s


@dataclass(frozen=True)
class SimStep:
    """One simulation step: its index, stamp and trajectory time ``t_s`` (simulated seconds since the
    start), the base pose and velocity (``base_link`` frame), and what it publishes."""

    step: int
    stamp_ns: int
    t_world_base: FloatArray = field(repr=False)
    linear_velocity: FloatArray = field(repr=False)
    angular_velocity: FloatArray = field(repr=False)
    publishes_odometry: bool
    publishes_camera: bool
    t_s: float = 0.0


@dataclass(frozen=True)
class SimFrame:
    """A rendered camera frame with its exact ground truth.

    Attributes:
        index: camera frame number (0, 1, ...).
        step: simulation step it was rendered at.
        stamp_ns: header stamp (simulated time, ns).
        rgb: ``(H, W, 3)`` uint8.
        depth: ``(H, W)`` float32 metres along the optical axis, or ``None``.
        t_world_base: ``T_odom_base`` (the odometry published with the same stamp).
        t_world_camera: ``T_world_base @ T_base_camera_optical``.
        intrinsics: the camera's intrinsics (as published in CameraInfo).
    """

    index: int
    step: int
    stamp_ns: int
    rgb: npt.NDArray[np.uint8] = field(repr=False)
    depth: npt.NDArray[np.float32] | None = field(repr=False)
    t_world_base: FloatArray = field(repr=False)
    t_world_camera: FloatArray = field(repr=False)
    intrinsics: CameraIntrinsics

    def to_frame(self, camera_id: str = 'camera') -> Frame:
        """The core :class:`actial_ros.frame.Frame` (posed, named ``sim_<index>``)."""
        return Frame(
            image=self.rgb,
            stamp_ns=self.stamp_ns,
            intrinsics=self.intrinsics,
            t_world_camera=self.t_world_camera,
            camera_id=camera_id,
            name=f'sim_{self.index:06d}',
        )


class SimRig:
    """Builds the world and scene of a :class:`RigConfig` and steps through simulated time.

    Args:
        config: the run.

    Raises:
        ConfigError: pybullet missing, or an invalid scene (see :func:`build_scene`).
    """

    def __init__(self, config: RigConfig | None = None) -> None:
        self.config = config or RigConfig()
        self.world = SimWorld()
        try:
            self.scene: Scene = build_scene(self.world, self.config.scene)
        except BaseException:
            self.world.close()
            raise
        self.renderer = Renderer(self.world, self.config.camera, self.config.render)
        duration = self.config.effective_duration_s
        self.total_steps: int | None = None if duration is None else self.config.timing.steps_for(duration)

    @property
    def intrinsics(self) -> CameraIntrinsics:
        """The camera's intrinsics."""
        return self.config.camera.intrinsics

    @property
    def total_frames(self) -> int | None:
        """Camera frames of the whole run; ``None``: endless."""
        if self.total_steps is None:
            return None
        every = self.config.timing.camera_every
        return (self.total_steps - 1) // every + 1

    def time_s(self, step: int) -> float:
        """Trajectory time of ``step`` (simulated seconds since the start)."""
        return self.config.timing.elapsed_s(step)

    def base_pose(self, step: int) -> FloatArray:
        """``T_world_base`` at ``step`` (held at the end of a finite run)."""
        if self.total_steps is not None:
            step = min(step, self.total_steps - 1)
        return self.config.trajectory.base_pose(self.time_s(step))

    def step(self, step: int) -> SimStep:
        """The state of ``step`` (no rendering)."""
        timing = self.config.timing
        moving = self.total_steps is None or step < self.total_steps - 1
        if moving:
            linear, angular = base_twist(self.config.trajectory, self.time_s(step))
        else:
            linear, angular = np.zeros(3), np.zeros(3)
        in_run = self.total_steps is None or step < self.total_steps
        return SimStep(
            step=step,
            stamp_ns=timing.stamp_ns(step),
            t_world_base=self.base_pose(step),
            linear_velocity=linear,
            angular_velocity=angular,
            publishes_odometry=timing.is_odometry_step(step),
            publishes_camera=in_run and timing.is_camera_step(step),
            t_s=self.time_s(step),
        )

    def steps(self, start: int = 0) -> Iterator[SimStep]:
        """Steps from ``start`` to the end of the run (endless when the run is)."""
        step = start
        while self.total_steps is None or step < self.total_steps:
            yield self.step(step)
            step += 1

    def render(self, step: SimStep | int) -> SimFrame:
        """Render the camera at a step (normally one with ``publishes_camera``)."""
        state = step if isinstance(step, SimStep) else self.step(step)
        t_world_camera = camera_pose_from_odometry(state.t_world_base, self.config.extrinsic)
        index = state.step // self.config.timing.camera_every
        rendering = self.renderer.render(t_world_camera, index)
        return SimFrame(
            index=index,
            step=state.step,
            stamp_ns=state.stamp_ns,
            rgb=rendering.rgb,
            depth=rendering.depth,
            t_world_base=state.t_world_base,
            t_world_camera=t_world_camera,
            intrinsics=self.intrinsics,
        )

    def frames(self) -> Iterator[SimFrame]:
        """Render every camera frame of the run in order (no pacing; endless when the run is)."""
        for state in self.steps():
            if state.publishes_camera:
                yield self.render(state)

    def meta(self) -> dict[str, Any]:
        """JSON-ready description of the run (the pose record's ``meta`` line)."""
        camera, k = self.config.camera, self.intrinsics
        return {
            'camera': {
                'width': camera.width,
                'height': camera.height,
                'fov_v_deg': camera.fov_v_deg,
                'near_m': camera.near_m,
                'far_m': camera.far_m,
                'fx': k.fx,
                'fy': k.fy,
                'cx': k.cx,
                'cy': k.cy,
                'camera_id': self.config.camera_id,
            },
            'extrinsic': [float(v) for v in self.config.extrinsic.reshape(-1)],
            'trajectory': self.config.trajectory.describe(),
            'timing': self.config.timing.describe(),
            'duration_s': self.config.effective_duration_s,
            'scene': self.scene.describe(),
            'render': {
                'noise_std': self.config.render.noise_std,
                'noise_seed': self.config.render.noise_seed,
                'shadows': self.config.render.shadows,
                'depth': self.config.render.depth,
                'light_direction': None
                if self.config.render.light_direction is None
                else list(self.config.render.light_direction),
            },
        }

    def close(self) -> None:
        """Release the pybullet client (idempotent)."""
        self.world.close()

    def __enter__(self) -> SimRig:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
