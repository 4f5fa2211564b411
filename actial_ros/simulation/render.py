"""Rendering with pybullet's CPU renderer (TinyRenderer, DIRECT mode: no display, no GPU): RGB and,
optionally, metric depth, with lighting options and seeded camera noise.

Cost follows the textured pixels drawn (``benchmarks/sim_render.py``, 2-core CPU): about 25 ms per
320x240 frame and 90 ms per 640x480 frame with a textured floor filling the view, 7 and 18 ms for the
objects alone; shadows add about a third.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from actial_ros.errors import ConfigError
from actial_ros.imaging import ImageFields
from actial_ros.simulation.camera import PinholeCamera, depth_from_buffer, gl_list, view_matrix
from actial_ros.simulation.world import SimWorld

__all__ = ['RenderOptions', 'Renderer', 'Rendering', 'depth_image_fields']


@dataclass(frozen=True)
class RenderOptions:
    """Lighting and camera-noise options.

    Attributes:
        light_direction: direction TOWARDS the light in the world frame (x, y, z); ``None``: pybullet's
            default (a light above the camera).
        light_color: RGB of the light, each in [0, 1].
        light_distance: distance of the light (affects shadows only).
        shadows: cast shadows (about a third more render time).
        ambient, diffuse, specular: lighting coefficients (pybullet defaults 0.6, 0.35, 0.05).
        noise_std: standard deviation of additive Gaussian pixel noise in 8-bit intensity units
            (0: none), independent per pixel and channel, clipped to [0, 255].
        noise_seed: the noise of frame ``i`` comes from ``(noise_seed, i)``: reproducible runs.
        depth: also return metric depth (float32 metres along the optical axis, ``inf`` for no surface).
    """

    light_direction: tuple[float, float, float] | None = (0.6, 0.4, 1.0)
    light_color: tuple[float, float, float] = (1.0, 1.0, 1.0)
    light_distance: float = 10.0
    shadows: bool = False
    ambient: float = 0.6
    diffuse: float = 0.35
    specular: float = 0.05
    noise_std: float = 0.0
    noise_seed: int = 0
    depth: bool = False

    def __post_init__(self) -> None:
        values = [self.light_distance, self.ambient, self.diffuse, self.specular, self.noise_std, *self.light_color]
        if self.light_direction is not None:
            values += list(self.light_direction)
            if len(self.light_direction) != 3 or not any(self.light_direction):
                raise ConfigError(f'light_direction must be 3 values, not all zero, got {self.light_direction}')
        if not all(math.isfinite(float(v)) for v in values):
            raise ConfigError('render options must be finite')
        if min(self.ambient, self.diffuse, self.specular, self.noise_std, *self.light_color) < 0:
            raise ConfigError('lighting coefficients, light colour and noise_std must be >= 0')


@dataclass(frozen=True)
class Rendering:
    """One rendered frame: ``rgb`` ``(H, W, 3)`` uint8 and ``depth`` ``(H, W)`` float32 metres or ``None``."""

    rgb: npt.NDArray[np.uint8]
    depth: npt.NDArray[np.float32] | None


class Renderer:
    """Renders a :class:`~actial_ros.simulation.world.SimWorld` from an optical-frame camera pose.

    Args:
        world: the pybullet world.
        camera: image size, field of view and clipping planes.
        options: lighting, noise and depth.
    """

    def __init__(self, world: SimWorld, camera: PinholeCamera, options: RenderOptions | None = None) -> None:
        self.world = world
        self.camera = camera
        self.options = options or RenderOptions()
        self._projection = gl_list(camera.projection_matrix())

    def render(self, t_world_camera: npt.ArrayLike, frame_index: int = 0) -> Rendering:
        """Render the view of a camera at ``t_world_camera`` (optical frame, ``(4, 4)``).

        Args:
            t_world_camera: camera-to-world pose (x right, y down, z forward).
            frame_index: selects the noise sample (see :attr:`RenderOptions.noise_seed`).

        Raises:
            PoseError: a malformed pose.
        """
        options, camera, pb = self.options, self.camera, self.world.pb
        kwargs: dict[str, object] = {
            'renderer': pb.ER_TINY_RENDERER,
            'flags': pb.ER_NO_SEGMENTATION_MASK,
            'shadow': int(options.shadows),
            'lightColor': list(options.light_color),
            'lightDistance': float(options.light_distance),
            'lightAmbientCoeff': float(options.ambient),
            'lightDiffuseCoeff': float(options.diffuse),
            'lightSpecularCoeff': float(options.specular),
        }
        if options.light_direction is not None:
            kwargs['lightDirection'] = list(options.light_direction)
        _, _, rgba, depth_buffer, _ = self.world.call(
            'getCameraImage',
            camera.width,
            camera.height,
            gl_list(view_matrix(t_world_camera)),
            self._projection,
            **kwargs,
        )
        rgb = np.asarray(rgba, dtype=np.uint8).reshape(camera.height, camera.width, 4)[:, :, :3]
        if options.noise_std > 0:
            rng = np.random.default_rng([int(options.noise_seed), int(frame_index), 0xC0FFEE])
            noisy = rgb.astype(np.float32) + rng.normal(0.0, options.noise_std, rgb.shape).astype(np.float32)
            rgb = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
        depth = None
        if options.depth:
            buffer = np.asarray(depth_buffer, dtype=np.float64).reshape(camera.height, camera.width)
            depth = depth_from_buffer(buffer, camera.near_m, camera.far_m)
        return Rendering(rgb=np.ascontiguousarray(rgb), depth=depth)


def depth_image_fields(depth: npt.NDArray[np.float32]) -> ImageFields:
    """``sensor_msgs/Image`` fields of a depth image: encoding ``32FC1`` (metres, REP 118; ``inf`` where
    there is no surface), little-endian, ``step = 4 * width``.

    Raises:
        ConfigError: not a 2-D array.
    """
    if depth.ndim != 2:
        raise ConfigError(f'depth must be (H, W), got {depth.shape}')
    height, width = depth.shape
    data = np.ascontiguousarray(depth, dtype='<f4').tobytes()
    return ImageFields(
        height=int(height), width=int(width), encoding='32FC1', is_bigendian=0, step=4 * int(width), data=data
    )
