"""Image files of posed captures: reading, decoding and fitting to a size limit (ROS-free; OpenCV only).

One home for how a view's image file becomes pixels or JPEG bytes, for every file-based source (LLFF,
COLMAP, ``transforms.json``): :func:`read_image_bytes` (the bytes, refusing empty or truncated files),
:func:`decode_image_file` (``(H, W, 3)`` uint8 RGB on the stored pixel grid), :func:`read_image_file`,
:func:`fit_image_file` (JPEG bytes within a size limit: passed through when already within it, decoded at
reduced scale when larger), :func:`image_file_size` (from the JPEG/PNG header, no decoding).

It is also the one home of the dataset builder's image fitting
(:meth:`actial_ros.sources.base.PosedCapture.iter_jpeg`): files through :func:`fit_image_file`, decoded
pixels (bag messages, an image file that needs a full decode) through :func:`fit_image`, the reduced-scale
decode through :func:`jpeg_reduction`; :mod:`actial_ros.imaging` gives them its primitives (the target size
:func:`~actial_ros.imaging.fit_size`, :func:`~actial_ros.imaging.resize_max`,
:func:`~actial_ros.imaging.encode_jpeg`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt

from actial_ros.errors import CaptureError, ImageError
from actial_ros.imaging import MAX_MODEL_HEIGHT, MAX_MODEL_WIDTH, encode_jpeg, fit_size, resize_max

RgbImage = npt.NDArray[np.uint8]

__all__ = [
    'check_fit_arguments',
    'decode_image_file',
    'fit_image',
    'fit_image_file',
    'image_file_size',
    'jpeg_reduction',
    'read_image_bytes',
    'read_image_file',
]

_REDUCED_FLAGS: dict[int, int] = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}
"""OpenCV read flags per JPEG reduction factor (libjpeg DCT scaling; OpenCV resizes other formats)."""


def read_image_bytes(path: Path) -> bytes:
    """The bytes of an image file, raising :class:`CaptureError` naming the file when it cannot be read, is
    empty, or is a JPEG without end-of-image marker (truncated)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CaptureError(f'cannot read image {path}: {exc}') from exc
    if not data:
        raise CaptureError(f'image {path} is empty')
    if data[:2] == b'\xff\xd8' and not data.rstrip(b'\x00').endswith(b'\xff\xd9'):
        raise CaptureError(f'image {path} is a truncated JPEG (no end-of-image marker)')
    return data


def _decode_image_bgr(data: bytes, path: Path, reduction: int = 1) -> npt.NDArray[np.uint8]:
    """Decode the bytes of image file ``path`` to ``(H, W, 3)`` uint8 BGR (OpenCV's order) on its stored
    pixel grid (EXIF orientation ignored).

    Args:
        reduction: 1, 2, 4 or 8: a JPEG is decoded at ``1/reduction`` scale by libjpeg's DCT scaling
            (``ceil(W / reduction)`` x ``ceil(H / reduction)`` pixels); other formats need 1.

    Raises:
        CaptureError: undecodable (corrupt or unsupported format); the message names ``path``.
    """
    flags = _REDUCED_FLAGS[reduction] | cv2.IMREAD_IGNORE_ORIENTATION
    decoded = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
    if decoded is None or decoded.ndim != 3 or decoded.shape[2] != 3 or decoded.size == 0:
        raise CaptureError(f'image {path} cannot be decoded (corrupt or unsupported format)')
    return np.ascontiguousarray(decoded, dtype=np.uint8)


def decode_image_file(path: Path) -> npt.NDArray[np.uint8]:
    """Decode an image file to ``(H, W, 3)`` uint8 RGB, raising :class:`CaptureError` naming the file."""
    return np.ascontiguousarray(cv2.cvtColor(_decode_image_bgr(read_image_bytes(path), path), cv2.COLOR_BGR2RGB))


def read_image_file(path: str | Path) -> RgbImage:
    """Decode a JPEG/PNG file to ``(H, W, 3)`` uint8 RGB on its stored pixel grid (EXIF orientation ignored,
    as structure-from-motion tools compute poses on the raw grid; the LLFF reader's decoder).

    Raises:
        ImageError: the file is missing, empty, a truncated JPEG or undecodable; the message names it.
    """
    try:
        return decode_image_file(Path(path))
    except CaptureError as error:
        raise ImageError(str(error)) from None


def fit_image_file(
    path: str | Path,
    *,
    max_width: int = MAX_MODEL_WIDTH,
    max_height: int = MAX_MODEL_HEIGHT,
    quality: int = 90,
    expected_size: tuple[int, int] | None = None,
) -> bytes:
    """JPEG bytes of an image file that fit in ``max_width`` x ``max_height`` pixels (aspect kept, never
    upscaled), decoding no more than needed.

    * A JPEG already within the limits passes through: the result IS the file's bytes (no re-encoding),
      when it is an 8-bit 3-component Huffman JPEG (baseline, extended or progressive) without an EXIF
      orientation other than 1 (readers such as ``datasets`` would rotate an oriented file, while poses
      refer to the stored grid). It is still decoded at 1/8 scale, which parses every segment and all
      of the entropy-coded data, so that an undecodable file is refused as before.
    * A larger JPEG is decoded at reduced scale (libjpeg DCT scaling by the largest factor 2, 4 or 8 of
      :func:`jpeg_reduction` that keeps it at least the target size), area-resized to
      exactly :func:`actial_ros.imaging.fit_size` of its stored size (the size a full decode +
      :func:`actial_ros.imaging.resize_max` gives, with the same pixel alignment) and encoded at
      ``quality``; the pixels differ from a full decode + resize by about half a grey level on average.
    * Anything else (PNG; a JPEG within the limits that cannot pass through, e.g. grey, CMYK or oriented;
      a JPEG less than twice too large) is decoded in full, resized with
      :func:`actial_ros.imaging.resize_max` where larger and encoded at ``quality``: the very bytes of
      ``encode_jpeg(resize_max(read_image_file(path)), quality)``.

    EXIF orientation is ignored throughout (the stored pixel grid, as :func:`read_image_file`).

    Args:
        path: a JPEG or PNG file.
        max_width, max_height: the limits (pixels, > 0).
        quality: JPEG quality 1 to 100 of re-encoded images.
        expected_size: ``(width, height)`` the file must have on disk (the size its intrinsics were
            computed for), checked against the file's header before any decoding and against the
            decoded pixels; ``None``: not checked.

    Returns:
        JPEG bytes of an image of ``fit_size(width, height, max_width, max_height)`` pixels.

    Raises:
        ImageError: the file is missing, empty, a truncated JPEG or undecodable, its size differs from
            ``expected_size``, or the limits or quality are invalid; the message names the file.
    """
    check_fit_arguments(max_width, max_height, quality)
    file_path = Path(path)
    try:
        data = read_image_bytes(file_path)
    except CaptureError as error:
        raise ImageError(str(error)) from None
    info = _jpeg_info(data)
    if info is None:  # PNG, or a JPEG whose frame header is not where it should be
        return _encode_decoded(data, file_path, max_width, max_height, quality, expected_size)
    size = (info.width, info.height)
    _check_size(file_path, size, expected_size)
    target = fit_size(info.width, info.height, max_width, max_height)
    within = target == size
    reduction = (8 if info.passable else 1) if within else jpeg_reduction(info.width, info.height, *target)
    if reduction == 1:
        return _encode_decoded(data, file_path, max_width, max_height, quality, expected_size)
    image = _decode_bgr(data, file_path, reduction)
    reduced = (-(-info.width // reduction), -(-info.height // reduction))
    if (image.shape[1], image.shape[0]) != reduced:
        raise ImageError(
            f'image {file_path} decodes to {image.shape[1]}x{image.shape[0]} at 1/{reduction} scale, '
            f'not {reduced[0]}x{reduced[1]} as its header ({info.width}x{info.height}) says'
        )
    if within:  # decoded at 1/8 only to refuse an undecodable file, as a full decode would
        return data
    if reduced != target or (reduced[0] * reduction, reduced[1] * reduction) != size:
        # The reduced image covers ceil(W / r) * r source pixels (a partial last block is padded): scale by
        # the exact source-to-target factor and crop, so that the pixels line up with a full-size resize.
        scaled = cv2.resize(
            image,
            (0, 0),
            fx=target[0] * reduction / info.width,
            fy=target[1] * reduction / info.height,
            interpolation=cv2.INTER_AREA,
        )
        if scaled.shape[1] < target[0] or scaled.shape[0] < target[1]:  # never expected: rounding
            scaled = cv2.resize(image, target, interpolation=cv2.INTER_AREA)
        image = np.ascontiguousarray(scaled[: target[1], : target[0]], dtype=np.uint8)
    return encode_jpeg(image, quality, channel_order='bgr')


def fit_image(
    image: RgbImage,
    *,
    max_width: int = MAX_MODEL_WIDTH,
    max_height: int = MAX_MODEL_HEIGHT,
    quality: int = 90,
    channel_order: Literal['rgb', 'bgr'] = 'rgb',
) -> bytes:
    """JPEG bytes of decoded pixels that fit in ``max_width`` x ``max_height`` pixels: downscaled with
    :func:`actial_ros.imaging.resize_max` where larger (aspect kept, never upscaled), encoded at ``quality``.

    Args:
        image: ``(H, W, 3)`` uint8, in ``channel_order`` (resizing does not care; the encoder is told).

    Raises:
        ImageError: see :func:`actial_ros.imaging.resize_max` and :func:`actial_ros.imaging.encode_jpeg`.
    """
    return encode_jpeg(resize_max(image, max_width, max_height), quality, channel_order=channel_order)


def jpeg_reduction(width: int, height: int, target_width: int, target_height: int) -> int:
    """The largest JPEG DCT-scaling reduction (8, 4, 2 or 1) that decodes a ``width`` x ``height`` JPEG to at
    least ``target_width`` x ``target_height`` pixels.

    libjpeg decodes at ``1/r`` scale to ``ceil(width / r)`` x ``ceil(height / r)`` pixels (OpenCV's
    ``IMREAD_REDUCED_COLOR_r``, PIL's ``Image.draft``), at a fraction of the cost of a full decode; a
    final area resize to the target then gives nearly the pixels of a full decode + area resize.

    Returns:
        1 when no reduction keeps both sides at or above the target (the target is not smaller).
    """
    for reduction in (8, 4, 2):
        if -(-width // reduction) >= target_width and -(-height // reduction) >= target_height:
            return reduction
    return 1


def check_fit_arguments(max_width: int, max_height: int, quality: int) -> None:
    fit_size(1, 1, max_width, max_height)
    if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)) or not 1 <= quality <= 100:
        raise ImageError(f'JPEG quality must be an integer in [1, 100], got {quality!r}')


def _check_size(path: Path, size: tuple[int, int], expected_size: tuple[int, int] | None) -> None:
    if expected_size is not None and size != tuple(expected_size):
        raise ImageError(f'image {path} is {size[0]}x{size[1]}, expected {expected_size[0]}x{expected_size[1]}')


def _decode_bgr(data: bytes, path: Path, reduction: int = 1) -> npt.NDArray[np.uint8]:
    """``(H, W, 3)`` uint8 in BGR order: channel order does not matter to resizing, and the JPEG encoder
    takes BGR (no conversion pass either way)."""
    try:
        return _decode_image_bgr(data, path, reduction)
    except CaptureError as error:
        raise ImageError(str(error)) from None


def _encode_decoded(
    data: bytes,
    path: Path,
    max_width: int,
    max_height: int,
    quality: int,
    expected_size: tuple[int, int] | None,
) -> bytes:
    """The full-decode path of :func:`fit_image_file`: decode, check the size, resize, encode (the bytes
    of ``encode_jpeg(resize_max(read_image_file(path)), quality)``)."""
    image = _decode_bgr(data, path)
    _check_size(path, (int(image.shape[1]), int(image.shape[0])), expected_size)
    return fit_image(image, max_width=max_width, max_height=max_height, quality=quality, channel_order='bgr')


def image_file_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` of a JPEG or PNG file read from its header (no decoding); other formats and
    unusual JPEGs fall back to decoding the file.

    Raises:
        ImageError: the file cannot be read or is not an image.
    """
    file_path = Path(path)
    try:
        with file_path.open('rb') as handle:
            head = handle.read(64 * 1024)
    except OSError as error:
        raise ImageError(f'cannot read image {file_path}: {error}') from None
    size = _png_size(head) if head.startswith(b'\x89PNG\r\n\x1a\n') else _jpeg_size(head)
    if size is None:
        image = read_image_file(file_path)
        return int(image.shape[1]), int(image.shape[0])
    return size


def _png_size(head: bytes) -> tuple[int, int] | None:
    if len(head) < 24 or head[12:16] != b'IHDR':
        return None
    width, height = int.from_bytes(head[16:20], 'big'), int.from_bytes(head[20:24], 'big')
    return (width, height) if width > 0 and height > 0 else None


_SOS, _APP1, _EXIF_ORIENTATION_TAG = 0xDA, 0xE1, 0x0112
_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


_PASSABLE_SOF = frozenset({0xC0, 0xC1, 0xC2})
"""Huffman baseline, extended sequential and progressive: the JPEGs every reader decodes."""


@dataclass(frozen=True, slots=True)
class _JpegInfo:
    """What :func:`fit_image_file` reads from a JPEG's segments before the image data.

    Attributes:
        width, height: from the first start-of-frame segment (pixels, > 0).
        passable: the file may be stored as it is: an 8-bit, 3-component SOF0/1/2 frame, every segment up
            to the start of scan read, and no EXIF block with an orientation other than 1 or that cannot be
            read.
    """

    width: int
    height: int
    passable: bool


def _jpeg_size(head: bytes) -> tuple[int, int] | None:
    """Size from the first start-of-frame segment within ``head`` (``None`` when not found there)."""
    info = _jpeg_info(head)
    return None if info is None else (info.width, info.height)


def _jpeg_info(data: bytes) -> _JpegInfo | None:
    """The first start-of-frame segment of the JPEG ``data`` (or of its first bytes), with the EXIF
    orientation of any APP1 segment before the first start of scan; ``None`` when no valid frame size is
    found there."""
    if not data.startswith(b'\xff\xd8'):
        return None
    frame: tuple[int, int, bool] | None = None  # width, height, 8-bit 3-component SOF0/1/2
    oriented = False
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            break
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        if marker == _SOS:
            if frame is None:
                return None
            return _JpegInfo(frame[0], frame[1], passable=frame[2] and not oriented)
        length = int.from_bytes(data[pos + 2 : pos + 4], 'big')
        if marker in _SOF_MARKERS and frame is None:
            if pos + 10 > len(data):
                break
            precision = data[pos + 4]
            height = int.from_bytes(data[pos + 5 : pos + 7], 'big')
            width = int.from_bytes(data[pos + 7 : pos + 9], 'big')
            if width <= 0 or height <= 0:
                return None
            frame = (width, height, marker in _PASSABLE_SOF and precision == 8 and data[pos + 9] == 3)
        elif marker == _APP1 and data[pos + 4 : pos + 10] == b'Exif\x00\x00':
            orientation = _exif_orientation(data[pos + 10 : pos + 2 + length])
            oriented = oriented or orientation not in (None, 1)
        pos += 2 + length
    return None if frame is None else _JpegInfo(frame[0], frame[1], passable=False)


def _exif_orientation(tiff: bytes) -> int | None:
    """The orientation tag (0x0112) of IFD0 of an EXIF block (``tiff``: the TIFF structure that follows the
    ``Exif`` identifier of an APP1 segment): 1 to 8, ``None`` when the block has no such tag, 0 when the
    block cannot be read."""
    if len(tiff) < 8 or tiff[:2] not in (b'II', b'MM'):
        return 0
    order: Literal['little', 'big'] = 'little' if tiff[:2] == b'II' else 'big'
    if int.from_bytes(tiff[2:4], order) != 42:
        return 0
    ifd = int.from_bytes(tiff[4:8], order)
    if ifd + 2 > len(tiff):
        return 0
    for entry in range(ifd + 2, ifd + 2 + 12 * int.from_bytes(tiff[ifd : ifd + 2], order), 12):
        if entry + 12 > len(tiff):
            return 0
        if int.from_bytes(tiff[entry : entry + 2], order) == _EXIF_ORIENTATION_TAG:
            return int.from_bytes(tiff[entry + 8 : entry + 10], order)
    return None
