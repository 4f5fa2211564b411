"""The simulated camera model: intrinsics, OpenGL matrices, and rendered pixels agreeing with K exactly.

A thin square facing the camera projects affinely (every point at the same depth), so the centroid of
its rendered pixels is the projection of its centre; its edges pin down where pixels are sampled.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest

from actial_ros.errors import ConfigError
from actial_ros.frame import CameraIntrinsics
from actial_ros.geometry import base_to_optical_extrinsic
from actial_ros.message_fields import camera_info_fields
from actial_ros.simulation.camera import (
    PinholeCamera,
    depth_from_buffer,
    gl_list,
    project_points,
    projection_matrix,
    view_matrix,
)

pybullet = pytest.importorskip('pybullet')

from actial_ros.simulation.render import Renderer, RenderOptions  # noqa: E402
from actial_ros.simulation.world import SimWorld  # noqa: E402

# The camera at (0, 0, 1) looking along world +x (a forward camera on a base at the origin).
CAMERA_POSE = base_to_optical_extrinsic()
CAMERA_POSE[:3, 3] = (0.0, 0.0, 1.0)
DEPTH_M = 2.0


def test_intrinsics_follow_the_vertical_field_of_view() -> None:
    camera = PinholeCamera(width=320, height=240, fov_v_deg=60.0)
    k = camera.intrinsics
    assert k.fy == pytest.approx(120.0 / math.tan(math.radians(30.0)))
    assert k.fx == k.fy
    assert (k.cx, k.cy, k.width, k.height) == (160.0, 120.0, 320, 240)
    info = camera_info_fields(k)
    assert info['k'] == [k.fx, 0.0, 160.0, 0.0, k.fy, 120.0, 0.0, 0.0, 1.0]
    assert info['p'][:3] == [k.fx, 0.0, 160.0] and len(info['p']) == 12 and info['d'] == [0.0] * 5
    with pytest.raises(ConfigError):
        PinholeCamera(fov_v_deg=180.0)
    with pytest.raises(ConfigError):
        PinholeCamera(near_m=1.0, far_m=0.5)
    with pytest.raises(ConfigError):
        PinholeCamera(width=0)


def test_projection_matrix_is_pybullets_with_the_row_shift() -> None:
    camera = PinholeCamera(width=320, height=240, fov_v_deg=60.0, near_m=0.1, far_m=10.0)
    ours = camera.projection_matrix()
    theirs = np.asarray(pybullet.computeProjectionMatrixFOV(60.0, 320 / 240, 0.1, 10.0)).reshape(4, 4).T
    expected = theirs.copy()
    expected[1, 2] = 2.0 / 240  # one row: TinyRenderer samples row r at screen y = H - 1 - r
    np.testing.assert_allclose(ours, expected, atol=1e-12)
    # An off-centre principal point shifts the frustum.
    k = CameraIntrinsics(fx=200.0, fy=200.0, cx=100.0, cy=130.0, width=320, height=240)
    shifted = projection_matrix(k, 0.1, 10.0)
    assert shifted[0, 2] == pytest.approx(1.0 - 200.0 / 320)
    assert shifted[1, 2] == pytest.approx(2.0 * 131.0 / 240 - 1.0)


def test_view_matrix_maps_the_optical_axis_to_minus_z() -> None:
    view = view_matrix(CAMERA_POSE)
    eye = view @ np.array([DEPTH_M, 0.0, 1.0, 1.0])  # a point straight ahead
    np.testing.assert_allclose(eye[:3], [0.0, 0.0, -DEPTH_M], atol=1e-12)
    up = view @ np.array([DEPTH_M, 0.0, 1.5, 1.0])  # above the axis: OpenGL +y
    assert up[1] > 0
    left = view @ np.array([DEPTH_M, 0.5, 1.0, 1.0])  # world +y is the camera's left: OpenGL -x
    assert left[0] < 0
    # Column-major flattening for pybullet.
    assert gl_list(view)[12:15] == pytest.approx(view[:3, 3].tolist())


def test_project_points_and_depth_buffer_conversion() -> None:
    k = PinholeCamera(width=320, height=240).intrinsics
    pixels = project_points([[DEPTH_M, -0.5, 0.7], [-1.0, 0.0, 1.0]], CAMERA_POSE, k)
    # optical x = -world y = 0.5 (right), optical y = -(z - 1) = 0.3 (down)
    assert pixels[0] == pytest.approx([k.fx * 0.25 + k.cx, k.fy * 0.15 + k.cy])
    assert np.isnan(pixels[1]).all()  # behind the camera
    near, far = 0.1, 10.0
    z = np.array([0.1, 1.0, 2.5, 9.0, 9.985])
    ndc = (far + near) / (far - near) - 2.0 * far * near / ((far - near) * z)
    np.testing.assert_allclose(depth_from_buffer((ndc + 1.0) / 2.0, near, far), z, rtol=1e-6)
    assert np.isinf(depth_from_buffer(np.array([1.0, 1.0 - 2.0**-24, 0.9999999]), near, far)).all()


@pytest.fixture(scope='module')
def world() -> Iterator[SimWorld]:
    with SimWorld() as sim:
        yield sim


def _render_square(
    world: SimWorld, camera: PinholeCamera, centre_optical: tuple[float, float], half: float
) -> tuple[np.ndarray, np.ndarray]:
    """Render a red square of half-size ``half`` (m) facing the camera at depth ``DEPTH_M``, centred at optical
    (X, Y); returns the mask of its pixels and the depth image."""
    x_opt, y_opt = centre_optical
    visual = world.call(
        'createVisualShape', world.pb.GEOM_BOX, halfExtents=[0.0005, half, half], rgbaColor=[1.0, 0.0, 0.0, 1.0]
    )
    # optical (X, Y, Z) -> world (Z, -X, 1 - Y); the front face is at optical depth DEPTH_M.
    body = world.call(
        'createMultiBody',
        baseMass=0.0,
        baseVisualShapeIndex=visual,
        basePosition=[DEPTH_M + 0.0005, -x_opt, 1.0 - y_opt],
    )
    try:
        rendering = Renderer(world, camera, RenderOptions(depth=True, light_direction=None)).render(CAMERA_POSE)
    finally:
        world.call('removeBody', body)
    rgb = rendering.rgb.astype(int)
    mask = (rgb[..., 0] > 100) & (rgb[..., 1] < 60) & (rgb[..., 2] < 60)
    assert rendering.depth is not None
    return mask, rendering.depth


@pytest.mark.parametrize('size', [(320, 240), (161, 121)])
@pytest.mark.parametrize('centre', [(0.0, 0.0), (0.45, -0.3), (-0.6, 0.35)])
def test_a_known_point_renders_where_the_intrinsics_project_it(
    world: SimWorld, size: tuple[int, int], centre: tuple[float, float]
) -> None:
    camera = PinholeCamera(width=size[0], height=size[1], fov_v_deg=60.0, near_m=0.05, far_m=20.0)
    k = camera.intrinsics
    mask, depth = _render_square(world, camera, centre, 0.1)
    assert mask.sum() > 50
    rows, cols = np.nonzero(mask)
    expected_u = k.fx * centre[0] / DEPTH_M + k.cx
    expected_v = k.fy * centre[1] / DEPTH_M + k.cy
    # The rasterised square's centroid is the projection up to half a pixel of edge quantisation.
    assert abs(cols.mean() - expected_u) <= 0.5 + 1e-9
    assert abs(rows.mean() - expected_v) <= 0.5 + 1e-9
    # Metric depth along the optical axis, from the depth buffer.
    assert float(np.median(depth[mask])) == pytest.approx(DEPTH_M, abs=2e-3)
    assert np.isinf(depth[~mask]).mean() > 0.9  # nothing else in the world


def test_pixels_are_sampled_at_integer_opencv_coordinates(world: SimWorld) -> None:
    """Move a large square's edges a tenth of a pixel either side of pixel centres: the covered pixels
    switch exactly there, on all four sides (OpenCV/ROS convention: pixel centres are integers)."""
    camera = PinholeCamera(width=160, height=120, fov_v_deg=60.0, near_m=0.05, far_m=20.0)
    k = camera.intrinsics
    half = 0.4  # metres: the square spans many pixels; only one edge is inside the image per render
    for target, offset in [(60, -0.1), (60, 0.1), (100, -0.1), (100, 0.1)]:
        edge_u = target + offset
        # Left edge at edge_u (square to the right of it) and right edge at edge_u (square to the left).
        left_x = (edge_u - k.cx) * DEPTH_M / k.fx + half
        mask, _ = _render_square(world, camera, (left_x, 0.0), half)
        first = int(np.nonzero(mask[60])[0].min())
        assert first == (target if offset < 0 else target + 1), (edge_u, first)
        right_x = (edge_u - k.cx) * DEPTH_M / k.fx - half
        mask, _ = _render_square(world, camera, (right_x, 0.0), half)
        last = int(np.nonzero(mask[60])[0].max())
        assert last == (target - 1 if offset < 0 else target), (edge_u, last)
    for target, offset in [(40, -0.1), (40, 0.1), (80, -0.1), (80, 0.1)]:
        edge_v = target + offset
        top_y = (edge_v - k.cy) * DEPTH_M / k.fy + half
        mask, _ = _render_square(world, camera, (0.0, top_y), half)
        first = int(np.nonzero(mask[:, 80])[0].min())
        assert first == (target if offset < 0 else target + 1), (edge_v, first)
        bottom_y = (edge_v - k.cy) * DEPTH_M / k.fy - half
        mask, _ = _render_square(world, camera, (0.0, bottom_y), half)
        last = int(np.nonzero(mask[:, 80])[0].max())
        assert last == (target - 1 if offset < 0 else target), (edge_v, last)
