"""Scenes: object specs, asset resolution, seeded placement on the floor, floors and textures."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from actial_ros.errors import ConfigError
from actial_ros.simulation.scene import (
    DEFAULT_OBJECTS,
    ObjectSpec,
    SceneConfig,
    build_scene,
    parse_object_spec,
    resolve_asset,
)
from actial_ros.simulation.textures import noise_texture, write_texture

pytest.importorskip('pybullet')

from actial_ros.simulation.world import SimWorld, pybullet_data_path


def test_object_specs_parse_and_refuse() -> None:
    spec = parse_object_spec('objects/mug.urdf; size=0.3 ;x=0.4;y=-0.2;yaw=90;texture=noise')
    assert spec == ObjectSpec('objects/mug.urdf', size_m=0.3, x=0.4, y=-0.2, yaw_deg=90.0, texture='noise')
    assert parse_object_spec('duck_vhacd.urdf') == ObjectSpec('duck_vhacd.urdf')
    assert parse_object_spec('/a/b.obj;scale=0.01;z=0.1').scale == 0.01
    with pytest.raises(ConfigError, match='unknown option'):
        parse_object_spec('duck_vhacd.urdf;colour=red')
    with pytest.raises(ConfigError, match='must be a number'):
        parse_object_spec('duck_vhacd.urdf;x=left')
    with pytest.raises(ConfigError, match='needs a model'):
        parse_object_spec(';size=1')
    with pytest.raises(ConfigError, match='> 0'):
        parse_object_spec('duck_vhacd.urdf;size=-1')


def test_assets_resolve_and_bad_paths_are_refused_before_pybullet(tmp_path: Path) -> None:
    assert resolve_asset('duck_vhacd.urdf') == (pybullet_data_path() / 'duck_vhacd.urdf').resolve()
    # A directory makes pybullet abort the whole process (std::bad_alloc): refused first.
    with pytest.raises(ConfigError, match='not found'):
        resolve_asset('toys')
    with pytest.raises(ConfigError, match='not found'):
        resolve_asset('no_such_model.urdf')
    (tmp_path / 'model.stl').write_text('solid x\nendsolid x\n')
    with pytest.raises(ConfigError, match=r'\.urdf and \.obj'):
        resolve_asset(str(tmp_path / 'model.stl'))


def _placed(seed: int, **options: object) -> list[dict[str, object]]:
    with SimWorld() as world:
        scene = build_scene(world, SceneConfig(seed=seed, **options))  # type: ignore[arg-type]
        return [o.describe() for o in scene.objects]


def test_default_scene_rests_on_the_floor_apart_and_seeded() -> None:
    config = SceneConfig()
    objects = _placed(0)
    assert [o['name'] for o in objects] == [s.split(';')[0] for s in DEFAULT_OBJECTS]
    centres = []
    for obj in objects:
        low, high = np.asarray(obj['aabb_min']), np.asarray(obj['aabb_max'])
        assert low[2] == pytest.approx(0.0, abs=1e-6)  # resting on the floor
        # Normalised size: the model's own box has a largest side of object_size_m; turning it about z
        # can only widen the world box, by at most sqrt(2).
        assert config.object_size_m * 0.97 <= float(np.max(high - low)) <= config.object_size_m * 1.03 * math.sqrt(2)
        centre = (low[:2] + high[:2]) / 2.0
        assert math.hypot(*centre) <= config.placement_radius_m + 1e-6
        centres.append(centre)
    for i, a in enumerate(centres):
        for b in centres[i + 1 :]:
            assert float(np.linalg.norm(a - b)) >= config.min_separation_m - 1e-6
    assert _placed(0) == objects
    assert _placed(1) != objects


def test_explicit_placement_scale_obj_and_floors(tmp_path: Path) -> None:
    texture = write_texture(noise_texture(3, 64), tmp_path / 'floor.png')
    for floor in ('checker', 'none', str(texture)):
        with SimWorld() as world:
            scene = build_scene(
                world,
                SceneConfig(
                    floor=floor,
                    objects=(
                        'objects/mug.urdf;x=0.5;y=-0.25;yaw=0;size=0.2',
                        'cube.obj;scale=0.1;x=-0.4;y=0;z=0.05',
                        'soccerball.urdf;texture=noise',
                    ),
                ),
            )
            assert (scene.floor_body is None) == (floor == 'none')
            mug, cube, ball = scene.objects
            assert mug.centre[:2] == pytest.approx((0.5, -0.25), abs=1e-6)
            assert mug.yaw_deg == 0.0
            assert float(np.max(np.subtract(mug.aabb_max, mug.aabb_min))) == pytest.approx(0.2, rel=0.03)
            assert cube.scale == 0.1 and cube.aabb_min[2] == pytest.approx(0.05, abs=1e-6)
            assert cube.centre[:2] == pytest.approx((-0.4, 0.0), abs=1e-6)
            assert ball.aabb_min[2] == pytest.approx(0.0, abs=1e-6)
    # yaw turns the model about +z: a quarter turn swaps the box's x and y sides.
    with SimWorld() as world:
        straight, turned = build_scene(
            world, SceneConfig(objects=('objects/mug.urdf;x=0;y=0;yaw=0', 'objects/mug.urdf;x=2;y=0;yaw=90'))
        ).objects
    sides = np.subtract(straight.aabb_max, straight.aabb_min)
    assert sides[0] != pytest.approx(sides[1], abs=0.01)
    np.testing.assert_allclose(np.subtract(turned.aabb_max, turned.aabb_min), sides[[1, 0, 2]], atol=2e-3)
    with pytest.raises(ConfigError, match='floor'):
        SceneConfig(floor='marble')
    with pytest.raises(ConfigError, match='cannot place'), SimWorld() as world:
        build_scene(world, SceneConfig(placement_radius_m=0.1, min_separation_m=1.0))
    with pytest.raises(ConfigError, match='not found'), SimWorld() as world:
        build_scene(world, SceneConfig(objects=('duck_vhacd.urdf;texture=/nope.png',)))


def test_noise_textures_are_seeded_and_detailed(tmp_path: Path) -> None:
    a, b, c = noise_texture(5, 128), noise_texture(5, 128), noise_texture(6, 128)
    assert a.shape == (128, 128, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert np.abs(a.astype(int) - c.astype(int)).mean() > 20
    # High-frequency content: neighbouring texels differ a lot somewhere (corners for feature detectors).
    assert np.abs(np.diff(a.astype(int), axis=1)).max() > 100
    path = write_texture(a, tmp_path / 'sub' / 't.png')
    assert path.is_file()
    with pytest.raises(ConfigError):
        noise_texture(0, 4)
    with pytest.raises(ConfigError):
        write_texture(a[..., 0], tmp_path / 'x.png')
