"""Image handling: resizing for the model, JPEG encoding and data URLs (OpenCV).

Arrays are ``(H, W, 3)`` ``uint8`` RGB unless stated otherwise.
"""

from __future__ import annotations

import base64

import cv2
import numpy as np
import numpy.typing as npt

from actial_ros.errors import ImageError

__all__ = [
    'MAX_MODEL_HEIGHT',
    'MAX_MODEL_WIDTH',
    'decode_jpeg',
    'encode_jpeg',
    'jpeg_data_url',
    'resize_max',
]

MAX_MODEL_WIDTH = 960
"""Largest image width sent to the model (pixels); the paper downscales to at most 960x540."""

MAX_MODEL_HEIGHT = 540
"""Largest image height sent to the model (pixels)."""

RgbImage = npt.NDArray[np.uint8]


def _check_rgb(image: npt.NDArray[np.generic]) -> None:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or image.size == 0:
        raise ImageError(f'expected a non-empty (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}')


def resize_max(
    image: RgbImage, max_width: int = MAX_MODEL_WIDTH, max_height: int = MAX_MODEL_HEIGHT
) -> RgbImage:
    """Downscale so the image fits in ``max_width`` x ``max_height``, keeping the aspect ratio.

    Never upscales; returns the input unchanged when it already fits. Uses area interpolation.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        max_width: largest output width in pixels (> 0).
        max_height: largest output height in pixels (> 0).

    Returns:
        ``(h, w, 3)`` uint8 with ``w <= max_width``, ``h <= max_height``, ``w/h`` within one pixel of
        the input's ratio.

    Raises:
        ImageError: not an RGB uint8 image, or non-positive limits.
    """
    _check_rgb(image)
    if max_width <= 0 or max_height <= 0:
        raise ImageError(f'resize limits must be positive, got {max_width}x{max_height}')
    height, width = image.shape[:2]
    scale = min(max_width / width, max_height / height)
    if scale >= 1.0:
        return image
    new_width = max(1, min(max_width, round(width * scale)))
    new_height = max(1, min(max_height, round(height * scale)))
    return np.ascontiguousarray(cv2.resize(image, (new_width, new_height), interpolation=cv2.INTER_AREA))


def encode_jpeg(image: RgbImage, quality: int = 90) -> bytes:
    """Encode an RGB image as baseline JPEG bytes.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        quality: JPEG quality, 1 to 100.

    Raises:
        ImageError: bad image, bad quality, or the encoder failed.
    """
    _check_rgb(image)
    if not 1 <= quality <= 100:
        raise ImageError(f'JPEG quality must be in [1, 100], got {quality}')
    ok, buffer = cv2.imencode('.jpg', cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ImageError('JPEG encoding failed')
    return bytes(buffer.tobytes())


def decode_jpeg(data: bytes) -> RgbImage:
    """Decode JPEG (or PNG) bytes to ``(H, W, 3)`` uint8 RGB.

    Raises:
        ImageError: empty, corrupt or truncated data.
    """
    if not data:
        raise ImageError('empty image data')
    if data[:2] == b'\xff\xd8' and not data.rstrip(b'\x00').endswith(b'\xff\xd9'):
        raise ImageError('truncated JPEG: no end-of-image marker')
    decoded = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if decoded is None:
        raise ImageError('could not decode image data (corrupt or unsupported format)')
    return np.ascontiguousarray(cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB))


def jpeg_data_url(
    image: RgbImage,
    *,
    quality: int = 90,
    max_width: int = MAX_MODEL_WIDTH,
    max_height: int = MAX_MODEL_HEIGHT,
) -> str:
    """``data:image/jpeg;base64,...`` URL of the image downscaled to fit ``max_width`` x ``max_height``.

    This is the form the OpenAI-compatible chat API (and vLLM) accepts in ``image_url`` parts.

    Raises:
        ImageError: see :func:`resize_max` and :func:`encode_jpeg`.
    """
    data = encode_jpeg(resize_max(image, max_width, max_height), quality)
    return 'data:image/jpeg;base64,' + base64.b64encode(data).decode('ascii')
