"""Scenes: a textured floor and several objects from ``pybullet_data`` (or any URDF/OBJ), placed from a
seed, static (fixed bases), resting on the floor.

Object specs are strings, so that they fit a ROS string-array parameter::

    duck_vhacd.urdf                                 # a pybullet_data model, placed and turned by the seed
    objects/mug.urdf;size=0.3;x=0.4;y=-0.2;yaw=90   # largest extent 0.3 m, at (0.4, -0.2), turned 90 deg
    /path/to/model.obj;scale=0.01;texture=noise     # any OBJ (or URDF), scaled, with a generated texture

Keys: ``size`` (metres, the largest side of the model's own axis-aligned bounding box after scaling,
before it is turned; default the scene's ``object_size_m``),
``scale`` (an explicit scale; overrides ``size``), ``x``, ``y`` (metres; default: seeded placement in a
disc of ``placement_radius_m`` around the origin, kept ``min_separation_m`` apart), ``z`` (the lowest
point; default 0, resting on the floor), ``yaw`` (degrees about +z; default seeded), ``texture``
(``noise`` for a seeded procedural texture, or an image path; default the model's own look).

A backdrop (``backdrop='panorama'`` or an image path) is a vertical cylinder of radius ``backdrop_radius_m``
around the origin, standing on the floor, textured on its inside with a panorama wrapped once around it
(column ``u`` of the image at azimuth ``360 * u / width`` degrees, counter-clockwise about +z from +x of
``odom``): distant walls, as real rooms have, that shift across the image when the camera turns and
hardly when it moves a little. ``panorama`` is :func:`actial_ros.simulation.textures.panorama_texture`
(hue and brightness follow azimuth, the same map for every seed: a painted compass that tells a turn's direction
from the wall's colour alone); ``noise`` is :func:`actial_ros.simulation.textures.noise_panorama` (each seed its
own wall, no shared map). ``backdrop_yaw_deg`` turns it and ``backdrop_mirrored`` mirrors it (the direction and
phase of any colour map, per run or as a control). It has no collision shape.

Placement uses the objects' collision bounding boxes (pybullet ``getAABB``); for a model whose collision
shape differs from its look (``table/table.urdf``: only the top collides) give ``z`` explicitly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from actial_ros.errors import ConfigError
from actial_ros.simulation.textures import (
    noise_panorama,
    noise_texture,
    orient_panorama,
    panorama_texture,
    write_texture,
)
from actial_ros.simulation.world import SimWorld, pybullet_data_path

__all__ = [
    'BACKDROP_KINDS',
    'DEFAULT_OBJECTS',
    'FLOOR_KINDS',
    'ObjectSpec',
    'PlacedObject',
    'Scene',
    'SceneConfig',
    'build_scene',
    'parse_object_spec',
    'resolve_asset',
]

DEFAULT_OBJECTS: tuple[str, ...] = (
    'duck_vhacd.urdf;texture=noise',
    'teddy_vhacd.urdf',
    'objects/mug.urdf',
    'soccerball.urdf',
    'random_urdfs/002/002.urdf',
)
"""The default scene's objects (all in ``pybullet_data``)."""

FLOOR_KINDS = ('noise', 'checker', 'none')
"""Floor choices besides an image path: a seeded noise texture, pybullet's checker plane, no floor."""

BACKDROP_KINDS = ('none', 'panorama', 'noise')
"""Backdrop choices besides an image path: none, a seeded panorama whose hue and brightness follow azimuth (the
same map for every seed: a painted compass), or a seeded noise panorama (no azimuth-to-colour map shared
between seeds)."""

_BACKDROP_SEGMENTS = 96

FloatArray = npt.NDArray[np.float64]

_SPEC_KEYS = {'size', 'scale', 'x', 'y', 'z', 'yaw', 'texture'}


@dataclass(frozen=True)
class ObjectSpec:
    """One object to load; ``None`` fields take the scene's defaults (see the module doc)."""

    path: str
    size_m: float | None = None
    scale: float | None = None
    x: float | None = None
    y: float | None = None
    z: float | None = None
    yaw_deg: float | None = None
    texture: str | None = None

    def __post_init__(self) -> None:
        if not self.path:
            raise ConfigError('an object spec needs a model path')
        for name in ('size_m', 'scale'):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ConfigError(f'object {self.path}: {name} must be > 0, got {value}')
        for name in ('x', 'y', 'z', 'yaw_deg'):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ConfigError(f'object {self.path}: {name} must be finite, got {value}')


def parse_object_spec(spec: str) -> ObjectSpec:
    """Parse ``PATH[;key=value]...`` (keys: size, scale, x, y, z, yaw, texture).

    Raises:
        ConfigError: empty path, an unknown key, or a value that is not a number.
    """
    parts = [part.strip() for part in str(spec).split(';')]
    path, options = parts[0], parts[1:]
    values: dict[str, Any] = {}
    for option in options:
        if not option:
            continue
        key, sep, value = option.partition('=')
        key = key.strip().lower()
        if not sep or key not in _SPEC_KEYS:
            raise ConfigError(f'object spec {spec!r}: unknown option {option!r}; keys: {sorted(_SPEC_KEYS)}')
        if key == 'texture':
            values['texture'] = value.strip()
            continue
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(f'object spec {spec!r}: {key} must be a number, got {value!r}') from None
        values[{'size': 'size_m', 'yaw': 'yaw_deg'}.get(key, key)] = number
    return ObjectSpec(path=path, **values)


def resolve_asset(path: str) -> Path:
    """An existing model file: ``path`` as given, else relative to ``pybullet_data``.

    Raises:
        ConfigError: not found, a directory, or not a ``.urdf`` / ``.obj`` file. (pybullet aborts the
            whole process on some bad paths, e.g. a directory, so they are refused here first.)
    """
    candidates = [Path(path).expanduser()]
    if not candidates[0].is_absolute():
        candidates.append(pybullet_data_path() / path)
    for candidate in candidates:
        if candidate.is_file():
            if candidate.suffix.lower() not in ('.urdf', '.obj'):
                raise ConfigError(f'model {path!r}: only .urdf and .obj files are supported')
            return candidate.resolve()
    raise ConfigError(f'model {path!r} not found (as a path, or in pybullet_data {pybullet_data_path()})')


@dataclass(frozen=True)
class SceneConfig:
    """What to build.

    Attributes:
        objects: object specs (strings as in the module doc, or :class:`ObjectSpec`).
        floor: ``noise`` (seeded procedural texture), ``checker`` (pybullet's ``plane.urdf``), ``none``,
            or the path of an image used as the floor texture.
        floor_size_m: side of the square floor for ``noise`` or an image (centred on the origin).
        object_size_m: default largest extent of an object (metres).
        placement_radius_m: objects without ``x``/``y`` are placed in this disc around the origin.
        min_separation_m: smallest distance between the centres of placed objects.
        seed: placement, turning and texture seed.
        backdrop: ``none``, ``panorama``, ``noise`` or the path of a panorama image (see the module doc).
        backdrop_radius_m: radius of the backdrop cylinder around the origin (metres).
        backdrop_height_m: its height above the floor (metres).
        backdrop_yaw_deg: the backdrop turned by this many degrees about +z (counter-clockwise from above).
        backdrop_mirrored: the backdrop's image mirrored left-right before it is turned (a control: a model that
            reads the direction of a turn from the wall's colour map answers the opposite way).
    """

    objects: tuple[ObjectSpec | str, ...] = DEFAULT_OBJECTS
    floor: str = 'noise'
    floor_size_m: float = 12.0
    object_size_m: float = 0.35
    placement_radius_m: float = 0.6
    min_separation_m: float = 0.35
    seed: int = 0
    backdrop: str = 'none'
    backdrop_radius_m: float = 5.5
    backdrop_height_m: float = 4.0
    backdrop_yaw_deg: float = 0.0
    backdrop_mirrored: bool = False

    def __post_init__(self) -> None:
        floor = self.floor.strip()
        if floor not in FLOOR_KINDS and not Path(floor).expanduser().is_file():
            raise ConfigError(f'floor must be one of {FLOOR_KINDS} or an image file, got {self.floor!r}')
        backdrop = self.backdrop.strip()
        if backdrop not in BACKDROP_KINDS and not Path(backdrop).expanduser().is_file():
            raise ConfigError(f'backdrop must be one of {BACKDROP_KINDS} or an image file, got {self.backdrop!r}')
        if not math.isfinite(self.backdrop_yaw_deg):
            raise ConfigError(f'backdrop_yaw_deg must be finite, got {self.backdrop_yaw_deg}')
        for name in ('floor_size_m', 'object_size_m', 'backdrop_radius_m', 'backdrop_height_m'):
            if not getattr(self, name) > 0:
                raise ConfigError(f'{name} must be > 0, got {getattr(self, name)}')
        if not (self.placement_radius_m >= 0 and self.min_separation_m >= 0):
            raise ConfigError('placement_radius_m and min_separation_m must be >= 0')

    def specs(self) -> tuple[ObjectSpec, ...]:
        """The objects as :class:`ObjectSpec` (strings parsed)."""
        return tuple(o if isinstance(o, ObjectSpec) else parse_object_spec(o) for o in self.objects)


@dataclass(frozen=True)
class PlacedObject:
    """An object in the built scene (world frame = ``odom``).

    Attributes:
        name: the spec's path as given.
        path: the resolved model file.
        body_id: pybullet body id.
        scale: the global scale applied.
        yaw_deg: turn about +z.
        aabb_min, aabb_max: world bounding box after placement (collision shapes).
    """

    name: str
    path: str
    body_id: int
    scale: float
    yaw_deg: float
    aabb_min: tuple[float, float, float]
    aabb_max: tuple[float, float, float]

    @property
    def centre(self) -> tuple[float, float, float]:
        """Centre of the bounding box."""
        lo, hi = np.asarray(self.aabb_min), np.asarray(self.aabb_max)
        x, y, z = ((lo + hi) / 2.0).tolist()
        return float(x), float(y), float(z)

    def describe(self) -> dict[str, Any]:
        """JSON-ready description."""
        return {
            'name': self.name,
            'path': self.path,
            'scale': self.scale,
            'yaw_deg': self.yaw_deg,
            'aabb_min': list(self.aabb_min),
            'aabb_max': list(self.aabb_max),
            'centre': list(self.centre),
        }


@dataclass(frozen=True)
class Scene:
    """A built scene: its configuration, the floor body (or ``None``) and the placed objects."""

    config: SceneConfig
    floor_body: int | None
    objects: tuple[PlacedObject, ...] = field(default=())
    backdrop_body: int | None = None

    def describe(self) -> dict[str, Any]:
        """JSON-ready description (for the pose record)."""
        return {
            'floor': self.config.floor,
            'floor_size_m': self.config.floor_size_m,
            'backdrop': self.config.backdrop,
            'backdrop_radius_m': self.config.backdrop_radius_m,
            'backdrop_height_m': self.config.backdrop_height_m,
            'backdrop_yaw_deg': self.config.backdrop_yaw_deg,
            'backdrop_mirrored': self.config.backdrop_mirrored,
            'seed': self.config.seed,
            'objects': [o.describe() for o in self.objects],
        }


def build_scene(world: SimWorld, config: SceneConfig) -> Scene:
    """Load the floor and objects of ``config`` into ``world``.

    Raises:
        ConfigError: a model that cannot be found or loaded, an unreadable texture, or objects that
            cannot be placed ``min_separation_m`` apart within ``placement_radius_m``.
    """
    rng = np.random.default_rng([int(config.seed), 0x5CE7E])
    floor = _build_floor(world, config)
    backdrop = _build_backdrop(world, config)
    placed: list[PlacedObject] = []
    taken: list[tuple[float, float]] = [(s.x, s.y) for s in config.specs() if s.x is not None and s.y is not None]
    for index, spec in enumerate(config.specs()):
        yaw = spec.yaw_deg if spec.yaw_deg is not None else float(rng.uniform(-180.0, 180.0))
        if spec.x is None or spec.y is None:
            x, y = _free_spot(rng, taken, config, spec)
            taken.append((x, y))
        else:
            x, y = spec.x, spec.y
        placed.append(_load_object(world, spec, config, index, x, y, yaw))
    return Scene(config=config, floor_body=floor, objects=tuple(placed), backdrop_body=backdrop)


def _free_spot(
    rng: np.random.Generator, taken: Sequence[tuple[float, float]], config: SceneConfig, spec: ObjectSpec
) -> tuple[float, float]:
    for _ in range(500):
        radius = config.placement_radius_m * math.sqrt(float(rng.uniform()))
        angle = float(rng.uniform(0.0, 2.0 * math.pi))
        x = radius * math.cos(angle) if spec.x is None else spec.x
        y = radius * math.sin(angle) if spec.y is None else spec.y
        if all(math.hypot(x - tx, y - ty) >= config.min_separation_m for tx, ty in taken):
            return x, y
    raise ConfigError(
        f'cannot place {spec.path} {config.min_separation_m} m from the other objects within '
        f'{config.placement_radius_m} m; raise placement_radius_m or lower min_separation_m'
    )


def _texture_id(world: SimWorld, texture: str, seed: int, name: str, size: int) -> int:
    if texture == 'noise':
        path = write_texture(noise_texture(seed, size), world.scratch / f'{name}.png')
    else:
        path = Path(texture).expanduser()
        if not path.is_file():
            raise ConfigError(f'texture {texture!r} not found')
    texture_id = int(world.call('loadTexture', str(path)))
    if texture_id < 0:
        raise ConfigError(f'pybullet could not load texture {path}')
    return texture_id


def _build_floor(world: SimWorld, config: SceneConfig) -> int | None:
    floor = config.floor.strip()
    if floor == 'none':
        return None
    if floor == 'checker':
        return int(world.call('loadURDF', str(pybullet_data_path() / 'plane.urdf'), useFixedBase=True))
    half = config.floor_size_m / 2.0
    visual = world.call(
        'createVisualShape',
        world.pb.GEOM_MESH,
        vertices=[[-half, -half, 0.0], [half, -half, 0.0], [half, half, 0.0], [-half, half, 0.0]],
        indices=[0, 1, 2, 0, 2, 3],
        uvs=[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]],
        normals=[[0.0, 0.0, 1.0]] * 4,
    )
    body = int(world.call('createMultiBody', baseMass=0.0, baseVisualShapeIndex=visual))
    texture = _texture_id(world, floor, int(config.seed), 'floor', 1024)
    world.call('changeVisualShape', body, -1, textureUniqueId=texture, rgbaColor=[1.0, 1.0, 1.0, 1.0])
    return body


def _build_backdrop(world: SimWorld, config: SceneConfig) -> int | None:
    backdrop = config.backdrop.strip()
    if backdrop == 'none':
        return None
    image: npt.NDArray[np.uint8]
    if backdrop == 'panorama':
        image = panorama_texture(int(config.seed))
    elif backdrop == 'noise':
        image = noise_panorama(int(config.seed))
    else:
        loaded = cv2.imread(str(Path(backdrop).expanduser()), cv2.IMREAD_COLOR)
        if loaded is None:
            raise ConfigError(f'could not read backdrop image {backdrop}')
        image = np.asarray(cv2.cvtColor(loaded, cv2.COLOR_BGR2RGB), dtype=np.uint8)
    image = orient_panorama(image, yaw_deg=config.backdrop_yaw_deg, mirrored=config.backdrop_mirrored)
    path = write_texture(image, world.scratch / 'backdrop.png')
    texture = int(world.call('loadTexture', str(path)))
    if texture < 0:
        raise ConfigError(f'pybullet could not load backdrop texture {path}')
    radius, height = config.backdrop_radius_m, config.backdrop_height_m
    vertices: list[list[float]] = []
    uvs: list[list[float]] = []
    normals: list[list[float]] = []
    indices: list[int] = []
    for k in range(_BACKDROP_SEGMENTS + 1):
        azimuth = 2.0 * math.pi * k / _BACKDROP_SEGMENTS
        x, y = radius * math.cos(azimuth), radius * math.sin(azimuth)
        u = k / _BACKDROP_SEGMENTS
        vertices += [[x, y, 0.0], [x, y, height]]
        uvs += [[u, 1.0], [u, 0.0]]
        normals += [[0.0, 0.0, 1.0]] * 2  # lit alike from every side: the panorama's own brightness shows
        if k:
            a, b, c, d = 2 * k - 2, 2 * k - 1, 2 * k, 2 * k + 1  # bottom/top of the previous and this column
            indices += [a, d, c, a, b, d]  # wound to face the axis
    visual = world.call(
        'createVisualShape', world.pb.GEOM_MESH, vertices=vertices, indices=indices, uvs=uvs, normals=normals
    )
    body = int(world.call('createMultiBody', baseMass=0.0, baseVisualShapeIndex=visual))
    world.call('changeVisualShape', body, -1, textureUniqueId=texture, rgbaColor=[1.0, 1.0, 1.0, 1.0])
    return body


def _load_raw(world: SimWorld, path: Path, scale: float) -> int:
    pb = world.pb
    try:
        if path.suffix.lower() == '.urdf':
            return int(world.call('loadURDF', str(path), useFixedBase=True, globalScaling=scale))
        mesh_scale = [scale] * 3
        visual = world.call('createVisualShape', pb.GEOM_MESH, fileName=str(path), meshScale=mesh_scale)
        collision = world.call('createCollisionShape', pb.GEOM_MESH, fileName=str(path), meshScale=mesh_scale)
        return int(
            world.call('createMultiBody', baseMass=0.0, baseCollisionShapeIndex=collision, baseVisualShapeIndex=visual)
        )
    except pb.error as error:
        raise ConfigError(f'pybullet could not load {path}: {error}') from None


def _aabb(world: SimWorld, body: int) -> tuple[FloatArray, FloatArray]:
    lows, highs = [], []
    for link in range(-1, int(world.call('getNumJoints', body))):
        lo, hi = world.call('getAABB', body, link)
        lows.append(lo)
        highs.append(hi)
    return np.min(np.asarray(lows, dtype=np.float64), axis=0), np.max(np.asarray(highs, dtype=np.float64), axis=0)


def _load_object(
    world: SimWorld, spec: ObjectSpec, config: SceneConfig, index: int, x: float, y: float, yaw_deg: float
) -> PlacedObject:
    path = resolve_asset(spec.path)
    scale = spec.scale
    if scale is None:
        probe = _load_raw(world, path, 1.0)
        lo, hi = _aabb(world, probe)
        world.call('removeBody', probe)
        extent = float(np.max(hi - lo))
        if not extent > 0:
            raise ConfigError(f'model {spec.path} has an empty bounding box; give scale= explicitly')
        scale = (spec.size_m or config.object_size_m) / extent
    body = _load_raw(world, path, scale)
    turn = world.call('getQuaternionFromEuler', [0.0, 0.0, math.radians(yaw_deg)])
    position, original = world.call('getBasePositionAndOrientation', body)
    _, quaternion = world.call('multiplyTransforms', [0.0, 0.0, 0.0], turn, [0.0, 0.0, 0.0], original)
    world.call('resetBasePositionAndOrientation', body, position, quaternion)
    lo, hi = _aabb(world, body)
    # Shift so that the box is centred on (x, y) and its lowest point is at z (default: on the floor).
    target_z = 0.0 if spec.z is None else spec.z
    shift = np.array([x - (lo[0] + hi[0]) / 2.0, y - (lo[1] + hi[1]) / 2.0, target_z - lo[2]])
    world.call('resetBasePositionAndOrientation', body, (np.asarray(position) + shift).tolist(), quaternion)
    if spec.texture:
        texture = _texture_id(world, spec.texture, int(config.seed) * 1000 + index + 1, f'object_{index}', 256)
        for link in range(-1, int(world.call('getNumJoints', body))):
            world.call('changeVisualShape', body, link, textureUniqueId=texture, rgbaColor=[1.0, 1.0, 1.0, 1.0])
    lo, hi = _aabb(world, body)
    return PlacedObject(
        name=spec.path,
        path=str(path),
        body_id=body,
        scale=float(scale),
        yaw_deg=float(yaw_deg),
        aabb_min=(float(lo[0]), float(lo[1]), float(lo[2])),
        aabb_max=(float(hi[0]), float(hi[1]), float(hi[2])),
    )
