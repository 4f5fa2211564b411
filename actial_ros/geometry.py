"""Pose math and viewpoint labels: the ONE implementation every component uses.

Follows ``../shared/notes/CONVENTIONS.md`` exactly:

* Camera frame: the ROS optical frame (REP 103): x right, y down, z forward.
* Robot frames: REP 103/105. A camera pose from odometry is ``T_odom_base @ T_base_camera_optical``.
* Quaternions are (x, y, z, w), the order of ROS messages and of :mod:`scipy.spatial.transform`.
* Transforms are 4x4 ``float64`` homogeneous matrices; ``T_a_b`` maps points from frame ``b`` into
  frame ``a`` (so ``T_world_camera`` is the camera-to-world pose, its translation the camera centre).
* Relative pose of a pair (frame 1 -> frame 2) with camera-to-world rotations ``R1``, ``R2`` and camera
  centres ``C1``, ``C2``: ``R12 = R1^T R2``, ``t12 = R1^T (C2 - C1)``, ``yaw = atan2(f.x, f.z)`` with
  ``f = R12[:, 2]``. Positive yaw: the camera turned to its RIGHT.
* Labels: ego translation is the sign of ``t12.x`` (positive: moved RIGHT), object translation its
  mirror, rotation the sign of yaw; ``none`` only below the thresholds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.spatial.transform import Rotation, Slerp

from actial_ros.enums import QuestionType, ViewpointLabel
from actial_ros.errors import PoseError

__all__ = [
    'BASE_TO_OPTICAL_QUATERNION_XYZW',
    'DEFAULT_TRANSLATION_THRESHOLD_M',
    'DEFAULT_YAW_THRESHOLD_DEG',
    'LabelThresholds',
    'RelativePose',
    'base_to_optical_extrinsic',
    'camera_pose_from_odometry',
    'ego_translation_label',
    'interpolate_transform',
    'invert_transform',
    'mirror_label',
    'object_translation_label',
    'quaternion_xyzw_from_transform',
    'relative_pose',
    'rotation_label',
    'transform_from_position_quaternion',
    'validate_transform',
    'viewpoint_label',
    'yaw_deg_from_forward',
    'yaw_deg_from_rotation',
]

FloatArray = npt.NDArray[np.float64]

BASE_TO_OPTICAL_QUATERNION_XYZW: tuple[float, float, float, float] = (-0.5, 0.5, -0.5, 0.5)
"""Rotation of a forward-looking optical frame in ``base_link`` (x, y, z, w).

Optical z (forward) = base +x, optical x (right) = base -y, optical y (down) = base -z: the standard
``*_link -> *_optical_frame`` rotation of REP 103 camera drivers.
"""

DEFAULT_TRANSLATION_THRESHOLD_M = 0.01
"""Below this ``|t12.x|`` (metres, or capture units) the ego/object translation label is ``none``."""

DEFAULT_YAW_THRESHOLD_DEG = 2.0
"""Below this ``|yaw|`` (degrees) the rotation label is ``none``."""

_ROTATION_TOLERANCE = 1e-4


def validate_transform(transform: npt.ArrayLike, *, name: str = 'transform') -> FloatArray:
    """Check and return a homogeneous rigid transform as a ``(4, 4)`` float64 array.

    Args:
        transform: array-like of shape ``(4, 4)``; the top-left ``3x3`` block must be a rotation
            (orthonormal, determinant +1, within 1e-4), the last row ``(0, 0, 0, 1)``.
        name: used in the error message.

    Returns:
        A new ``(4, 4)`` ``float64`` array.

    Raises:
        PoseError: wrong shape, non-finite values, not a rotation or a bad last row.
    """
    matrix = np.array(transform, dtype=np.float64)
    if matrix.shape != (4, 4):
        raise PoseError(f'{name}: expected shape (4, 4), got {matrix.shape}')
    if not np.all(np.isfinite(matrix)):
        raise PoseError(f'{name}: contains NaN or infinite values')
    if not np.allclose(matrix[3], (0.0, 0.0, 0.0, 1.0), atol=1e-9):
        raise PoseError(f'{name}: last row must be (0, 0, 0, 1), got {matrix[3].tolist()}')
    rotation = matrix[:3, :3]
    if not np.allclose(rotation.T @ rotation, np.eye(3), atol=_ROTATION_TOLERANCE):
        raise PoseError(f'{name}: the 3x3 block is not orthonormal')
    if abs(np.linalg.det(rotation) - 1.0) > _ROTATION_TOLERANCE:
        raise PoseError(f'{name}: the 3x3 block has determinant {np.linalg.det(rotation):.6f}, not +1')
    return matrix


def transform_from_position_quaternion(position: npt.ArrayLike, quaternion_xyzw: npt.ArrayLike) -> FloatArray:
    """Build ``T_parent_child`` from a position (x, y, z) and a quaternion (x, y, z, w).

    This is the layout of ``geometry_msgs/Pose`` (e.g. ``nav_msgs/Odometry.pose.pose``). The
    quaternion is normalised; it must have a norm within 10 % of 1.

    Returns:
        ``(4, 4)`` float64 transform.

    Raises:
        PoseError: wrong lengths, non-finite values, or a quaternion norm outside [0.9, 1.1].
    """
    p = np.asarray(position, dtype=np.float64).reshape(-1)
    q = np.asarray(quaternion_xyzw, dtype=np.float64).reshape(-1)
    if p.shape != (3,) or q.shape != (4,):
        raise PoseError(f'expected position of length 3 and quaternion of length 4, got {p.shape}, {q.shape}')
    if not (np.all(np.isfinite(p)) and np.all(np.isfinite(q))):
        raise PoseError('position or quaternion contains NaN or infinite values')
    norm = float(np.linalg.norm(q))
    if not 0.9 <= norm <= 1.1:
        raise PoseError(f'quaternion norm {norm:.4f} is not close to 1')
    transform = np.eye(4)
    transform[:3, :3] = Rotation.from_quat(q / norm).as_matrix()
    transform[:3, 3] = p
    return transform


def quaternion_xyzw_from_transform(transform: npt.ArrayLike) -> FloatArray:
    """Return the rotation of a ``(4, 4)`` transform as a unit quaternion ``(x, y, z, w)``, w >= 0."""
    matrix = validate_transform(transform)
    q = Rotation.from_matrix(matrix[:3, :3]).as_quat()
    return np.asarray(q if q[3] >= 0 else -q, dtype=np.float64)


def invert_transform(transform: npt.ArrayLike) -> FloatArray:
    """Invert a rigid ``(4, 4)`` transform exactly (``R^T``, ``-R^T t``).

    Raises:
        PoseError: see :func:`validate_transform`.
    """
    matrix = validate_transform(transform)
    inverse = np.eye(4)
    inverse[:3, :3] = matrix[:3, :3].T
    inverse[:3, 3] = -matrix[:3, :3].T @ matrix[:3, 3]
    return inverse


def base_to_optical_extrinsic(
    translation: npt.ArrayLike = (0.0, 0.0, 0.0),
    quaternion_xyzw: npt.ArrayLike = BASE_TO_OPTICAL_QUATERNION_XYZW,
) -> FloatArray:
    """Static extrinsic ``T_base_camera_optical`` as a ``(4, 4)`` transform.

    Args:
        translation: camera optical centre in ``base_link`` (metres).
        quaternion_xyzw: rotation of the optical frame in ``base_link``; the default is a
            forward-looking camera (:data:`BASE_TO_OPTICAL_QUATERNION_XYZW`).
    """
    return transform_from_position_quaternion(translation, quaternion_xyzw)


def camera_pose_from_odometry(t_odom_base: npt.ArrayLike, t_base_camera: npt.ArrayLike) -> FloatArray:
    """Camera-to-odom pose ``T_odom_camera_optical = T_odom_base @ T_base_camera_optical``.

    Both inputs are ``(4, 4)`` transforms; raises :class:`PoseError` when either is malformed.
    """
    return validate_transform(t_odom_base, name='T_odom_base') @ validate_transform(
        t_base_camera, name='T_base_camera_optical'
    )


def interpolate_transform(t_a: npt.ArrayLike, t_b: npt.ArrayLike, alpha: float) -> FloatArray:
    """Interpolate two poses: linear in position, spherical-linear (slerp) in rotation.

    Args:
        t_a: pose at ``alpha = 0``, ``(4, 4)``.
        t_b: pose at ``alpha = 1``, ``(4, 4)``.
        alpha: fraction in ``[0, 1]``; values outside are refused (no extrapolation).

    Raises:
        PoseError: malformed poses or ``alpha`` outside ``[0, 1]``.
    """
    if not 0.0 <= alpha <= 1.0 or not math.isfinite(alpha):
        raise PoseError(f'interpolation fraction {alpha} is outside [0, 1]; extrapolation is refused')
    a = validate_transform(t_a, name='t_a')
    b = validate_transform(t_b, name='t_b')
    slerp = Slerp([0.0, 1.0], Rotation.from_matrix(np.stack([a[:3, :3], b[:3, :3]])))
    result = np.eye(4)
    result[:3, :3] = slerp([alpha]).as_matrix()[0]
    result[:3, 3] = (1.0 - alpha) * a[:3, 3] + alpha * b[:3, 3]
    return result


def yaw_deg_from_forward(fx: npt.ArrayLike, fz: npt.ArrayLike) -> Any:
    """Yaw in degrees from camera 2's optical axis ``f`` expressed in camera 1's optical frame.

    ``yaw = atan2(f.x, f.z)`` (CONVENTIONS.md); positive: turned right; range ``(-180, 180]``. The one
    implementation of the yaw formula: scalars, or arrays of any shape (numpy broadcasting, float64),
    for the node's pair policy and the dataset builder's pair matrix alike.
    """
    return np.degrees(np.arctan2(fx, fz))


def yaw_deg_from_rotation(r12: npt.ArrayLike) -> float:
    """Yaw in degrees of a relative rotation ``R12`` (camera 2's axes in camera 1's optical frame).

    ``yaw = atan2(f.x, f.z)`` with ``f = R12[:, 2]`` (CONVENTIONS.md); positive: turned right.
    Range ``(-180, 180]``.
    """
    forward = np.asarray(r12, dtype=np.float64)[:, 2]
    return float(yaw_deg_from_forward(forward[0], forward[2]))


@dataclass(frozen=True, slots=True)
class RelativePose:
    """Pose of camera 2 expressed in camera 1's optical frame (frame 1 -> frame 2).

    Attributes:
        rotation: ``R12 = R1^T R2``, ``(3, 3)`` float64.
        translation: ``t12 = R1^T (C2 - C1)``, ``(3,)`` float64, in the poses' length unit.
        yaw_deg: ``atan2(f.x, f.z)`` with ``f = R12[:, 2]``; positive = turned right.
        pitch_deg: elevation of camera 2's optical axis in camera 1's frame; positive = tilted up.
        roll_deg: rotation about the optical axis (intrinsic Y-X-Z decomposition of ``R12``).
    """

    rotation: FloatArray
    translation: FloatArray
    yaw_deg: float
    pitch_deg: float
    roll_deg: float

    @property
    def abs_yaw_deg(self) -> float:
        """Horizontal angle used for pair selection, ``|yaw|`` in degrees."""
        return abs(self.yaw_deg)

    def as_dict(self) -> dict[str, float | list[float]]:
        """JSON-friendly dict: yaw/pitch/roll in degrees, ``t12`` (3 floats) and ``R12`` (row-major)."""
        return {
            'yaw_deg': self.yaw_deg,
            'pitch_deg': self.pitch_deg,
            'roll_deg': self.roll_deg,
            't12': [float(v) for v in self.translation],
            'R12': [float(v) for v in self.rotation.reshape(-1)],
        }


def relative_pose(t_world_camera_1: npt.ArrayLike, t_world_camera_2: npt.ArrayLike) -> RelativePose:
    """Relative pose of a pair, frame 1 -> frame 2 (CONVENTIONS.md).

    Args:
        t_world_camera_1: camera-to-world pose of frame 1 (optical frame), ``(4, 4)``.
        t_world_camera_2: camera-to-world pose of frame 2, ``(4, 4)``, same world frame.

    Raises:
        PoseError: either pose malformed.
    """
    a = validate_transform(t_world_camera_1, name='T_world_camera_1')
    b = validate_transform(t_world_camera_2, name='T_world_camera_2')
    r1, r2 = a[:3, :3], b[:3, :3]
    r12 = r1.T @ r2
    t12 = r1.T @ (b[:3, 3] - a[:3, 3])
    yaw = yaw_deg_from_rotation(r12)
    _, pitch_about_x, roll = Rotation.from_matrix(r12).as_euler('YXZ', degrees=True)
    # A positive rotation about the optical x axis (right) tilts the camera up.
    return RelativePose(
        rotation=r12,
        translation=t12,
        yaw_deg=yaw,
        pitch_deg=float(pitch_about_x),
        roll_deg=float(roll),
    )


def mirror_label(label: ViewpointLabel) -> ViewpointLabel:
    """Swap left and right; ``none`` stays ``none``."""
    if label is ViewpointLabel.LEFT:
        return ViewpointLabel.RIGHT
    if label is ViewpointLabel.RIGHT:
        return ViewpointLabel.LEFT
    return ViewpointLabel.NONE


def ego_translation_label(t12: npt.ArrayLike, threshold_m: float = DEFAULT_TRANSLATION_THRESHOLD_M) -> ViewpointLabel:
    """Ego-centric translation: the sign of ``t12.x`` (positive: the camera moved RIGHT).

    ``none`` only when ``|t12.x| < threshold_m`` (or exactly 0, so a zero threshold is well defined).
    Raises :class:`PoseError` for non-finite input.
    """
    x = float(np.asarray(t12, dtype=np.float64).reshape(-1)[0])
    if not math.isfinite(x):
        raise PoseError('t12.x is not finite')
    if abs(x) < threshold_m or x == 0.0:
        return ViewpointLabel.NONE
    return ViewpointLabel.RIGHT if x > 0 else ViewpointLabel.LEFT


def object_translation_label(
    t12: npt.ArrayLike, threshold_m: float = DEFAULT_TRANSLATION_THRESHOLD_M
) -> ViewpointLabel:
    """Object-centric translation: the mirror of :func:`ego_translation_label`."""
    return mirror_label(ego_translation_label(t12, threshold_m))


def rotation_label(yaw_deg: float, threshold_deg: float = DEFAULT_YAW_THRESHOLD_DEG) -> ViewpointLabel:
    """Ego-centric rotation: the sign of yaw (positive: turned RIGHT); ``none`` below the threshold."""
    if not math.isfinite(yaw_deg):
        raise PoseError('yaw is not finite')
    if abs(yaw_deg) < threshold_deg or yaw_deg == 0.0:
        return ViewpointLabel.NONE
    return ViewpointLabel.RIGHT if yaw_deg > 0 else ViewpointLabel.LEFT


@dataclass(frozen=True, slots=True)
class LabelThresholds:
    """Thresholds below which a label is ``none``.

    Attributes:
        translation_m: ``|t12.x|`` threshold in metres (or the capture's length unit).
        yaw_deg: ``|yaw|`` threshold in degrees.
    """

    translation_m: float = DEFAULT_TRANSLATION_THRESHOLD_M
    yaw_deg: float = DEFAULT_YAW_THRESHOLD_DEG

    def __post_init__(self) -> None:
        if not (self.translation_m >= 0 and math.isfinite(self.translation_m)):
            raise PoseError(f'translation threshold must be finite and >= 0, got {self.translation_m}')
        if not (self.yaw_deg >= 0 and math.isfinite(self.yaw_deg)):
            raise PoseError(f'yaw threshold must be finite and >= 0, got {self.yaw_deg}')


def viewpoint_label(
    question_type: QuestionType | str,
    pose: RelativePose,
    thresholds: LabelThresholds = LabelThresholds(),
) -> ViewpointLabel:
    """Ground-truth label of one question type for a relative pose.

    Raises:
        ValueError: unknown question type.
    """
    kind = QuestionType(question_type)
    if kind is QuestionType.EGO_TRANSLATION:
        return ego_translation_label(pose.translation, thresholds.translation_m)
    if kind is QuestionType.OBJECT_TRANSLATION:
        return object_translation_label(pose.translation, thresholds.translation_m)
    return rotation_label(pose.yaw_deg, thresholds.yaw_deg)
