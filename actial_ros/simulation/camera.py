"""The simulated pinhole camera: intrinsics from the vertical field of view, and the OpenGL matrices that
make pybullet render exactly what those intrinsics say (no pybullet import here).

Conventions (``../shared/notes/CONVENTIONS.md``):

* The camera pose is ``T_world_camera`` of the ROS optical frame (x right, y down, z forward).
  pybullet's renderer uses the OpenGL eye frame (x right, y up, looking along -z); the two differ by
  :data:`OPTICAL_TO_GL` = ``diag(1, -1, -1)``, so the view matrix is ``inv(T_world_camera @ OPTICAL_TO_GL)``.
* Intrinsics: ``fy = (H / 2) / tan(fov_v / 2)``, ``fx = fy`` (square pixels), ``cx = W / 2``,
  ``cy = H / 2``, in the OpenCV/ROS pixel convention where the CENTRE of pixel (column ``u``, row ``v``)
  has integer coordinates ``(u, v)`` and a point ``(X, Y, Z)`` in the optical frame projects to
  ``u = fx X / Z + cx``, ``v = fy Y / Z + cy``.
* Measured on pybullet 3.2.7's TinyRenderer (and pinned by ``test/simulation/test_sim_camera.py``):
  pixel column ``k`` samples screen x = ``k`` exactly (no half-pixel offset), while row ``r`` samples
  screen y = ``H - 1 - r`` (the image is flipped upwards from the rasteriser's bottom-left origin). A
  symmetric frustum therefore puts the optical axis at ``(W / 2, H / 2 - 1)``. :func:`projection_matrix`
  builds the frustum from the intrinsics (any ``cx``, ``cy``) with that one-row shift compensated, so the
  rendered pixels agree with ``K`` to well under a tenth of a pixel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from actial_ros.errors import ConfigError
from actial_ros.frame import CameraIntrinsics
from actial_ros.geometry import validate_transform

__all__ = [
    'OPTICAL_TO_GL',
    'PinholeCamera',
    'depth_from_buffer',
    'gl_list',
    'project_points',
    'projection_matrix',
    'view_matrix',
]

FloatArray = npt.NDArray[np.float64]

OPTICAL_TO_GL: FloatArray = np.diag([1.0, -1.0, -1.0, 1.0])
"""``T_optical_gl``: the OpenGL eye frame (x right, y up, z backward) expressed in the optical frame."""

_RENDERER_ROW_SHIFT = 1.0
"""TinyRenderer samples row ``r`` at screen y = ``H - 1 - r``: one row above a plain flip (see module doc)."""


@dataclass(frozen=True, slots=True)
class PinholeCamera:
    """A simulated camera: image size, vertical field of view and clipping planes.

    Attributes:
        width, height: image size in pixels.
        fov_v_deg: vertical field of view in degrees, in (0, 180).
        near_m, far_m: clipping planes (metres); depth is only defined between them.

    Raises:
        ConfigError: on construction, for a non-positive size, a field of view outside (0, 180) or
            clipping planes that are not ``0 < near < far``.
    """

    width: int = 320
    height: int = 240
    fov_v_deg: float = 60.0
    near_m: float = 0.05
    far_m: float = 50.0

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ConfigError(f'camera size must be positive, got {self.width}x{self.height}')
        if not 0.0 < self.fov_v_deg < 180.0:
            raise ConfigError(f'vertical field of view must be in (0, 180) degrees, got {self.fov_v_deg}')
        if not (0.0 < self.near_m < self.far_m and math.isfinite(self.far_m)):
            raise ConfigError(f'clipping planes must satisfy 0 < near < far, got {self.near_m}, {self.far_m}')

    @property
    def focal_px(self) -> float:
        """``fy = (H / 2) / tan(fov_v / 2)`` (pixels); ``fx`` is the same (square pixels)."""
        return (self.height / 2.0) / math.tan(math.radians(self.fov_v_deg) / 2.0)

    @property
    def intrinsics(self) -> CameraIntrinsics:
        """``fx = fy`` from the vertical field of view, ``cx = W / 2``, ``cy = H / 2`` (see module doc)."""
        focal = self.focal_px
        return CameraIntrinsics(
            fx=focal, fy=focal, cx=self.width / 2.0, cy=self.height / 2.0, width=self.width, height=self.height
        )

    def projection_matrix(self) -> FloatArray:
        """The OpenGL projection matrix for :attr:`intrinsics` (see :func:`projection_matrix`)."""
        return projection_matrix(self.intrinsics, self.near_m, self.far_m)


def projection_matrix(intrinsics: CameraIntrinsics, near_m: float, far_m: float) -> FloatArray:
    """OpenGL projection matrix (row-major ``(4, 4)``) under which pybullet's TinyRenderer draws the
    point ``(X, Y, Z)`` of the optical frame at pixel ``(fx X / Z + cx, fy Y / Z + cy)``.

    Derivation: with eye coordinates ``x_e = X``, ``y_e = -Y``, ``z_e = -Z`` and ``w = Z``, the renderer's
    column is ``(ndc_x + 1) W / 2`` and its row ``H - 1 - (ndc_y + 1) H / 2``; solving for the matrix gives
    ``P[0, 0] = 2 fx / W``, ``P[0, 2] = 1 - 2 cx / W``, ``P[1, 1] = 2 fy / H``,
    ``P[1, 2] = 2 (cy + 1) / H - 1`` and the usual depth rows.

    Raises:
        ConfigError: clipping planes that are not ``0 < near < far``.
    """
    if not 0.0 < near_m < far_m:
        raise ConfigError(f'clipping planes must satisfy 0 < near < far, got {near_m}, {far_m}')
    k = intrinsics
    matrix = np.zeros((4, 4), dtype=np.float64)
    matrix[0, 0] = 2.0 * k.fx / k.width
    matrix[0, 2] = 1.0 - 2.0 * k.cx / k.width
    matrix[1, 1] = 2.0 * k.fy / k.height
    matrix[1, 2] = 2.0 * (k.cy + _RENDERER_ROW_SHIFT) / k.height - 1.0
    matrix[2, 2] = -(far_m + near_m) / (far_m - near_m)
    matrix[2, 3] = -2.0 * far_m * near_m / (far_m - near_m)
    matrix[3, 2] = -1.0
    return matrix


def view_matrix(t_world_camera: npt.ArrayLike) -> FloatArray:
    """OpenGL view matrix (row-major ``(4, 4)``, world -> eye) of an optical-frame camera pose.

    Raises:
        PoseError: a malformed pose.
    """
    pose = validate_transform(t_world_camera, name='T_world_camera')
    t_world_gl = pose @ OPTICAL_TO_GL
    view = np.eye(4)
    view[:3, :3] = t_world_gl[:3, :3].T
    view[:3, 3] = -t_world_gl[:3, :3].T @ t_world_gl[:3, 3]
    return view


def gl_list(matrix: npt.ArrayLike) -> list[float]:
    """The 16 values of a row-major ``(4, 4)`` matrix in OpenGL's column-major order (what pybullet takes)."""
    return [float(v) for v in np.asarray(matrix, dtype=np.float64).reshape(4, 4).T.reshape(-1)]


def depth_from_buffer(buffer: npt.ArrayLike, near_m: float, far_m: float) -> npt.NDArray[np.float32]:
    """Metric depth (metres along the optical axis, i.e. optical ``Z``) from an OpenGL depth buffer in [0, 1].

    ``Z = far near / (far - d (far - near))``. Where nothing was rendered the renderer leaves the buffer at
    (float32) 1, i.e. ``Z`` within 0.1 % of the far plane: such pixels, and anything that far, are ``inf``.
    Returns a float32 array of the buffer's shape.
    """
    depth = np.asarray(buffer, dtype=np.float64)
    with np.errstate(divide='ignore'):
        z = far_m * near_m / (far_m - depth * (far_m - near_m))
    z = np.where((depth >= 1.0) | (z >= far_m * 0.999), np.inf, z)
    return np.asarray(z, dtype=np.float32)


def project_points(
    points_world: npt.ArrayLike, t_world_camera: npt.ArrayLike, intrinsics: CameraIntrinsics
) -> FloatArray:
    """Pixel coordinates ``(N, 2)`` (u, v) of world points seen by a camera; ``nan`` rows behind it.

    Raises:
        PoseError: a malformed pose.
    """
    pose = validate_transform(t_world_camera, name='T_world_camera')
    points = np.asarray(points_world, dtype=np.float64).reshape(-1, 3)
    camera = (points - pose[:3, 3]) @ pose[:3, :3]  # R^T (p - C), row-wise
    z = camera[:, 2]
    with np.errstate(divide='ignore', invalid='ignore'):
        u = intrinsics.fx * camera[:, 0] / z + intrinsics.cx
        v = intrinsics.fy * camera[:, 1] / z + intrinsics.cy
    pixels = np.stack([u, v], axis=1)
    pixels[z <= 0] = np.nan
    return pixels
