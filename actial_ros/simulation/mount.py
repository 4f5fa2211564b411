"""How the simulated camera is mounted on the base: the static extrinsic ``T_base_camera_optical``.

The rig and the ``spatial_reasoner`` node take the same two parameters, ``extrinsic_translation`` and
``extrinsic_rotation_xyzw``; :func:`camera_mount` computes them for a forward camera that is pitched down
(an orbit at a height) or turned sideways (a base driving past objects), composed with the standard
forward-looking optical rotation of :func:`actial_ros.geometry.base_to_optical_extrinsic`.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy.spatial.transform import Rotation

from actial_ros.errors import ConfigError
from actial_ros.geometry import base_to_optical_extrinsic, quaternion_xyzw_from_transform

__all__ = ['camera_mount', 'mount_parameters']

FloatArray = npt.NDArray[np.float64]


def camera_mount(
    translation: npt.ArrayLike = (0.0, 0.0, 0.0), *, pitch_down_deg: float = 0.0, yaw_deg: float = 0.0
) -> FloatArray:
    """``T_base_camera_optical`` of a camera at ``translation`` (metres, ``base_link``) whose optical axis is
    the base's +x turned by ``yaw_deg`` about +z (positive: to the LEFT, REP 103) and then pitched DOWN by
    ``pitch_down_deg``. With both angles 0 this is :func:`actial_ros.geometry.base_to_optical_extrinsic`.

    Raises:
        ConfigError: non-finite angles or a pitch outside [-90, 90].
    """
    if not (math.isfinite(pitch_down_deg) and math.isfinite(yaw_deg)) or abs(pitch_down_deg) > 90.0:
        raise ConfigError(f'camera mount angles must be finite with |pitch| <= 90, got {pitch_down_deg}, {yaw_deg}')
    # A positive rotation about base +y turns +x towards -z: down.
    tilt = Rotation.from_euler('ZY', [yaw_deg, pitch_down_deg], degrees=True).as_matrix()
    mount = base_to_optical_extrinsic(translation)
    mount[:3, :3] = tilt @ mount[:3, :3]
    return mount


def mount_parameters(extrinsic: npt.ArrayLike) -> dict[str, list[float]]:
    """The node parameters (``extrinsic_translation``, ``extrinsic_rotation_xyzw``) of an extrinsic."""
    matrix = np.asarray(extrinsic, dtype=np.float64)
    quaternion = quaternion_xyzw_from_transform(matrix)
    return {
        'extrinsic_translation': [float(v) for v in matrix[:3, 3]],
        'extrinsic_rotation_xyzw': [float(v) for v in quaternion],
    }
