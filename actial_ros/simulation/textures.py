"""Procedural, seeded textures: multi-scale colour noise under many small high-contrast shapes, which
gives feature detectors (SIFT) plenty of unique, non-repeating detail, unlike a checkerboard.
Pure numpy + OpenCV (no pybullet).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from actial_ros.errors import ConfigError

__all__ = ['noise_panorama', 'noise_texture', 'orient_panorama', 'panorama_texture', 'write_texture']


def noise_texture(seed: int, size: int = 512, *, shapes_per_kilopixel: float = 8.0) -> npt.NDArray[np.uint8]:
    """A ``(size, size, 3)`` uint8 RGB texture; the same ``seed`` gives the same texture.

    The background sums seven octaves of random colour grids (4x4 cells, then twice as fine each time
    up to a quarter of ``size``, amplitude x0.85 per octave, cubic upsampling); on top,
    ``shapes_per_kilopixel`` random discs, rectangles and triangles per 1000 texels, 2 to ``size / 80``
    texels across, in random colours, supply corners and blobs at many scales.

    Raises:
        ConfigError: ``size`` < 16 or a negative shape density.
    """
    if size < 16 or not shapes_per_kilopixel >= 0:
        raise ConfigError(f'texture size must be >= 16 and the shape density >= 0, got {size}, {shapes_per_kilopixel}')
    rng = np.random.default_rng([int(seed), 0x7E47])
    image = np.zeros((size, size, 3), dtype=np.float64)
    amplitude, total = 1.0, 0.0
    for octave in range(7):
        cells = min(size // 4, 4 * 2**octave)
        grid = rng.uniform(0.0, 1.0, size=(cells, cells, 3)).astype(np.float32)
        image += amplitude * cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)
        total += amplitude
        amplitude *= 0.85
    image = np.clip(image / total, 0.0, 1.0)
    image = (image - image.min()) / max(float(image.max() - image.min()), 1e-9)
    out = np.ascontiguousarray((image * 255.0).astype(np.uint8))
    largest = max(3, size // 80)
    for _ in range(int(shapes_per_kilopixel * size * size / 1000)):
        x, y = int(rng.integers(0, size)), int(rng.integers(0, size))
        radius = int(rng.integers(2, largest))
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        shape = int(rng.integers(0, 3))
        if shape == 0:
            cv2.circle(out, (x, y), radius, colour, thickness=-1, lineType=cv2.LINE_AA)
        elif shape == 1:
            cv2.rectangle(out, (x - radius, y - radius // 2), (x + radius, y + radius // 2), colour, thickness=-1)
        else:
            corners = (np.array([x, y]) + rng.integers(-radius, radius + 1, size=(3, 2))).astype(np.int32)
            cv2.fillPoly(out, [corners], colour, lineType=cv2.LINE_AA)
    return out


def panorama_texture(seed: int, width: int = 2048, height: int = 256) -> npt.NDArray[np.uint8]:
    """A ``(height, width, 3)`` uint8 RGB panorama to wrap once around the scene, so that every heading sees its
    own colour and brightness, as the walls of a room lit from one side differ.

    Column ``u`` (0 at the left edge, ``width`` at the right) gets hue ``360 * u / width`` degrees (HSV,
    saturation 0.55: a closed colour circle) and a brightness that rises with ``u`` from 0.3 to 1.0 (one seam,
    where the last column meets the first: the edge of the window). The ramp matters for learning from
    scratch: on a closed colour circle no feature of the two images is correlated, to first order, with the
    direction the camera turned (the direction is the sign of a cross product), so gradient descent has
    nothing to start from; a brightness that rises with azimuth gives it that first-order cue (see
    docs/training.md, "Learning from scratch"). A seeded :func:`noise_texture` (tiled, ``height`` rows)
    modulates the brightness by up to 40 % for detail at many scales (feature matching).

    Raises:
        ConfigError: ``height`` < 16 or ``width`` < ``height``.
    """
    if height < 16 or width < height:
        raise ConfigError(f'panorama size must have height >= 16 and width >= height, got {width}x{height}')
    detail = noise_texture(seed, height)
    tiles = -(-width // height)
    grey = cv2.cvtColor(np.concatenate([detail] * tiles, axis=1)[:, :width], cv2.COLOR_RGB2GRAY)
    u = np.arange(width, dtype=np.float32) / width
    hsv = np.empty((height, width, 3), dtype=np.float32)
    hsv[..., 0] = (360.0 * u)[None, :]
    hsv[..., 1] = 0.55
    hsv[..., 2] = (0.3 + 0.7 * u)[None, :] * (0.6 + 0.4 * grey.astype(np.float32) / 255.0)
    rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    return np.ascontiguousarray(np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8))


def noise_panorama(seed: int, width: int = 1024, height: int = 128) -> npt.NDArray[np.uint8]:
    """A ``(height, width, 3)`` uint8 RGB panorama of seeded :func:`noise_texture` detail with NO map from
    azimuth to colour or brightness shared between seeds: the top ``height`` rows of a ``width``-square noise
    texture. Each seed is its own room; what a camera's turn does to it (the walls shift across the image) is
    the same for every seed, what colour lies in which direction is not. Made so that a model trained on many
    seeds cannot read the direction of a turn from the wall's colour (the ``panorama`` ramp's painted compass).

    Raises:
        ConfigError: ``height`` < 16 or ``width`` < ``height``.
    """
    if height < 16 or width < height:
        raise ConfigError(f'panorama size must have height >= 16 and width >= height, got {width}x{height}')
    return np.ascontiguousarray(noise_texture(seed, width)[:height])


def orient_panorama(
    image: npt.NDArray[np.uint8], *, yaw_deg: float = 0.0, mirrored: bool = False
) -> npt.NDArray[np.uint8]:
    """The panorama ``image`` ``(H, W, 3)`` turned by ``yaw_deg`` about +z (columns rolled: what was at azimuth
    ``a`` is then at ``a + yaw_deg``) after an optional left-right mirror (azimuth ``a`` gets what was at
    ``-a``): the direction and phase of any azimuth-to-colour map, drawn per run or flipped for a control.
    Returns a new array; the input is not changed."""
    out = image[:, ::-1] if mirrored else image
    shift = round(float(yaw_deg) / 360.0 * out.shape[1]) % out.shape[1]
    return np.ascontiguousarray(np.roll(out, shift, axis=1))


def write_texture(image: npt.NDArray[np.uint8], path: str | Path) -> Path:
    """Write an RGB texture as PNG (what pybullet's ``loadTexture`` reads); returns the path.

    Raises:
        ConfigError: the image is not ``(H, W, 3)`` uint8 or cannot be written.
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ConfigError(f'texture must be (H, W, 3) uint8, got {image.shape} {image.dtype}')
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(target), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise ConfigError(f'could not write texture {target}')
    return target
