"""Hand-checked cases for actial_ros.geometry, written from ../shared/notes/CONVENTIONS.md.

Expected values are derived by hand in the comments (never by calling the code under test).
Notation: optical frame x right, y down, z forward; ``T_a_b`` maps frame-b points into frame a;
``R12 = R1^T R2``, ``t12 = R1^T (C2 - C1)``, ``yaw = atan2(f.x, f.z)`` with ``f = R12[:, 2]``.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest
from scipy.spatial.transform import Rotation

from actial_ros.enums import QuestionType, ViewpointLabel
from actial_ros.errors import PoseError
from actial_ros.geometry import (
    BASE_TO_OPTICAL_QUATERNION_XYZW,
    LabelThresholds,
    base_to_optical_extrinsic,
    camera_pose_from_odometry,
    ego_translation_label,
    interpolate_transform,
    invert_transform,
    mirror_label,
    object_translation_label,
    quaternion_xyzw_from_transform,
    relative_pose,
    rotation_label,
    transform_from_position_quaternion,
    validate_transform,
    viewpoint_label,
)

FloatArray = npt.NDArray[np.float64]

LEFT, RIGHT, NONE = ViewpointLabel.LEFT, ViewpointLabel.RIGHT, ViewpointLabel.NONE
EGO, OBJ, ROT = QuestionType.EGO_TRANSLATION, QuestionType.OBJECT_TRANSLATION, QuestionType.ROTATION
ZERO = LabelThresholds(translation_m=0.0, yaw_deg=0.0)
S30 = 0.5  # sin 30 deg
C30 = math.sqrt(3.0) / 2.0  # cos 30 deg ~ 0.8660


def make_transform(rotation: npt.ArrayLike, translation: npt.ArrayLike = (0.0, 0.0, 0.0)) -> FloatArray:
    """4x4 from a 3x3 rotation and a translation, written out in the test (no code under test)."""
    transform = np.eye(4)
    transform[:3, :3] = np.asarray(rotation, dtype=np.float64)
    transform[:3, 3] = np.asarray(translation, dtype=np.float64)
    return transform


def rot_y(deg: float) -> FloatArray:
    """Rotation about +y (optical y = down) by ``deg``: [[c, 0, s], [0, 1, 0], [-s, 0, c]]."""
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def rot_z(deg: float) -> FloatArray:
    """Rotation about +z by ``deg``: [[c, -s, 0], [s, c, 0], [0, 0, 1]]."""
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


DEFAULT_THRESHOLDS = LabelThresholds()
Labels = tuple[ViewpointLabel, ViewpointLabel, ViewpointLabel]


def labels(pose_1: FloatArray, pose_2: FloatArray, thresholds: LabelThresholds = DEFAULT_THRESHOLDS) -> Labels:
    """(ego translation, object translation, rotation) labels of the pair pose_1 -> pose_2."""
    rel = relative_pose(pose_1, pose_2)
    return (
        viewpoint_label(EGO, rel, thresholds),
        viewpoint_label(OBJ, rel, thresholds),
        viewpoint_label(ROT, rel, thresholds),
    )


def random_world_transforms(count: int, seed: int) -> list[FloatArray]:
    """Seeded random rigid transforms (test fixtures, built with scipy, not with the code under test)."""
    rng = np.random.default_rng(seed)
    rotations = Rotation.random(count, random_state=seed).as_matrix()
    return [make_transform(r, rng.uniform(-10.0, 10.0, size=3)) for r in rotations]


# --- basic label cases --------------------------------------------------------------------------


def test_identity_gives_no_movement_and_no_rotation() -> None:
    # t12 = 0, R12 = I -> f = (0, 0, 1) -> yaw = atan2(0, 1) = 0.
    rel = relative_pose(np.eye(4), np.eye(4))
    np.testing.assert_allclose(rel.rotation, np.eye(3))
    np.testing.assert_allclose(rel.translation, np.zeros(3))
    assert rel.yaw_deg == pytest.approx(0.0)
    assert labels(np.eye(4), np.eye(4)) == (NONE, NONE, NONE)


def test_translation_along_own_x_is_ego_right_object_left() -> None:
    # Camera 2 is camera 1 moved 0.5 along camera 1's x (its right): t12 = (0.5, 0, 0) -> ego RIGHT,
    # object LEFT (mirror), R12 = I -> yaw 0 -> NONE.
    pose_2 = make_transform(np.eye(3), (0.5, 0.0, 0.0))
    rel = relative_pose(np.eye(4), pose_2)
    np.testing.assert_allclose(rel.translation, (0.5, 0.0, 0.0))
    assert labels(np.eye(4), pose_2) == (RIGHT, LEFT, NONE)
    # Moving along -x: LEFT / RIGHT.
    assert labels(np.eye(4), make_transform(np.eye(3), (-0.5, 0.0, 0.0))) == (LEFT, RIGHT, NONE)
    # Moving forward or down only: no horizontal movement.
    assert labels(np.eye(4), make_transform(np.eye(3), (0.0, 0.3, 2.0))) == (NONE, NONE, NONE)


def test_turn_right_about_down_axis_is_positive_yaw() -> None:
    # R12 = Ry(+30): f = R12[:, 2] = (sin 30, 0, cos 30) = (0.5, 0, 0.866): the optical axis turned toward
    # +x (right). yaw = atan2(0.5, 0.866) = +30 deg -> rotation RIGHT; no translation -> NONE / NONE.
    pose_2 = make_transform(rot_y(30.0))
    np.testing.assert_allclose(pose_2[:3, 2], (S30, 0.0, C30))
    rel = relative_pose(np.eye(4), pose_2)
    assert rel.yaw_deg == pytest.approx(30.0)
    assert rel.abs_yaw_deg == pytest.approx(30.0)
    assert rel.pitch_deg == pytest.approx(0.0, abs=1e-9)
    assert rel.roll_deg == pytest.approx(0.0, abs=1e-9)
    assert labels(np.eye(4), pose_2) == (NONE, NONE, RIGHT)
    # Ry(-30): f = (-0.5, 0, 0.866) -> yaw -30 -> LEFT.
    rel_left = relative_pose(np.eye(4), make_transform(rot_y(-30.0)))
    assert rel_left.yaw_deg == pytest.approx(-30.0)
    assert viewpoint_label(ROT, rel_left) is LEFT


def test_turn_beyond_90_degrees_keeps_the_sign() -> None:
    # Ry(+120): f = (sin 120, 0, cos 120) = (0.866, 0, -0.5) -> atan2(0.866, -0.5) = +120 deg.
    rel = relative_pose(np.eye(4), make_transform(rot_y(120.0)))
    assert rel.yaw_deg == pytest.approx(120.0)
    assert viewpoint_label(ROT, rel) is RIGHT


def test_orbit_step_gives_opposite_translation_and_rotation() -> None:
    # Object at (0, 0, 2) in front of camera 1. Orbit 30 deg to the camera's right: camera 2 sits at
    # C2 = (2 sin 30, 0, 2 - 2 cos 30) = (1.0, 0, 0.268) and turns LEFT (Ry(-30)) to keep the object in
    # view: f2 = (-0.5, 0, 0.866) points from C2 to the object ((-1, 0, 1.732) / 2). Labels: ego RIGHT,
    # object LEFT, rotation LEFT (yaw -30): translation and rotation opposite (CONVENTIONS sanity check).
    pose_2 = make_transform(rot_y(-30.0), (1.0, 0.0, 2.0 - 2.0 * C30))
    rel = relative_pose(np.eye(4), pose_2)
    np.testing.assert_allclose(rel.translation, (1.0, 0.0, 2.0 - 2.0 * C30), atol=1e-12)
    assert rel.yaw_deg == pytest.approx(-30.0)
    assert labels(np.eye(4), pose_2) == (RIGHT, LEFT, LEFT)


@pytest.mark.parametrize('seed', [0, 1, 2, 3, 4])
def test_labels_invariant_to_common_world_transform(seed: int) -> None:
    # With T1 = W, T2 = W @ D: R12 = R_W^T R_W R_D = R_D and t12 = R_W^T (R_W t_D) = t_D, so the
    # relative pose and labels equal those of (I, D) for any rigid W.
    cases: list[tuple[FloatArray, tuple[ViewpointLabel, ViewpointLabel, ViewpointLabel], float]] = [
        (make_transform(np.eye(3), (0.5, 0.0, 0.0)), (RIGHT, LEFT, NONE), 0.0),
        (make_transform(rot_y(30.0)), (NONE, NONE, RIGHT), 30.0),
        # Move left 0.4 (and forward 0.1) while turning right 30: LEFT, RIGHT, RIGHT.
        (make_transform(rot_y(30.0), (-0.4, 0.0, 0.1)), (LEFT, RIGHT, RIGHT), 30.0),
        # Orbit step from test_orbit_step_gives_opposite_translation_and_rotation.
        (make_transform(rot_y(-30.0), (1.0, 0.0, 2.0 - 2.0 * C30)), (RIGHT, LEFT, LEFT), -30.0),
    ]
    for world in random_world_transforms(3, seed):
        for delta, expected, yaw in cases:
            pose_1 = world
            pose_2 = world @ delta
            rel = relative_pose(pose_1, pose_2)
            np.testing.assert_allclose(rel.rotation, delta[:3, :3], atol=1e-9)
            np.testing.assert_allclose(rel.translation, delta[:3, 3], atol=1e-9)
            assert rel.yaw_deg == pytest.approx(yaw, abs=1e-7)
            assert labels(pose_1, pose_2) == expected


# --- thresholds -----------------------------------------------------------------------------------


def test_translation_threshold_just_below_and_above() -> None:
    # Default threshold 0.01: "no movement" only when |t12.x| < 0.01.
    assert ego_translation_label((0.0099, 0.0, 0.0)) is NONE
    assert ego_translation_label((-0.0099, 5.0, 5.0)) is NONE
    assert ego_translation_label((0.0101, 0.0, 0.0)) is RIGHT
    assert ego_translation_label((-0.0101, 0.0, 0.0)) is LEFT
    assert object_translation_label((0.0101, 0.0, 0.0)) is LEFT
    assert object_translation_label((-0.0101, 0.0, 0.0)) is RIGHT
    assert object_translation_label((0.0099, 0.0, 0.0)) is NONE
    # Custom threshold 0.5; at exactly the threshold the value is not below it -> RIGHT.
    assert ego_translation_label((0.49, 0.0, 0.0), 0.5) is NONE
    assert ego_translation_label((0.5, 0.0, 0.0), 0.5) is RIGHT
    # Threshold 0: any non-zero x has a direction.
    assert ego_translation_label((1e-12, 0.0, 0.0), 0.0) is RIGHT
    assert ego_translation_label((-1e-12, 0.0, 0.0), 0.0) is LEFT


def test_yaw_threshold_just_below_and_above() -> None:
    # Default threshold 2 deg.
    assert rotation_label(1.99) is NONE
    assert rotation_label(-1.99) is NONE
    assert rotation_label(2.01) is RIGHT
    assert rotation_label(-2.01) is LEFT
    assert rotation_label(10.0, 20.0) is NONE
    assert rotation_label(-20.0, 20.0) is LEFT


def test_exact_zero_with_zero_threshold_is_none() -> None:
    # sign(0) = 0: an exactly zero t12.x or yaw has no direction, whatever the threshold.
    assert ego_translation_label((0.0, 1.0, 1.0), 0.0) is NONE
    assert rotation_label(0.0, 0.0) is NONE


def test_thresholds_through_viewpoint_label() -> None:
    thresholds = LabelThresholds(translation_m=0.1, yaw_deg=5.0)
    # Ry(4) -> yaw 4 < 5 -> NONE; Ry(6) -> RIGHT. t.x 0.09 < 0.1 -> NONE; 0.11 -> RIGHT.
    assert labels(np.eye(4), make_transform(rot_y(4.0), (0.09, 0.0, 0.0)), thresholds) == (NONE, NONE, NONE)
    assert labels(np.eye(4), make_transform(rot_y(6.0), (0.11, 0.0, 0.0)), thresholds) == (RIGHT, LEFT, RIGHT)
    left_pose = make_transform(rot_y(-6.0), (-0.11, 0.0, 0.0))
    assert labels(np.eye(4), left_pose, thresholds) == (LEFT, RIGHT, LEFT)
    # String question types are accepted.
    rel = relative_pose(np.eye(4), make_transform(rot_y(6.0)))
    assert viewpoint_label('rotation', rel, thresholds) is RIGHT
    with pytest.raises(ValueError):
        viewpoint_label('pitch', rel)


def test_invalid_thresholds_and_non_finite_inputs() -> None:
    with pytest.raises(PoseError):
        LabelThresholds(translation_m=-0.1)
    with pytest.raises(PoseError):
        LabelThresholds(yaw_deg=math.nan)
    with pytest.raises(PoseError):
        ego_translation_label((math.nan, 0.0, 0.0))
    with pytest.raises(PoseError):
        rotation_label(math.inf)


def test_mirror_label() -> None:
    assert mirror_label(LEFT) is RIGHT
    assert mirror_label(RIGHT) is LEFT
    assert mirror_label(NONE) is NONE


# --- extrinsic and odometry -----------------------------------------------------------------------


def test_base_to_optical_extrinsic_axes() -> None:
    # The columns of the rotation are the optical axes in base_link:
    # optical x (right) = base -y, optical y (down) = base -z, optical z (forward) = base +x.
    # Hand check from q = (x, y, z, w) = (-0.5, 0.5, -0.5, 0.5):
    #   R00 = 1 - 2(y^2 + z^2) = 0,  R01 = 2(xy - zw) = 0,  R02 = 2(xz + yw) = 1,
    #   R10 = 2(xy + zw) = -1,       R11 = 1 - 2(x^2 + z^2) = 0, R12 = 2(yz - xw) = 0,
    #   R20 = 2(xz - yw) = 0,        R21 = 2(yz + xw) = -1,  R22 = 1 - 2(x^2 + y^2) = 0.
    expected = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
    assert BASE_TO_OPTICAL_QUATERNION_XYZW == (-0.5, 0.5, -0.5, 0.5)
    extrinsic = base_to_optical_extrinsic()
    np.testing.assert_allclose(extrinsic[:3, :3], expected, atol=1e-12)
    np.testing.assert_allclose(extrinsic[:3, 0], (0.0, -1.0, 0.0), atol=1e-12)
    np.testing.assert_allclose(extrinsic[:3, 1], (0.0, 0.0, -1.0), atol=1e-12)
    np.testing.assert_allclose(extrinsic[:3, 2], (1.0, 0.0, 0.0), atol=1e-12)
    np.testing.assert_allclose(extrinsic[:3, 3], (0.0, 0.0, 0.0))
    np.testing.assert_allclose(extrinsic[3], (0.0, 0.0, 0.0, 1.0))
    shifted = base_to_optical_extrinsic((0.1, 0.0, 0.5))
    np.testing.assert_allclose(shifted[:3, 3], (0.1, 0.0, 0.5))


def _odom(x: float, y: float, yaw_deg: float) -> FloatArray:
    """T_odom_base for a planar robot: position (x, y, 0), heading ``yaw_deg`` about +z (REP 103)."""
    half = math.radians(yaw_deg) / 2.0
    return transform_from_position_quaternion((x, y, 0.0), (0.0, 0.0, math.sin(half), math.cos(half)))


def test_camera_pose_from_odometry_robot_yawed_left() -> None:
    # Robot at (1, 2, 0) yawed +90 deg about z (counter-clockwise seen from above, REP 103):
    # R_odom_base = Rz(90) = [[0, -1, 0], [1, 0, 0], [0, 0, 1]] (base x -> world +y).
    # R_odom_cam = Rz(90) @ E, E from test_base_to_optical_extrinsic_axes:
    #   row 0 = -(E row 1) = (1, 0, 0); row 1 = E row 0 = (0, 0, 1); row 2 = E row 2 = (0, -1, 0).
    # So optical z (column 2) = (0, 1, 0): the camera looks along world +y; optical x = world +x;
    # optical y = world -z (down). Camera centre = robot position (1, 2, 0).
    t_odom_base = _odom(1.0, 2.0, 90.0)
    np.testing.assert_allclose(t_odom_base[:3, :3], rot_z(90.0), atol=1e-12)
    camera = camera_pose_from_odometry(t_odom_base, base_to_optical_extrinsic())
    expected = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
    np.testing.assert_allclose(camera[:3, :3], expected, atol=1e-12)
    np.testing.assert_allclose(camera[:3, 2], (0.0, 1.0, 0.0), atol=1e-12)
    np.testing.assert_allclose(camera[:3, 3], (1.0, 2.0, 0.0), atol=1e-12)

    # The robot yaws a further 30 deg LEFT (counter-clockwise, heading 120 deg), in place:
    # R12 = E^T Rz(90)^T Rz(120) E = E^T Rz(30) E: a rotation by +30 about base z = optical -y, i.e. by
    # -30 about optical y: R12 = Ry(-30) -> f = (-0.5, 0, 0.866) -> yaw = -30 -> rotation LEFT.
    camera_2 = camera_pose_from_odometry(_odom(1.0, 2.0, 120.0), base_to_optical_extrinsic())
    rel = relative_pose(camera, camera_2)
    np.testing.assert_allclose(rel.rotation, rot_y(-30.0), atol=1e-12)
    assert rel.yaw_deg == pytest.approx(-30.0)
    assert viewpoint_label(ROT, rel) is LEFT
    assert viewpoint_label(EGO, rel) is NONE

    # Turning right (clockwise, heading 60 deg) instead: yaw +30 -> RIGHT.
    camera_right = camera_pose_from_odometry(_odom(1.0, 2.0, 60.0), base_to_optical_extrinsic())
    rel_right = relative_pose(camera, camera_right)
    assert rel_right.yaw_deg == pytest.approx(30.0)
    assert viewpoint_label(ROT, rel_right) is RIGHT

    # Strafing to the robot's right (base -y) while heading +90: base -y = Rz(90) (0, -1, 0) = world +x,
    # the camera's right (optical x = world +x) -> t12 = (0.5, 0, 0) -> ego RIGHT, object LEFT.
    camera_3 = camera_pose_from_odometry(_odom(1.5, 2.0, 90.0), base_to_optical_extrinsic())
    rel_strafe = relative_pose(camera, camera_3)
    np.testing.assert_allclose(rel_strafe.translation, (0.5, 0.0, 0.0), atol=1e-12)
    assert (viewpoint_label(EGO, rel_strafe), viewpoint_label(OBJ, rel_strafe)) == (RIGHT, LEFT)


def test_camera_pose_from_odometry_rejects_malformed_input() -> None:
    with pytest.raises(PoseError, match='T_odom_base'):
        camera_pose_from_odometry(np.full((4, 4), np.nan), base_to_optical_extrinsic())
    with pytest.raises(PoseError, match='T_base_camera_optical'):
        camera_pose_from_odometry(np.eye(4), np.eye(3))


# --- interpolation --------------------------------------------------------------------------------


def test_interpolation_midpoint() -> None:
    # a: identity at the origin; b: Rz(90) at (2, 4, -6).
    # Midpoint: position (1, 2, -3); slerp halves the angle: Rz(45), quaternion (0, 0, sin 22.5, cos 22.5).
    t_a = np.eye(4)
    t_b = make_transform(rot_z(90.0), (2.0, 4.0, -6.0))
    mid = interpolate_transform(t_a, t_b, 0.5)
    np.testing.assert_allclose(mid[:3, 3], (1.0, 2.0, -3.0), atol=1e-12)
    np.testing.assert_allclose(mid[:3, :3], rot_z(45.0), atol=1e-12)
    half = math.radians(22.5)
    np.testing.assert_allclose(
        quaternion_xyzw_from_transform(mid), (0.0, 0.0, math.sin(half), math.cos(half)), atol=1e-12
    )
    np.testing.assert_allclose(mid[3], (0.0, 0.0, 0.0, 1.0))
    # Quarter: position (0.5, 1, -1.5), Rz(22.5).
    quarter = interpolate_transform(t_a, t_b, 0.25)
    np.testing.assert_allclose(quarter[:3, 3], (0.5, 1.0, -1.5), atol=1e-12)
    np.testing.assert_allclose(quarter[:3, :3], rot_z(22.5), atol=1e-12)
    # End points are reproduced.
    np.testing.assert_allclose(interpolate_transform(t_a, t_b, 0.0), t_a, atol=1e-12)
    np.testing.assert_allclose(interpolate_transform(t_a, t_b, 1.0), t_b, atol=1e-12)


@pytest.mark.parametrize('alpha', [-0.01, 1.01, 2.0, math.nan, math.inf])
def test_interpolation_refuses_extrapolation(alpha: float) -> None:
    with pytest.raises(PoseError):
        interpolate_transform(np.eye(4), make_transform(rot_z(90.0)), alpha)


# --- validation, quaternions, inversion -----------------------------------------------------------


def test_validate_transform_accepts_and_copies() -> None:
    source = make_transform(rot_z(30.0), (1.0, 2.0, 3.0))
    checked = validate_transform(source.tolist())
    assert checked.dtype == np.float64 and checked.shape == (4, 4)
    np.testing.assert_array_equal(checked, source)
    checked[0, 3] = 99.0
    assert source[0, 3] == 1.0


@pytest.mark.parametrize(
    ('matrix', 'message'),
    [
        (np.full((4, 4), np.nan), 'NaN'),
        (np.eye(3), 'shape'),
        (np.eye(4)[:3], 'shape'),
        (make_transform(np.diag([1.0, 1.0, -1.0])), 'determinant'),  # reflection, det -1
        (make_transform(np.diag([1.1, 1.0, 1.0])), 'orthonormal'),  # scaled axis
        (make_transform([[1.0, 0.2, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]), 'orthonormal'),  # shear
        (np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0], [0.5, 0, 0, 1.0]]), 'last row'),
    ],
)
def test_validate_transform_errors(matrix: FloatArray, message: str) -> None:
    with pytest.raises(PoseError, match=message):
        validate_transform(matrix, name='probe')
    with pytest.raises(PoseError, match='probe'):
        validate_transform(matrix, name='probe')


def test_validate_transform_inf() -> None:
    matrix = np.eye(4)
    matrix[0, 3] = math.inf
    with pytest.raises(PoseError):
        validate_transform(matrix)


def test_quaternion_order_is_xyzw() -> None:
    # (x, y, z, w) = (0, 0, sqrt(1/2), sqrt(1/2)) is Rz(90) = [[0, -1, 0], [1, 0, 0], [0, 0, 1]].
    # (Read as (w, x, y, z) it would be a 180 deg turn about (0, 1, 1)/sqrt 2: a different matrix.)
    r = math.sqrt(0.5)
    transform = transform_from_position_quaternion((1.0, 2.0, 3.0), (0.0, 0.0, r, r))
    np.testing.assert_allclose(transform[:3, :3], rot_z(90.0), atol=1e-12)
    np.testing.assert_allclose(transform[:3, 3], (1.0, 2.0, 3.0))
    np.testing.assert_allclose(quaternion_xyzw_from_transform(transform), (0.0, 0.0, r, r), atol=1e-12)


def test_quaternion_round_trip() -> None:
    rng = np.random.default_rng(7)
    for _ in range(20):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        q = q if q[3] >= 0 else -q  # canonical sign: w >= 0
        transform = transform_from_position_quaternion(rng.normal(size=3), q)
        back = quaternion_xyzw_from_transform(transform)
        assert back[3] >= 0
        np.testing.assert_allclose(back, q, atol=1e-12)
    # A slightly unnormalised quaternion is normalised: (0, 0, 0, 1.05) -> identity.
    np.testing.assert_allclose(transform_from_position_quaternion((0, 0, 0), (0, 0, 0, 1.05)), np.eye(4))
    # q and -q are the same rotation; the returned one has w >= 0.
    s, c = math.sin(math.pi / 8), math.cos(math.pi / 8)
    flipped = transform_from_position_quaternion((0, 0, 0), (0.0, 0.0, -s, -c))
    np.testing.assert_allclose(quaternion_xyzw_from_transform(flipped), (0.0, 0.0, s, c), atol=1e-12)


@pytest.mark.parametrize(
    'quaternion',
    [(0.0, 0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 2.0), (math.nan, 0.0, 0.0, 1.0), (0.0, 0.0, 1.0)],
)
def test_transform_from_position_quaternion_rejects_bad_quaternion(quaternion: tuple[float, ...]) -> None:
    with pytest.raises(PoseError):
        transform_from_position_quaternion((0.0, 0.0, 0.0), quaternion)


def test_transform_from_position_quaternion_rejects_bad_position() -> None:
    with pytest.raises(PoseError):
        transform_from_position_quaternion((0.0, 0.0), (0.0, 0.0, 0.0, 1.0))
    with pytest.raises(PoseError):
        transform_from_position_quaternion((0.0, math.inf, 0.0), (0.0, 0.0, 0.0, 1.0))


def test_invert_transform() -> None:
    # T = (Rz(90), (1, 2, 3)); T^-1 = (Rz(-90), -Rz(-90) (1, 2, 3)) = (Rz(-90), -(2, -1, 3))
    #   = (Rz(-90), (-2, 1, -3)).
    transform = make_transform(rot_z(90.0), (1.0, 2.0, 3.0))
    inverse = invert_transform(transform)
    np.testing.assert_allclose(inverse[:3, :3], rot_z(-90.0), atol=1e-12)
    np.testing.assert_allclose(inverse[:3, 3], (-2.0, 1.0, -3.0), atol=1e-12)
    np.testing.assert_allclose(inverse @ transform, np.eye(4), atol=1e-12)


# --- pitch and roll -------------------------------------------------------------------------------


def test_pitch_positive_when_tilting_up() -> None:
    # Camera 2 tilts up by 20 deg: forward f = (0, -sin 20, cos 20) (up is optical -y), right stays
    # x = (1, 0, 0), down y = f x x = (0, cos 20, sin 20). R12 = [x y f] = Rx(+20). Pitch +20, yaw 0.
    s, c = math.sin(math.radians(20.0)), math.cos(math.radians(20.0))
    r12 = np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])
    rel = relative_pose(np.eye(4), make_transform(r12))
    assert rel.pitch_deg == pytest.approx(20.0)
    assert rel.yaw_deg == pytest.approx(0.0, abs=1e-9)
    assert rel.roll_deg == pytest.approx(0.0, abs=1e-9)
    assert viewpoint_label(ROT, rel) is NONE
    # Tilting down: f = (0, sin 20, cos 20) -> pitch -20.
    down = relative_pose(np.eye(4), make_transform(r12.T))
    assert down.pitch_deg == pytest.approx(-20.0)


def test_relative_pose_as_dict() -> None:
    rel = relative_pose(np.eye(4), make_transform(rot_y(30.0), (0.5, 0.0, 0.0)))
    data = rel.as_dict()
    assert data['yaw_deg'] == pytest.approx(30.0)
    assert data['t12'] == pytest.approx([0.5, 0.0, 0.0])
    assert isinstance(data['R12'], list) and len(data['R12']) == 9


def test_relative_pose_rejects_malformed_poses() -> None:
    with pytest.raises(PoseError, match='T_world_camera_1'):
        relative_pose(np.full((4, 4), np.nan), np.eye(4))
    with pytest.raises(PoseError, match='T_world_camera_2'):
        relative_pose(np.eye(4), make_transform(np.diag([1.0, 1.0, -1.0])))
