"""Rendering options: seeded camera noise, lighting, shadows, and metric depth of the floor."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt
import pytest

from actial_ros.errors import ConfigError
from actial_ros.geometry import camera_pose_from_odometry
from actial_ros.simulation.camera import PinholeCamera
from actial_ros.simulation.mount import camera_mount
from actial_ros.simulation.render import RenderOptions, depth_image_fields
from actial_ros.simulation.trajectory import planar_pose

pytest.importorskip('pybullet')

from actial_ros.simulation.render import Renderer
from actial_ros.simulation.scene import SceneConfig, build_scene
from actial_ros.simulation.world import SimWorld

CAMERA = PinholeCamera(width=96, height=72, fov_v_deg=60.0)
HEIGHT_M, PITCH_DEG = 0.8, 35.0
POSE = camera_pose_from_odometry(planar_pose(-1.5, 0.0, HEIGHT_M, 0.0), camera_mount(pitch_down_deg=PITCH_DEG))


@pytest.fixture(scope='module')
def world() -> Iterator[SimWorld]:
    with SimWorld() as sim:
        build_scene(sim, SceneConfig(seed=2))
        yield sim


def test_noise_is_seeded_per_frame(world: SimWorld) -> None:
    clean = Renderer(world, CAMERA, RenderOptions()).render(POSE, 0).rgb
    noisy = Renderer(world, CAMERA, RenderOptions(noise_std=8.0, noise_seed=3))
    a, b, c = noisy.render(POSE, 0).rgb, noisy.render(POSE, 0).rgb, noisy.render(POSE, 1).rgb
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    difference = a.astype(float) - clean.astype(float)
    unclipped = (clean > 20) & (clean < 235)
    assert difference[unclipped].std() == pytest.approx(8.0, rel=0.1)
    assert abs(difference[unclipped].mean()) < 0.5
    again = Renderer(world, CAMERA, RenderOptions(noise_std=8.0, noise_seed=4)).render(POSE, 0).rgb
    assert not np.array_equal(a, again)


def test_lighting_and_shadows_change_the_image(world: SimWorld) -> None:
    base = Renderer(world, CAMERA, RenderOptions()).render(POSE).rgb
    dim = Renderer(world, CAMERA, RenderOptions(ambient=0.2, diffuse=0.2)).render(POSE).rgb
    assert dim.astype(float).mean() < base.astype(float).mean() - 10
    tinted = Renderer(world, CAMERA, RenderOptions(light_color=(1.0, 0.3, 0.3))).render(POSE).rgb
    assert tinted[..., 1].astype(float).mean() < base[..., 1].astype(float).mean() - 5
    other_side = Renderer(world, CAMERA, RenderOptions(light_direction=(-1.0, -0.5, 0.3))).render(POSE).rgb
    assert not np.array_equal(other_side, base)
    shadowed = Renderer(world, CAMERA, RenderOptions(shadows=True, light_direction=(1.0, 0.5, 0.8))).render(POSE).rgb
    assert shadowed.shape == base.shape
    with pytest.raises(ConfigError):
        RenderOptions(light_direction=(0.0, 0.0, 0.0))
    with pytest.raises(ConfigError):
        RenderOptions(noise_std=-1.0)


def test_depth_of_the_floor_along_the_optical_axis() -> None:
    with SimWorld() as empty:
        build_scene(empty, SceneConfig(objects=()))
        rendering = Renderer(empty, CAMERA, RenderOptions(depth=True)).render(POSE)
    assert rendering.depth is not None and rendering.depth.dtype == np.float32
    # The optical axis meets the floor at HEIGHT / sin(pitch) along the axis: depth Z there.
    expected = HEIGHT_M / math.sin(math.radians(PITCH_DEG))
    centre = rendering.depth[36, 48]
    assert float(centre) == pytest.approx(expected, rel=0.01)
    # Rows further down see nearer floor; the sky above the horizon has no depth.
    assert rendering.depth[70, 48] < centre < rendering.depth[20, 48]
    assert np.isinf(rendering.depth[0]).all()
    fields = depth_image_fields(rendering.depth)
    assert (fields.encoding, fields.step, fields.is_bigendian) == ('32FC1', 4 * 96, 0)
    np.testing.assert_array_equal(np.frombuffer(fields.data, '<f4').reshape(72, 96), rendering.depth)


def test_panorama_backdrop_colours_each_heading() -> None:
    """The backdrop's hue follows azimuth: a camera at the centre looking along azimuth a sees hue a (HSV)
    above the horizon, whichever way it turns; without a backdrop the sky is the renderer's plain clear colour."""
    import cv2

    from actial_ros.simulation.textures import panorama_texture

    level = PinholeCamera(width=64, height=48, fov_v_deg=40.0)

    def top_hue(config: SceneConfig, azimuth_deg: float) -> tuple[float, float]:
        with SimWorld() as sim:
            build_scene(sim, config)
            pose = camera_pose_from_odometry(planar_pose(0.0, 0.0, 1.0, math.radians(azimuth_deg)), camera_mount())
            rgb = Renderer(sim, level, RenderOptions()).render(pose).rgb
        hsv = cv2.cvtColor(np.ascontiguousarray(rgb[:12]), cv2.COLOR_RGB2HSV_FULL).reshape(-1, 3).astype(float)
        angle = hsv[:, 0] * 2.0 * math.pi / 256.0
        mean = complex(float(np.sum(hsv[:, 1] * np.cos(angle))), float(np.sum(hsv[:, 1] * np.sin(angle))))
        return math.degrees(math.atan2(mean.imag, mean.real)) % 360.0, float(hsv[:, 1].mean())

    walls = SceneConfig(objects=(), floor='none', backdrop='panorama', seed=1)
    for azimuth in (30.0, 120.0, 250.0):
        hue, saturation = top_hue(walls, azimuth)
        assert saturation > 60
        assert abs((hue - azimuth + 180.0) % 360.0 - 180.0) < 12.0, (azimuth, hue)
    _, bare = top_hue(SceneConfig(objects=(), floor='none'), 30.0)
    assert bare < 10
    texture = panorama_texture(0, 256, 16)
    assert texture.shape == (16, 256, 3) and texture.dtype == np.uint8
    with pytest.raises(ConfigError):
        SceneConfig(backdrop='no-such-file.png')
    with pytest.raises(ConfigError):
        panorama_texture(0, 8, 16)


def test_noise_backdrop_has_no_colour_map_shared_between_seeds() -> None:
    """The ``noise`` backdrop paints no compass: the colour a heading sees differs from seed to seed (the
    ``panorama``'s does not), and ``backdrop_mirrored`` / ``backdrop_yaw_deg`` mirror and turn any backdrop."""
    from actial_ros.simulation.textures import noise_panorama, orient_panorama, panorama_texture

    level = PinholeCamera(width=64, height=48, fov_v_deg=40.0)

    def wall(config: SceneConfig, azimuth_deg: float) -> npt.NDArray[np.float64]:
        with SimWorld() as sim:
            build_scene(sim, config)
            pose = camera_pose_from_odometry(planar_pose(0.0, 0.0, 1.0, math.radians(azimuth_deg)), camera_mount())
            rgb = Renderer(sim, level, RenderOptions()).render(pose).rgb
        return np.asarray(rgb[:12], dtype=np.float64)

    headings = (0.0, 90.0, 180.0, 270.0)

    def colours(config: SceneConfig) -> npt.NDArray[np.float64]:
        return np.stack([wall(config, a).reshape(-1, 3).mean(axis=0) for a in headings])

    def correlation(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> float:
        return float(np.corrcoef(a.ravel() - a.mean(), b.ravel() - b.mean())[0, 1])

    panorama = [colours(SceneConfig(objects=(), floor='none', backdrop='panorama', seed=s)) for s in (1, 2)]
    noise = [colours(SceneConfig(objects=(), floor='none', backdrop='noise', seed=s)) for s in (1, 2)]
    assert correlation(*panorama) > 0.9  # the same map whatever the seed: a compass
    assert np.abs(noise[0] - noise[1]).max() > 20  # each seed its own wall
    # mirrored: heading a sees what heading -a saw; turned by 90 degrees: heading a sees what a - 90 saw
    plain = SceneConfig(objects=(), floor='none', backdrop='noise', seed=3)
    mirrored = SceneConfig(objects=(), floor='none', backdrop='noise', seed=3, backdrop_mirrored=True)
    turned = SceneConfig(objects=(), floor='none', backdrop='noise', seed=3, backdrop_yaw_deg=90.0)

    def blocks(image: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:  # 3 x 8 blocks of 4 x 8 px, mean colour
        return np.asarray(image.reshape(3, 4, 8, 8, 3).mean(axis=(1, 3)), dtype=np.float64)

    seen_mirrored, seen_plain = blocks(wall(mirrored, 60.0)), blocks(wall(plain, 60.0))
    expected = blocks(wall(plain, -60.0)[:, ::-1])
    assert np.abs(seen_mirrored - expected).mean() < 0.25 * np.abs(seen_mirrored - seen_plain).mean()
    assert np.abs(blocks(wall(turned, 150.0)) - seen_plain).mean() < 0.25 * np.abs(seen_mirrored - seen_plain).mean()
    texture = noise_panorama(0, 256, 32)
    assert texture.shape == (32, 256, 3) and texture.dtype == np.uint8
    np.testing.assert_array_equal(orient_panorama(texture, mirrored=True), texture[:, ::-1])
    np.testing.assert_array_equal(orient_panorama(texture, yaw_deg=90.0), np.roll(texture, 64, axis=1))
    assert panorama_texture(0, 256, 16).shape == (16, 256, 3)
    with pytest.raises(ConfigError):
        noise_panorama(0, 8, 16)
    with pytest.raises(ConfigError):
        SceneConfig(backdrop='noise', backdrop_yaw_deg=float('nan'))
