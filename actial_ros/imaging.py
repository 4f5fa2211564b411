"""Image handling: ROS image messages, resizing for the model, JPEG/PNG coding and data URLs.

Arrays are ``(H, W, 3)`` ``uint8`` RGB (C-contiguous) unless stated otherwise.

The message conversions are duck-typed on the attributes of ``sensor_msgs/Image`` (``height``,
``width``, ``encoding``, ``is_bigendian``, ``step``, ``data``) and ``sensor_msgs/CompressedImage``
(``format``, ``data``), so this module never imports rclpy or sensor_msgs: real rclpy messages, rosbags
messages and plain stand-ins (``types.SimpleNamespace``) all work. Only numpy and OpenCV do the work.

Why one module of about 600 lines: every path here (message decoding, resizing, JPEG coding, data URLs)
shares the same array contract and the same encoding table; about half of the lines are the docstrings and
checks that make bad input a clear :class:`~actial_ros.errors.ImageError`.
"""

from __future__ import annotations

import array
import base64
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol, TypeAlias

import cv2
import numpy as np
import numpy.typing as npt

from actial_ros.errors import ImageError

__all__ = [
    'COMPRESSED_FORMATS',
    'IMAGE_ENCODINGS',
    'MAX_MODEL_HEIGHT',
    'MAX_MODEL_WIDTH',
    'BytesLike',
    'CompressedImageLike',
    'ImageFields',
    'ImageMsgLike',
    'compressed_msg_to_rgb',
    'decode_jpeg',
    'encode_jpeg',
    'encoded_jpeg_data_url',
    'fit_size',
    'image_msg_to_rgb',
    'jpeg_data_url',
    'load_image_file',
    'resize_max',
    'rgb_to_compressed',
    'rgb_to_image_fields',
]

MAX_MODEL_WIDTH = 960
"""Largest image width sent to the model (pixels); the paper downscales to at most 960x540."""

MAX_MODEL_HEIGHT = 540
"""Largest image height sent to the model (pixels)."""

RgbImage = npt.NDArray[np.uint8]

BytesLike: TypeAlias = 'bytes | bytearray | memoryview | array.array[int] | npt.NDArray[np.uint8] | Sequence[int]'
"""Image data: anything with the buffer protocol, or a sequence of ints in [0, 255] (copied, slow)."""

_IMREAD_COLOR_RGB: Final[int | None] = getattr(cv2, 'IMREAD_COLOR_RGB', None)  # OpenCV >= 4.11


class ImageMsgLike(Protocol):
    """The attributes of a ``sensor_msgs/Image`` that :func:`image_msg_to_rgb` reads."""

    @property
    def height(self) -> int: ...
    @property
    def width(self) -> int: ...
    @property
    def encoding(self) -> str: ...
    @property
    def is_bigendian(self) -> int: ...
    @property
    def step(self) -> int: ...
    @property
    def data(self) -> Any: ...


class CompressedImageLike(Protocol):
    """The attributes of a ``sensor_msgs/CompressedImage`` that :func:`compressed_msg_to_rgb` reads."""

    @property
    def format(self) -> str: ...
    @property
    def data(self) -> Any: ...


# ----------------------------------------------------------------------------------------------------
# Encodings
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Layout:
    channels: int  # values per pixel in the message (2 for packed YUV 4:2:2)
    depth: int  # bytes per value: 1 or 2
    to_rgb: int | None  # cv2.cvtColor code from the (8-bit) message layout to RGB; None: already RGB
    from_rgb: int | None  # cv2.cvtColor code from RGB to the message layout; None: already RGB
    writable: bool = True  # rgb_to_image_fields supports it

    @property
    def bytes_per_pixel(self) -> int:
        return self.channels * self.depth


_LAYOUTS: Final[dict[str, _Layout]] = {
    'rgb8': _Layout(3, 1, None, None),
    'bgr8': _Layout(3, 1, cv2.COLOR_BGR2RGB, cv2.COLOR_RGB2BGR),
    'rgba8': _Layout(4, 1, cv2.COLOR_RGBA2RGB, cv2.COLOR_RGB2RGBA),
    'bgra8': _Layout(4, 1, cv2.COLOR_BGRA2RGB, cv2.COLOR_RGB2BGRA),
    'mono8': _Layout(1, 1, cv2.COLOR_GRAY2RGB, cv2.COLOR_RGB2GRAY),
    'rgb16': _Layout(3, 2, None, None),
    'bgr16': _Layout(3, 2, cv2.COLOR_BGR2RGB, cv2.COLOR_RGB2BGR),
    'rgba16': _Layout(4, 2, cv2.COLOR_RGBA2RGB, cv2.COLOR_RGB2RGBA),
    'bgra16': _Layout(4, 2, cv2.COLOR_BGRA2RGB, cv2.COLOR_RGB2BGRA),
    'mono16': _Layout(1, 2, cv2.COLOR_GRAY2RGB, cv2.COLOR_RGB2GRAY),
    # Packed YUV 4:2:2 (BT.601, limited range as OpenCV decodes it); read-only.
    'yuv422': _Layout(2, 1, cv2.COLOR_YUV2RGB_UYVY, None, writable=False),
    'yuv422_yuy2': _Layout(2, 1, cv2.COLOR_YUV2RGB_YUYV, None, writable=False),
    # Raw Bayer mosaics (REP 104 names: the colours of the top-left 2x2 block, row by row), demosaiced
    # by OpenCV's bilinear interpolation; read-only. OpenCV names a pattern by the second row's second
    # and third pixels, so ROS rggb is OpenCV's BG (as cv_bridge maps them).
    **{
        f'bayer_{pattern}{bits}': _Layout(1, bits // 8, code, None, writable=False)
        for pattern, code in (
            ('rggb', cv2.COLOR_BayerBG2RGB),
            ('bggr', cv2.COLOR_BayerRG2RGB),
            ('gbrg', cv2.COLOR_BayerGR2RGB),
            ('grbg', cv2.COLOR_BayerGB2RGB),
        )
        for bits in (8, 16)
    },
}

# Generic OpenCV-style names, with cv_bridge's channel order for them (3 channels: BGR, 4: BGRA).
_ALIAS_SPELLINGS: Final[tuple[tuple[str, str], ...]] = (
    ('8UC1', 'mono8'),
    ('8UC3', 'bgr8'),
    ('8UC4', 'bgra8'),
    ('16UC1', 'mono16'),
    ('16UC3', 'bgr16'),
    ('16UC4', 'bgra16'),
    ('uyvy', 'yuv422'),
    ('yuyv', 'yuv422_yuy2'),
)
_ALIASES: Final[dict[str, str]] = {alias.lower(): target for alias, target in _ALIAS_SPELLINGS}
_CANONICAL: Final[dict[str, str]] = {
    **{name: name for name in _LAYOUTS},
    **{alias.lower(): alias for alias, _ in _ALIAS_SPELLINGS},
}

IMAGE_ENCODINGS: Final[tuple[str, ...]] = tuple(sorted(_CANONICAL.values()))
"""Every ``sensor_msgs/Image`` encoding :func:`image_msg_to_rgb` reads (matched case-insensitively)."""

COMPRESSED_FORMATS: Final[tuple[str, ...]] = ('jpeg', 'png')
"""Codecs of ``sensor_msgs/CompressedImage`` this module reads and writes."""


def _layout(encoding: object) -> tuple[str, _Layout]:
    if not isinstance(encoding, str):
        raise ImageError(f'image encoding must be a string, got {type(encoding).__name__}')
    key = encoding.strip().lower()
    key = _ALIASES.get(key, key)
    layout = _LAYOUTS.get(key)
    if layout is None:
        raise ImageError(f'unsupported image encoding {encoding!r}; supported: {", ".join(IMAGE_ENCODINGS)}')
    return key, layout


# ----------------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------------


def _check_rgb(image: npt.NDArray[np.generic]) -> None:
    if (
        not isinstance(image, np.ndarray)
        or image.dtype != np.uint8
        or image.ndim != 3
        or image.shape[2] != 3
        or image.size == 0
    ):
        shape = getattr(image, 'shape', None)
        dtype = getattr(image, 'dtype', type(image).__name__)
        raise ImageError(f'expected a non-empty (H, W, 3) uint8 RGB image, got {shape} {dtype}')


def _byte_array(data: BytesLike | object, what: str = 'image data') -> npt.NDArray[np.uint8]:
    """1-D uint8 view of a bytes-like object (zero-copy for contiguous buffers), or a copy of a list.

    Accepts anything with the buffer protocol (bytes, bytearray, memoryview, ``array.array`` as rclpy
    gives, numpy arrays; the raw bytes are used whatever the item type) and lists/tuples of ints in
    [0, 255] (copied; slow, for hand-made messages only).
    """
    if isinstance(data, (list, tuple)):
        try:
            return np.frombuffer(bytes(data), dtype=np.uint8)
        except (TypeError, ValueError) as exc:
            raise ImageError(f'{what} given as a sequence must hold ints in [0, 255]: {exc}') from None
    if isinstance(data, str):
        raise ImageError(f'{what} must be bytes-like, got str')
    try:
        view = memoryview(data)  # type: ignore[arg-type]
    except TypeError:
        raise ImageError(
            f'{what} must be bytes-like (bytes, bytearray, memoryview, array.array, ndarray) '
            f'or a list of ints, got {type(data).__name__}'
        ) from None
    if not view.c_contiguous:
        view = memoryview(view.tobytes())
    if view.nbytes == 0:
        return np.empty(0, dtype=np.uint8)
    return np.frombuffer(view.cast('B'), dtype=np.uint8)


def _attr(msg: object, name: str, kind: str) -> Any:
    try:
        return getattr(msg, name)
    except AttributeError:
        raise ImageError(f'not a {kind}-like message: no attribute {name!r}') from None


def _dimension(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ImageError(f'image {name} must be an integer, got {value!r}')
    return int(value)


# ----------------------------------------------------------------------------------------------------
# sensor_msgs/Image
# ----------------------------------------------------------------------------------------------------


def image_msg_to_rgb(msg: ImageMsgLike) -> RgbImage:
    """Convert a ``sensor_msgs/Image``-like message to an ``(H, W, 3)`` uint8 RGB array.

    Reads ``height``, ``width``, ``encoding``, ``is_bigendian``, ``step`` and ``data``. ``data`` may be
    anything bytes-like (``array.array('B')`` as rclpy gives, bytes, bytearray, memoryview, a uint8
    ndarray; read without copying) or a list of ints in [0, 255] (copied, slow).

    Encodings (case-insensitive; see :data:`IMAGE_ENCODINGS`):

    * ``rgb8``, ``bgr8``, ``rgba8``, ``bgra8``, ``mono8``: exact; alpha is dropped, mono is replicated
      to the three channels.
    * ``mono16``, ``rgb16``, ``bgr16``, ``rgba16``, ``bgra16``: reduced to 8 bits by keeping the HIGH
      byte of every value (``value >> 8``, i.e. truncation, no rescaling to the value range; a 16UC1
      depth image in millimetres thus becomes 256 mm per grey level, a preview only). Byte order
      follows ``is_bigendian``.
    * ``yuv422`` (UYVY) and ``yuv422_yuy2`` (YUYV): packed 4:2:2, decoded by OpenCV (BT.601, limited
      range); ``width`` must be even.
    * ``bayer_rggb8``, ``bayer_bggr8``, ``bayer_gbrg8``, ``bayer_grbg8`` and their ``16`` variants: raw
      Bayer mosaics, demosaiced by OpenCV (bilinear); 16-bit ones keep the high byte first, as above.
      Height and width must be at least 2.
    * Aliases as cv_bridge reads them: ``8UC1`` = mono8, ``8UC3`` = bgr8, ``8UC4`` = bgra8,
      ``16UC1`` = mono16, ``16UC3`` = bgr16, ``16UC4`` = bgra16; ``uyvy``, ``yuyv``.

    Rows are ``step`` bytes apart; ``step`` may exceed ``width * bytes_per_pixel`` (the padding is
    ignored), and bytes of ``data`` beyond ``step * height`` are ignored.

    Returns:
        ``(height, width, 3)`` uint8 RGB, C-contiguous, writable and always a new array (it never
        shares memory with ``msg.data``).

    Raises:
        ImageError: a missing attribute, ``data`` not bytes-like, an unknown encoding, zero (or
            negative) height or width, ``step < width * bytes_per_pixel``, ``len(data) < step * height``,
            an odd width for YUV 4:2:2, or a Bayer mosaic smaller than 2x2.
    """
    kind = 'sensor_msgs/Image'
    data = _byte_array(_attr(msg, 'data', kind))
    name, layout = _layout(_attr(msg, 'encoding', kind))
    height = _dimension(_attr(msg, 'height', kind), 'height')
    width = _dimension(_attr(msg, 'width', kind), 'width')
    step = _dimension(_attr(msg, 'step', kind), 'step')
    big_endian = bool(_attr(msg, 'is_bigendian', kind))
    if height <= 0 or width <= 0:
        raise ImageError(f'image has zero size: {width}x{height} ({name})')
    row_bytes = width * layout.bytes_per_pixel
    if step < row_bytes:
        raise ImageError(
            f'image step {step} is smaller than width * bytes per pixel = {width} * '
            f'{layout.bytes_per_pixel} = {row_bytes} ({name})'
        )
    if data.size < step * height:
        raise ImageError(
            f'image data has {data.size} bytes, expected at least step * height = {step} * {height} = '
            f'{step * height} ({width}x{height} {name})'
        )
    if layout.channels == 2 and width % 2:
        raise ImageError(f'{name} (YUV 4:2:2) needs an even width, got {width}')
    if name.startswith('bayer_') and (width < 2 or height < 2):
        raise ImageError(f'{name} (a Bayer mosaic) needs at least 2x2 pixels, got {width}x{height}')

    rows = data[: step * height].reshape(height, step)[:, :row_bytes]  # a view; padding dropped
    if layout.depth == 2:
        # High byte of each 16-bit value, whatever the host's byte order: byte 0 when big-endian.
        rows = rows.reshape(height, width * layout.channels, 2)[..., 0 if big_endian else 1]
    pixels = rows.reshape(height, width, layout.channels)
    if layout.to_rgb is None:
        return np.array(pixels, dtype=np.uint8, order='C', copy=True)
    return _cvt(pixels, layout.to_rgb)


def _cvt(pixels: npt.NDArray[np.uint8], code: int) -> RgbImage:
    if pixels.strides[1:] != (pixels.shape[2], 1):
        pixels = np.ascontiguousarray(pixels)  # OpenCV needs packed pixels within a row; padding is fine
    out = cv2.cvtColor(pixels, code)
    return np.ascontiguousarray(out, dtype=np.uint8)


@dataclass(frozen=True)
class ImageFields:
    """Field values for a ``sensor_msgs/Image`` (everything but the header), from :func:`rgb_to_image_fields`.

    ``data`` holds ``height`` rows of ``step`` bytes each (no padding: ``step = width * bytes per
    pixel``). Fill a message with ``msg.height = f.height`` and so on; rclpy accepts bytes for ``data``.
    """

    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: bytes


def rgb_to_image_fields(rgb: RgbImage, encoding: str = 'rgb8') -> ImageFields:
    """Encode an RGB array as the fields of a ``sensor_msgs/Image`` (the reverse of :func:`image_msg_to_rgb`).

    Args:
        rgb: ``(H, W, 3)`` uint8 RGB.
        encoding: ``rgb8``, ``bgr8``, ``rgba8``, ``bgra8`` (alpha 255), ``mono8`` (OpenCV's BT.601
            luma, ``0.299 R + 0.587 G + 0.114 B``), ``mono16``, ``rgb16``, ``bgr16``, ``rgba16``,
            ``bgra16`` (16-bit values are ``v * 257``, so the high byte is ``v`` again and alpha is
            65535), or an alias ``8UC1``/``8UC3``/``8UC4``/``16UC1``/``16UC3``/``16UC4``; matched
            case-insensitively and stored in its canonical spelling (``'rgb8'``, ``'8UC3'``).

    Returns:
        :class:`ImageFields` with ``is_bigendian = 0`` (16-bit data is little-endian) and
        ``step = width * bytes per pixel``. :func:`image_msg_to_rgb` of it gives ``rgb`` back exactly
        for the colour encodings, and for grey images (R = G = B) with the mono ones.

    Raises:
        ImageError: not an ``(H, W, 3)`` uint8 image, or an unknown or read-only (YUV) encoding.
    """
    _check_rgb(rgb)
    _, layout = _layout(encoding)
    name = _CANONICAL[encoding.strip().lower()]
    if not layout.writable:
        raise ImageError(f'encoding {encoding!r} can be read but not written')
    height, width = rgb.shape[:2]
    pixels = rgb if layout.from_rgb is None else cv2.cvtColor(np.ascontiguousarray(rgb), layout.from_rgb)
    pixels = np.asarray(pixels, dtype=np.uint8)
    if layout.depth == 2:
        wide = pixels.astype('<u2')
        wide *= 257
        payload = wide.tobytes()
    else:
        payload = np.ascontiguousarray(pixels).tobytes()
    return ImageFields(
        height=int(height),
        width=int(width),
        encoding=name,
        is_bigendian=0,
        step=int(width) * layout.bytes_per_pixel,
        data=payload,
    )


# ----------------------------------------------------------------------------------------------------
# JPEG / PNG
# ----------------------------------------------------------------------------------------------------

_JPEG_MAGIC: Final = b'\xff\xd8\xff'
_PNG_MAGIC: Final = b'\x89PNG\r\n\x1a\n'
_PNG_IEND: Final = b'IEND\xaeB`\x82'


def _sniff(head: bytes) -> str | None:
    if head.startswith(_JPEG_MAGIC):
        return 'jpeg'
    if head.startswith(_PNG_MAGIC):
        return 'png'
    return None


def _tail(buffer: npt.NDArray[np.uint8], length: int) -> bytes:
    """The last ``length`` bytes, ignoring trailing zero padding (some camera drivers pad JPEG buffers)."""
    return bytes(buffer).rstrip(b'\x00')[-length:]


def encode_jpeg(image: RgbImage, quality: int = 90, *, channel_order: Literal['rgb', 'bgr'] = 'rgb') -> bytes:
    """Encode an RGB image as baseline JPEG bytes.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        quality: JPEG quality, 1 to 100.
        channel_order: ``'bgr'``: ``image`` is in OpenCV's BGR order (as ``cv2.imdecode`` gives it); the
            bytes are those of the RGB image with the channels swapped back, without a conversion pass.

    Raises:
        ImageError: bad image, bad quality, or the encoder failed.
    """
    _check_rgb(image)
    if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)) or not 1 <= quality <= 100:
        raise ImageError(f'JPEG quality must be an integer in [1, 100], got {quality!r}')
    bgr = image if channel_order == 'bgr' else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, buffer = cv2.imencode('.jpg', bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ImageError('JPEG encoding failed')
    return bytes(buffer.tobytes())


def _encode_png(image: RgbImage) -> bytes:
    _check_rgb(image)
    ok, buffer = cv2.imencode('.png', cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ImageError('PNG encoding failed')
    return bytes(buffer.tobytes())


def decode_jpeg(data: BytesLike) -> RgbImage:
    """Decode JPEG (or PNG) bytes to ``(H, W, 3)`` uint8 RGB.

    ``data`` may be any bytes-like object (bytes, bytearray, memoryview, ``array.array('B')``, a uint8
    ndarray). Grey images come back with three equal channels; alpha is dropped; 16-bit PNG is reduced
    to 8 bits by OpenCV.

    Returns:
        ``(H, W, 3)`` uint8 RGB, C-contiguous.

    Raises:
        ImageError: not bytes-like, empty, neither JPEG nor PNG, truncated (no JPEG end-of-image
            marker, no PNG IEND chunk) or otherwise undecodable.
    """
    buffer = _byte_array(data)
    if buffer.size == 0:
        raise ImageError('empty image data')
    codec = _sniff(bytes(buffer[:8]))
    if codec is None:
        raise ImageError(f'image data is neither JPEG nor PNG (starts with {bytes(buffer[:8])!r})')
    if codec == 'jpeg' and _tail(buffer, 2) != b'\xff\xd9':
        raise ImageError(f'truncated JPEG ({buffer.size} bytes): no end-of-image marker')
    if codec == 'png' and _tail(buffer, len(_PNG_IEND)) != _PNG_IEND:
        raise ImageError(f'truncated PNG ({buffer.size} bytes): no IEND chunk')
    if _IMREAD_COLOR_RGB is not None:
        decoded = cv2.imdecode(buffer, _IMREAD_COLOR_RGB)
    else:  # pragma: no cover - OpenCV < 4.11
        decoded = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
        decoded = None if decoded is None else cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
    if decoded is None:
        raise ImageError(f'could not decode {codec.upper()} data ({buffer.size} bytes): corrupt')
    return np.ascontiguousarray(decoded, dtype=np.uint8)


def compressed_msg_to_rgb(msg: CompressedImageLike) -> RgbImage:
    """Decode a ``sensor_msgs/CompressedImage``-like message (JPEG or PNG) to ``(H, W, 3)`` uint8 RGB.

    The codec is detected from the data's magic bytes, so any ``format`` naming JPEG or PNG works
    (``'jpeg'``, ``'png'``, image_transport's ``'rgb8; jpeg compressed bgr8'``, an empty string).
    image_transport's colour note is irrelevant here: a decoded JPEG/PNG always has a defined colour
    order, and the result is RGB.

    Returns:
        ``(H, W, 3)`` uint8 RGB, C-contiguous.

    Raises:
        ImageError: a missing attribute, ``data`` not bytes-like or empty, data that is neither JPEG
            nor PNG (including ``compressedDepth``), truncated or corrupt data.
    """
    kind = 'sensor_msgs/CompressedImage'
    fmt = _attr(msg, 'format', kind)
    data = _byte_array(_attr(msg, 'data', kind), 'compressed image data')
    try:
        return decode_jpeg(data)
    except ImageError as exc:
        hint = ' (compressedDepth is not supported)' if 'compresseddepth' in str(fmt).lower() else ''
        raise ImageError(f'CompressedImage with format {fmt!r}{hint}: {exc}') from None


def rgb_to_compressed(rgb: RgbImage, fmt: str = 'jpeg', quality: int = 90) -> tuple[str, bytes]:
    """Compress an RGB array for a ``sensor_msgs/CompressedImage``.

    Args:
        rgb: ``(H, W, 3)`` uint8 RGB.
        fmt: ``'jpeg'`` (or ``'jpg'``) or ``'png'`` (lossless), case-insensitive.
        quality: JPEG quality 1 to 100 (ignored for PNG).

    Returns:
        ``(format, data)``: ``format`` is ``'jpeg'`` or ``'png'`` (what image_transport and Foxglove
        accept), ``data`` the encoded bytes.

    Raises:
        ImageError: bad image, unknown format, bad quality, or the encoder failed.
    """
    key = fmt.strip().lower() if isinstance(fmt, str) else ''
    if key in ('jpeg', 'jpg'):
        return 'jpeg', encode_jpeg(rgb, quality)
    if key == 'png':
        return 'png', _encode_png(rgb)
    raise ImageError(f'unsupported compressed format {fmt!r}; use one of {", ".join(COMPRESSED_FORMATS)}')


def load_image_file(path: str | os.PathLike[str]) -> RgbImage:
    """Read a JPEG or PNG file to ``(H, W, 3)`` uint8 RGB.

    The file is read in Python and decoded from memory, so any path works (non-ASCII included) and
    errors are those of :func:`decode_jpeg`. No EXIF orientation is applied.

    Raises:
        ImageError: the file cannot be read, or is not a complete JPEG/PNG; the message names the path.
    """
    try:
        with open(path, 'rb') as handle:
            data = handle.read()
    except OSError as exc:
        raise ImageError(f'cannot read image file {os.fspath(path)!r}: {exc.strerror or exc}') from None
    try:
        return decode_jpeg(data)
    except ImageError as exc:
        raise ImageError(f'image file {os.fspath(path)!r}: {exc}') from None


# ----------------------------------------------------------------------------------------------------
# Model input
# ----------------------------------------------------------------------------------------------------


def resize_max(image: RgbImage, max_width: int = MAX_MODEL_WIDTH, max_height: int = MAX_MODEL_HEIGHT) -> RgbImage:
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
    height, width = image.shape[:2]
    new_width, new_height = fit_size(width, height, max_width, max_height)
    if (new_width, new_height) == (width, height):
        return image
    return np.ascontiguousarray(cv2.resize(image, (new_width, new_height), interpolation=cv2.INTER_AREA))


def fit_size(
    width: int, height: int, max_width: int = MAX_MODEL_WIDTH, max_height: int = MAX_MODEL_HEIGHT
) -> tuple[int, int]:
    """The ``(width, height)`` that :func:`resize_max` gives a ``width`` x ``height`` image (pixels).

    ``(width, height)`` itself when the image fits, else the largest size within the limits with the
    image's aspect ratio (each side rounded, at least 1).

    Raises:
        ImageError: non-positive limits or image size.
    """
    if max_width <= 0 or max_height <= 0:
        raise ImageError(f'resize limits must be positive, got {max_width}x{max_height}')
    if width <= 0 or height <= 0:
        raise ImageError(f'image size must be positive, got {width}x{height}')
    scale = min(max_width / width, max_height / height)
    if scale >= 1.0:
        return width, height
    return max(1, min(max_width, round(width * scale))), max(1, min(max_height, round(height * scale)))


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
    return encoded_jpeg_data_url(encode_jpeg(resize_max(image, max_width, max_height), quality))


def encoded_jpeg_data_url(data: bytes) -> str:
    """``data:image/jpeg;base64,...`` URL of JPEG bytes as they are (no decoding, resizing or re-encoding)."""
    return 'data:image/jpeg;base64,' + base64.b64encode(data).decode('ascii')
