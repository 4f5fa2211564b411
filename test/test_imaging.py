"""Tests of actial_ros.imaging: ROS image message conversion, JPEG/PNG coding, resizing, data URLs."""

from __future__ import annotations

import array
import base64
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from captures import SHARED_CAPTURE

from actial_ros.errors import ImageError
from actial_ros.imaging import (
    IMAGE_ENCODINGS,
    ImageFields,
    compressed_msg_to_rgb,
    decode_jpeg,
    encode_jpeg,
    image_msg_to_rgb,
    jpeg_data_url,
    load_image_file,
    resize_max,
    rgb_to_compressed,
    rgb_to_image_fields,
)

PHOTO = SHARED_CAPTURE / 'images' / 'DSC_0007.JPG'

RED = (255, 0, 0)
COLOUR_ENCODINGS = ['rgb8', 'bgr8', 'rgba8', 'bgra8', 'rgb16', 'bgr16', 'rgba16', 'bgra16']
ALIAS_ENCODINGS = ['8UC3', '8UC4', '16UC3', '16UC4']
MONO_ENCODINGS = ['mono8', 'mono16', '8UC1', '16UC1']
BYTES_PER_PIXEL = {
    'rgb8': 3, 'bgr8': 3, 'rgba8': 4, 'bgra8': 4, 'mono8': 1,
    'rgb16': 6, 'bgr16': 6, 'rgba16': 8, 'bgra16': 8, 'mono16': 2,
    '8UC1': 1, '8UC3': 3, '8UC4': 4, '16UC1': 2, '16UC3': 6, '16UC4': 8,
}  # fmt: skip

Rgb = npt.NDArray[np.uint8]


# ----------------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------------


def gradient(height: int = 6, width: int = 9) -> Rgb:
    """Distinct known values per pixel and channel; pixel (0, 0) pure red, (0, 1) green, (0, 2) blue."""
    y, x = np.mgrid[0:height, 0:width]
    image = np.stack([(x * 29 + 3) % 256, (y * 41 + 5) % 256, (x * 7 + y * 13 + 100) % 256], axis=-1)
    image = image.astype(np.uint8)
    image[0, 0], image[0, 1], image[0, 2] = RED, (0, 255, 0), (0, 0, 255)
    return image


def grey_gradient(height: int = 6, width: int = 9) -> Rgb:
    values = ((np.arange(height * width) * 5) % 256).astype(np.uint8).reshape(height, width)
    return np.repeat(values[..., None], 3, axis=2)


def image_msg(fields: ImageFields | None = None, **overrides: Any) -> SimpleNamespace:
    """A sensor_msgs/Image stand-in from ImageFields, with attributes overridden."""
    values: dict[str, Any] = {}
    if fields is not None:
        names = ('height', 'width', 'encoding', 'is_bigendian', 'step')
        values = {name: getattr(fields, name) for name in names}
        values['data'] = array.array('B', fields.data)  # what rclpy gives
    values.update(overrides)
    return SimpleNamespace(**values)


def raw_msg(encoding: str, width: int, data: bytes, *, height: int = 1, big: int = 0) -> SimpleNamespace:
    return SimpleNamespace(
        height=height, width=width, encoding=encoding, is_bigendian=big, step=len(data) // height, data=data
    )


def pad_rows(fields: ImageFields, padding: int, fill: int = 0xEE) -> SimpleNamespace:
    """The same image with ``padding`` junk bytes after every row (step > width * bytes per pixel)."""
    rows = np.frombuffer(fields.data, dtype=np.uint8).reshape(fields.height, fields.step)
    junk = np.full((fields.height, padding), fill, dtype=np.uint8)
    padded = np.concatenate([rows, junk], axis=1)
    return image_msg(fields, step=fields.step + padding, data=array.array('B', padded.tobytes()))


def real_image_msg(fields: ImageFields) -> Any:
    msg_module = pytest.importorskip('sensor_msgs.msg')
    msg = msg_module.Image()
    msg.height, msg.width, msg.encoding = fields.height, fields.width, fields.encoding
    msg.is_bigendian, msg.step, msg.data = fields.is_bigendian, fields.step, fields.data
    return msg


def real_compressed_msg(fmt: str, data: bytes) -> Any:
    msg_module = pytest.importorskip('sensor_msgs.msg')
    msg = msg_module.CompressedImage()
    msg.format, msg.data = fmt, data
    return msg


@pytest.fixture(scope='module')
def photo() -> Rgb:
    if not PHOTO.exists():
        pytest.skip(f'shared capture not present: {PHOTO}')
    return load_image_file(PHOTO)


# ----------------------------------------------------------------------------------------------------
# sensor_msgs/Image -> RGB: hand-made raw bytes pin the channel order and 16-bit handling
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ('encoding', 'data'),
    [
        ('rgb8', bytes([255, 0, 0, 10, 20, 30])),
        ('bgr8', bytes([0, 0, 255, 30, 20, 10])),
        ('8UC3', bytes([0, 0, 255, 30, 20, 10])),  # cv_bridge reads generic 3-channel as BGR
        ('rgba8', bytes([255, 0, 0, 9, 10, 20, 30, 99])),
        ('bgra8', bytes([0, 0, 255, 9, 30, 20, 10, 99])),
        ('8UC4', bytes([0, 0, 255, 9, 30, 20, 10, 99])),
        ('rgb16', bytes([0x11, 255, 0x22, 0, 0x33, 0, 0x44, 10, 0x55, 20, 0x66, 30])),
        ('bgr16', bytes([0x11, 0, 0x22, 0, 0x33, 255, 0x44, 30, 0x55, 20, 0x66, 10])),
    ],
)
def test_raw_colour_pixels(encoding: str, data: bytes) -> None:
    rgb = image_msg_to_rgb(raw_msg(encoding, 2, data))
    assert rgb.shape == (1, 2, 3)
    assert rgb.dtype == np.uint8
    assert tuple(rgb[0, 0]) == RED
    assert tuple(rgb[0, 1]) == (10, 20, 30)


@pytest.mark.parametrize('encoding', ['mono8', '8UC1'])
def test_raw_mono8(encoding: str) -> None:
    rgb = image_msg_to_rgb(raw_msg(encoding, 3, bytes([0, 77, 255])))
    assert rgb[0].tolist() == [[0, 0, 0], [77, 77, 77], [255, 255, 255]]


@pytest.mark.parametrize('encoding', ['mono16', '16UC1'])
@pytest.mark.parametrize('big', [0, 1])
def test_raw_mono16_takes_high_byte(encoding: str, big: int) -> None:
    values = np.array([[0x0000, 0x00FF, 0x0100, 0xAB34, 0xFFFF]], dtype='>u2' if big else '<u2')
    rgb = image_msg_to_rgb(raw_msg(encoding, 5, values.tobytes(), big=big))
    assert rgb[0, :, 0].tolist() == [0x00, 0x00, 0x01, 0xAB, 0xFF]
    assert (rgb == rgb[..., :1]).all()


def test_big_endian_mono16_differs_from_little_endian_reading() -> None:
    data = np.array([[0x12AB]], dtype='>u2').tobytes()  # bytes 12 AB
    assert image_msg_to_rgb(raw_msg('mono16', 1, data, big=1))[0, 0, 0] == 0x12
    assert image_msg_to_rgb(raw_msg('mono16', 1, data, big=0))[0, 0, 0] == 0xAB


def test_big_endian_rgb16() -> None:
    values = np.array([[[0xFF01, 0x0002, 0x0003], [0x0A00, 0x1400, 0x1EFF]]], dtype='>u2')
    rgb = image_msg_to_rgb(raw_msg('rgb16', 2, values.tobytes(), big=1))
    assert rgb[0].tolist() == [[255, 0, 0], [10, 20, 30]]


def test_yuv422_uyvy_and_yuyv() -> None:
    # Neutral chroma: grey; OpenCV decodes limited range (Y 16 -> 0, Y 235 -> 255).
    uyvy = bytes([128, 16, 128, 235])
    assert image_msg_to_rgb(raw_msg('yuv422', 2, uyvy))[0].tolist() == [[0, 0, 0], [255, 255, 255]]
    yuyv = bytes([16, 128, 235, 128])
    assert image_msg_to_rgb(raw_msg('yuv422_yuy2', 2, yuyv))[0].tolist() == [[0, 0, 0], [255, 255, 255]]
    red = image_msg_to_rgb(raw_msg('uyvy', 2, bytes([85, 76, 255, 76]))).astype(int)  # BT.601 red
    assert (red[..., 0] > 240).all()
    assert (red[..., 1:] < 15).all()


def test_yuv422_odd_width_rejected() -> None:
    with pytest.raises(ImageError, match='even width'):
        image_msg_to_rgb(raw_msg('yuv422', 3, bytes(6)))


# The colour of each pixel of a 2x2 Bayer block (REP 104: named by the block's colours, row by row).
BAYER_PATTERNS = {'rggb': 'RGGB', 'bggr': 'BGGR', 'gbrg': 'GBRG', 'grbg': 'GRBG'}


def mosaic(rgb: Rgb, pattern: str) -> npt.NDArray[np.uint8]:
    """The single-channel Bayer image a sensor with ``pattern`` would record of ``rgb``."""
    channel = {'R': 0, 'G': 1, 'B': 2}
    out = np.empty(rgb.shape[:2], dtype=np.uint8)
    for k, colour in enumerate(BAYER_PATTERNS[pattern]):
        row, col = divmod(k, 2)
        out[row::2, col::2] = rgb[row::2, col::2, channel[colour]]
    return out


@pytest.mark.parametrize('bits', [8, 16])
@pytest.mark.parametrize('pattern', sorted(BAYER_PATTERNS))
def test_bayer_mosaics_are_demosaiced(pattern: str, bits: int) -> None:
    # A flat colour with three distinct channel values: any pattern mix-up swaps channels.
    colour = (200, 120, 40)
    rgb = np.empty((8, 10, 3), dtype=np.uint8)
    rgb[:] = colour
    raw = mosaic(rgb, pattern)
    if bits == 16:  # high byte = the 8-bit value, low byte noise that must not matter
        noise = np.random.default_rng(0).integers(0, 256, raw.shape, dtype=np.uint16)
        data = ((raw.astype(np.uint16) << 8) | noise).astype('<u2').tobytes()
    else:
        data = raw.tobytes()
    msg = image_msg(
        encoding=f'bayer_{pattern}{bits}', height=8, width=10, step=10 * bits // 8, is_bigendian=0, data=data
    )
    out = image_msg_to_rgb(msg)
    assert out.shape == (8, 10, 3)
    # Bilinear demosaicing is exact on a flat colour away from the border.
    np.testing.assert_array_equal(out[2:-2, 2:-2], np.broadcast_to(colour, (4, 6, 3)))


def test_bayer_needs_two_by_two_pixels() -> None:
    with pytest.raises(ImageError, match='at least 2x2'):
        image_msg_to_rgb(raw_msg('bayer_rggb8', 4, bytes(4)))


def test_bayer_is_read_only() -> None:
    with pytest.raises(ImageError, match='read but not written'):
        rgb_to_image_fields(gradient(), 'bayer_rggb8')


def test_encoding_names_case_insensitive() -> None:
    assert tuple(image_msg_to_rgb(raw_msg('RGB8', 1, bytes(RED)))[0, 0]) == RED
    assert tuple(image_msg_to_rgb(raw_msg('8uc3', 1, bytes([0, 0, 255])))[0, 0]) == RED
    assert 'rgb8' in IMAGE_ENCODINGS
    assert '16UC1' in IMAGE_ENCODINGS


# ----------------------------------------------------------------------------------------------------
# Round trips RGB -> fields -> RGB
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize('encoding', COLOUR_ENCODINGS + ALIAS_ENCODINGS)
def test_round_trip_colour(encoding: str) -> None:
    image = gradient()
    fields = rgb_to_image_fields(image, encoding)
    assert fields.encoding == encoding
    assert (fields.height, fields.width, fields.is_bigendian) == (6, 9, 0)
    assert fields.step == 9 * BYTES_PER_PIXEL[encoding]
    assert isinstance(fields.data, bytes)
    assert len(fields.data) == fields.step * fields.height
    out = image_msg_to_rgb(image_msg(fields))
    assert out.dtype == np.uint8
    assert out.shape == image.shape
    assert out.flags.c_contiguous
    assert out.flags.writeable
    np.testing.assert_array_equal(out, image)
    assert tuple(out[0, 0]) == RED


@pytest.mark.parametrize('encoding', MONO_ENCODINGS)
def test_round_trip_mono_on_grey_image(encoding: str) -> None:
    image = grey_gradient()
    fields = rgb_to_image_fields(image, encoding)
    assert fields.step == 9 * BYTES_PER_PIXEL[encoding]
    np.testing.assert_array_equal(image_msg_to_rgb(image_msg(fields)), image)


def test_fields_byte_layout() -> None:
    image = np.array([[RED, (10, 20, 30)]], dtype=np.uint8)
    assert rgb_to_image_fields(image, 'rgb8').data == bytes([255, 0, 0, 10, 20, 30])
    assert rgb_to_image_fields(image, 'bgr8').data == bytes([0, 0, 255, 30, 20, 10])
    assert rgb_to_image_fields(image, 'rgba8').data == bytes([255, 0, 0, 255, 10, 20, 30, 255])
    assert rgb_to_image_fields(image, 'bgra8').data == bytes([0, 0, 255, 255, 30, 20, 10, 255])
    grey = np.array([[(0, 0, 0), (0xAB, 0xAB, 0xAB)]], dtype=np.uint8)
    assert rgb_to_image_fields(grey, 'mono16').data == bytes([0, 0, 0xAB, 0xAB])  # 0xAB * 257, LE


def test_mono8_from_colour_uses_luma() -> None:
    image = np.array([[RED, (0, 255, 0), (0, 0, 255)]], dtype=np.uint8)
    assert list(rgb_to_image_fields(image, 'mono8').data) == [76, 150, 29]  # BT.601 weights


def test_fields_encoding_spelling_is_canonical() -> None:
    image = gradient()
    assert rgb_to_image_fields(image, 'RGB8').encoding == 'rgb8'
    assert rgb_to_image_fields(image, '8uc3').encoding == '8UC3'


def test_fields_is_frozen() -> None:
    fields = rgb_to_image_fields(gradient())
    with pytest.raises(AttributeError):
        fields.width = 3  # type: ignore[misc]


def test_rgb_to_fields_errors() -> None:
    with pytest.raises(ImageError, match='unsupported image encoding'):
        rgb_to_image_fields(gradient(), 'jpeg')
    with pytest.raises(ImageError, match='read but not written'):
        rgb_to_image_fields(gradient(), 'yuv422')
    with pytest.raises(ImageError, match='uint8'):
        rgb_to_image_fields(gradient().astype(np.float32), 'rgb8')
    with pytest.raises(ImageError):
        rgb_to_image_fields(gradient()[..., :2], 'rgb8')


@pytest.mark.parametrize('encoding', COLOUR_ENCODINGS + MONO_ENCODINGS)
def test_non_contiguous_input_is_encoded_correctly(encoding: str) -> None:
    view = gradient(8, 10)[::2, 1::3]  # strided, not C-contiguous
    assert not view.flags.c_contiguous
    fields = rgb_to_image_fields(view, encoding)
    assert fields == rgb_to_image_fields(np.ascontiguousarray(view), encoding)
    if encoding in COLOUR_ENCODINGS:
        np.testing.assert_array_equal(image_msg_to_rgb(image_msg(fields)), view)


# ----------------------------------------------------------------------------------------------------
# step, data types, memory
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize('encoding', ['rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8', 'mono16', 'rgb16'])
@pytest.mark.parametrize('padding', [1, 3, 64])
def test_padded_step(encoding: str, padding: int) -> None:
    image = grey_gradient() if encoding.startswith('mono') else gradient()
    msg = pad_rows(rgb_to_image_fields(image, encoding), padding)
    np.testing.assert_array_equal(image_msg_to_rgb(msg), image)


def test_big_endian_mono16_with_padding() -> None:
    values = (np.arange(12, dtype=np.uint16).reshape(3, 4) * 0x1111).astype('>u2')
    rows = np.frombuffer(values.tobytes(), dtype=np.uint8).reshape(3, 8)
    padded = np.concatenate([rows, np.full((3, 5), 0xEE, dtype=np.uint8)], axis=1)
    msg = SimpleNamespace(height=3, width=4, encoding='mono16', is_bigendian=1, step=13, data=padded.tobytes())
    np.testing.assert_array_equal(image_msg_to_rgb(msg)[..., 0], (values >> 8).astype(np.uint8))


def test_extra_trailing_bytes_ignored() -> None:
    fields = rgb_to_image_fields(gradient())
    msg = image_msg(fields, data=fields.data + b'\x07' * 11)
    np.testing.assert_array_equal(image_msg_to_rgb(msg), gradient())


@pytest.mark.parametrize(
    'convert',
    [bytes, bytearray, memoryview, lambda b: array.array('B', b), lambda b: np.frombuffer(b, np.uint8), list],
    ids=['bytes', 'bytearray', 'memoryview', 'array', 'ndarray', 'list'],
)
def test_data_types(convert: Any) -> None:
    fields = rgb_to_image_fields(gradient(), 'bgr8')
    np.testing.assert_array_equal(image_msg_to_rgb(image_msg(fields, data=convert(fields.data))), gradient())


def test_output_never_shares_memory_with_message() -> None:
    fields = rgb_to_image_fields(gradient(), 'rgb8')
    data = np.frombuffer(bytearray(fields.data), dtype=np.uint8)
    out = image_msg_to_rgb(image_msg(fields, data=data))
    assert not np.shares_memory(out, data)
    data[:3] = 0  # later changes to the message buffer do not reach the result
    assert tuple(out[0, 0]) == RED
    out[0, 0] = 1  # writable


# ----------------------------------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------------------------------


def _good() -> ImageFields:
    return rgb_to_image_fields(gradient(), 'rgb8')


@pytest.mark.parametrize(
    ('overrides', 'match'),
    [
        ({'encoding': 'jpeg'}, 'unsupported image encoding'),
        ({'encoding': '32FC1'}, 'unsupported image encoding'),
        ({'encoding': ''}, 'unsupported image encoding'),
        ({'encoding': None}, 'must be a string'),
        ({'height': 0}, 'zero size'),
        ({'width': 0}, 'zero size'),
        ({'height': 0, 'width': 0, 'step': 0, 'data': b''}, 'zero size'),
        ({'width': -2}, 'zero size'),
        ({'height': 2.0}, 'must be an integer'),
        ({'step': 26}, r'step 26 is smaller than width \* bytes per pixel = 9 \* 3 = 27'),
        ({'step': 28}, r'expected at least step \* height = 28 \* 6 = 168'),
        ({'data': b'\x00' * 161}, r'161 bytes, expected at least step \* height = 27 \* 6 = 162'),
        ({'data': 'abc'}, 'bytes-like'),
        ({'data': None}, 'bytes-like'),
        ({'data': 12}, 'bytes-like'),
        ({'data': [0, 1, 300]}, r'ints in \[0, 255\]'),
        ({'data': [0.5]}, r'ints in \[0, 255\]'),
    ],
)
def test_image_msg_errors(overrides: dict[str, Any], match: str) -> None:
    with pytest.raises(ImageError, match=match):
        image_msg_to_rgb(image_msg(_good(), **overrides))


def test_image_msg_missing_attribute() -> None:
    msg = image_msg(_good())
    del msg.step
    with pytest.raises(ImageError, match="no attribute 'step'"):
        image_msg_to_rgb(msg)


def test_image_error_is_value_error() -> None:
    with pytest.raises(ValueError, match='unsupported image encoding'):
        image_msg_to_rgb(image_msg(_good(), encoding='nope'))


# ----------------------------------------------------------------------------------------------------
# CompressedImage, JPEG and PNG
# ----------------------------------------------------------------------------------------------------


def blocks() -> Rgb:
    """Flat colour blocks survive JPEG well enough to check colours."""
    image = np.zeros((32, 48, 3), dtype=np.uint8)
    image[:, :16] = RED
    image[:, 16:32] = (0, 255, 0)
    image[:, 32:] = (0, 0, 255)
    return image


def assert_blocks(out: Rgb) -> None:
    assert out.shape == (32, 48, 3)
    means = [out[4:-4, 4 + 16 * i : 12 + 16 * i].reshape(-1, 3).mean(axis=0) for i in range(3)]
    for index, mean in enumerate(means):
        assert mean[index] > 230, (index, mean)
        assert np.delete(mean, index).max() < 25, (index, mean)


@pytest.mark.parametrize('fmt', ['jpeg', 'rgb8; jpeg compressed bgr8', 'bgr8; jpeg compressed bgr8', 'JPEG', ''])
def test_compressed_jpeg(fmt: str) -> None:
    out_fmt, data = rgb_to_compressed(blocks(), 'jpeg', 95)
    assert out_fmt == 'jpeg'
    assert data[:3] == b'\xff\xd8\xff'
    out = compressed_msg_to_rgb(SimpleNamespace(format=fmt, data=array.array('B', data)))
    assert out.flags.c_contiguous
    assert_blocks(out)


@pytest.mark.parametrize('fmt', ['png', 'rgb8; png compressed bgr8'])
def test_compressed_png_is_exact(fmt: str) -> None:
    out_fmt, data = rgb_to_compressed(gradient(), 'png')
    assert out_fmt == 'png'
    assert data[:8] == b'\x89PNG\r\n\x1a\n'
    out = compressed_msg_to_rgb(SimpleNamespace(format=fmt, data=array.array('B', data)))
    np.testing.assert_array_equal(out, gradient())


def test_rgb_to_compressed_aliases_and_errors() -> None:
    assert rgb_to_compressed(gradient(), 'JPG')[0] == 'jpeg'
    assert rgb_to_compressed(gradient(), ' PNG ')[0] == 'png'
    with pytest.raises(ImageError, match='unsupported compressed format'):
        rgb_to_compressed(gradient(), 'webp')
    with pytest.raises(ImageError, match='quality'):
        rgb_to_compressed(gradient(), 'jpeg', 0)
    with pytest.raises(ImageError, match='quality'):
        rgb_to_compressed(gradient(), 'jpeg', 101)
    with pytest.raises(ImageError):
        rgb_to_compressed(np.zeros((0, 4, 3), np.uint8))


def test_jpeg_quality_changes_size() -> None:
    rng = np.random.default_rng(1)
    noisy = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert len(rgb_to_compressed(noisy, 'jpeg', 20)[1]) < len(rgb_to_compressed(noisy, 'jpeg', 95)[1])


@pytest.mark.parametrize('cut', [1, 2, 10, 0.5, 0.9])
def test_truncated_jpeg(cut: float) -> None:
    data = encode_jpeg(blocks())
    end = len(data) - int(cut) if cut >= 1 else int(len(data) * cut)
    with pytest.raises(ImageError, match='truncated JPEG'):
        compressed_msg_to_rgb(SimpleNamespace(format='jpeg', data=data[:end]))
    with pytest.raises(ImageError, match='truncated JPEG'):
        decode_jpeg(data[:end])


def test_truncated_png() -> None:
    data = rgb_to_compressed(gradient(), 'png')[1]
    for end in (len(data) - 1, len(data) // 2, 9):
        with pytest.raises(ImageError, match='truncated PNG'):
            compressed_msg_to_rgb(SimpleNamespace(format='png', data=data[:end]))


def test_corrupt_png_body() -> None:
    data = bytearray(rgb_to_compressed(gradient(40, 40), 'png')[1])
    data[40:60] = bytes(20)
    with pytest.raises(ImageError, match='could not decode PNG'):
        compressed_msg_to_rgb(SimpleNamespace(format='png', data=bytes(data)))


def test_zero_padded_jpeg_is_accepted() -> None:
    data = encode_jpeg(blocks(), 95) + bytes(5000)
    assert_blocks(compressed_msg_to_rgb(SimpleNamespace(format='jpeg', data=data)))


@pytest.mark.parametrize(
    ('fmt', 'data', 'match'),
    [
        ('jpeg', b'', 'empty'),
        ('jpeg', b'not an image at all', 'neither JPEG nor PNG'),
        ('16UC1; compressedDepth', bytes(12) + b'\x89PNG\r\n\x1a\n', 'compressedDepth is not supported'),
        ('jpeg', 'a string', 'bytes-like'),
        ('jpeg', None, 'bytes-like'),
    ],
)
def test_compressed_errors(fmt: str, data: Any, match: str) -> None:
    with pytest.raises(ImageError, match=match):
        compressed_msg_to_rgb(SimpleNamespace(format=fmt, data=data))


def test_compressed_missing_attribute() -> None:
    with pytest.raises(ImageError, match="no attribute 'format'"):
        compressed_msg_to_rgb(SimpleNamespace(data=b''))


def test_decode_jpeg_accepts_buffers() -> None:
    data = encode_jpeg(blocks(), 95)
    buffers = (data, bytearray(data), memoryview(data), array.array('B', data), np.frombuffer(data, np.uint8))
    for buffer in buffers:
        assert_blocks(decode_jpeg(buffer))


def test_encode_jpeg_rejects_bad_images() -> None:
    with pytest.raises(ImageError):
        encode_jpeg(np.zeros((4, 4), np.uint8))
    with pytest.raises(ImageError):
        encode_jpeg(np.zeros((4, 4, 4), np.uint8))


# ----------------------------------------------------------------------------------------------------
# Files and the real photo
# ----------------------------------------------------------------------------------------------------


def test_load_image_file_errors(tmp_path: Path) -> None:
    missing = tmp_path / 'nope.jpg'
    with pytest.raises(ImageError, match=r'nope\.jpg'):
        load_image_file(missing)
    text = tmp_path / 'notes.png'
    text.write_text('hello')
    with pytest.raises(ImageError, match=r'notes\.png.*neither JPEG nor PNG'):
        load_image_file(str(text))
    cut = tmp_path / 'cut.jpg'
    cut.write_bytes(encode_jpeg(blocks())[:-40])
    with pytest.raises(ImageError, match=r'cut\.jpg.*truncated'):
        load_image_file(cut)
    with pytest.raises(ImageError, match='cannot read'):
        load_image_file(tmp_path)  # a directory


def test_load_image_file_png_and_unicode_path(tmp_path: Path) -> None:
    path = tmp_path / 'bild_ä.png'
    path.write_bytes(rgb_to_compressed(gradient(), 'png')[1])
    np.testing.assert_array_equal(load_image_file(path), gradient())


def test_photo_loads(photo: Rgb) -> None:
    assert photo.shape == (512, 512, 3)
    assert photo.dtype == np.uint8
    assert photo.flags.c_contiguous
    assert 20 < float(photo.mean()) < 235
    assert float(photo.std()) > 10


def test_photo_png_round_trip_is_exact(photo: Rgb) -> None:
    fmt, data = rgb_to_compressed(photo, 'png')
    np.testing.assert_array_equal(compressed_msg_to_rgb(SimpleNamespace(format=fmt, data=data)), photo)


def test_photo_jpeg_round_trip_is_close(photo: Rgb) -> None:
    fmt, data = rgb_to_compressed(photo, 'jpeg', 95)
    out = compressed_msg_to_rgb(SimpleNamespace(format=fmt, data=array.array('B', data)))
    assert out.shape == photo.shape
    error = np.abs(out.astype(np.int16) - photo.astype(np.int16))
    assert float(error.mean()) < 3.0
    # Channel order is kept: per-channel means agree (a swap would move them by the channels' gap).
    np.testing.assert_allclose(out.reshape(-1, 3).mean(0), photo.reshape(-1, 3).mean(0), atol=1.5)


@pytest.mark.parametrize('encoding', ['rgb8', 'bgr8', 'bgra8', 'rgb16'])
def test_photo_through_image_fields(photo: Rgb, encoding: str) -> None:
    fields = rgb_to_image_fields(photo, encoding)
    np.testing.assert_array_equal(image_msg_to_rgb(image_msg(fields)), photo)
    np.testing.assert_array_equal(image_msg_to_rgb(pad_rows(fields, 32)), photo)


# ----------------------------------------------------------------------------------------------------
# Real rclpy message classes (no node needed)
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize('encoding', COLOUR_ENCODINGS + ALIAS_ENCODINGS + MONO_ENCODINGS)
def test_real_image_message(encoding: str) -> None:
    image = grey_gradient() if encoding in MONO_ENCODINGS else gradient()
    msg = real_image_msg(rgb_to_image_fields(image, encoding))
    assert isinstance(msg.data, array.array)
    np.testing.assert_array_equal(image_msg_to_rgb(msg), image)


def test_real_image_message_padded_big_endian() -> None:
    values = (np.arange(20, dtype=np.uint16).reshape(4, 5) * 3000).astype('>u2')
    rows = np.frombuffer(values.tobytes(), dtype=np.uint8).reshape(4, 10)
    padded = np.concatenate([rows, np.zeros((4, 6), dtype=np.uint8)], axis=1).tobytes()
    msg = real_image_msg(ImageFields(height=4, width=5, encoding='mono16', is_bigendian=1, step=16, data=padded))
    np.testing.assert_array_equal(image_msg_to_rgb(msg)[..., 0], (values >> 8).astype(np.uint8))


def test_real_image_message_size_mismatch() -> None:
    fields = rgb_to_image_fields(gradient())
    msg = real_image_msg(fields)
    msg.data = fields.data[:-1]
    with pytest.raises(ImageError, match='expected at least'):
        image_msg_to_rgb(msg)


def test_real_compressed_messages(photo: Rgb) -> None:
    msg = real_compressed_msg(*rgb_to_compressed(photo, 'png'))
    assert isinstance(msg.data, array.array)
    np.testing.assert_array_equal(compressed_msg_to_rgb(msg), photo)
    fmt, data = rgb_to_compressed(blocks(), 'jpeg')
    assert_blocks(compressed_msg_to_rgb(real_compressed_msg(fmt, data)))
    with pytest.raises(ImageError, match='truncated JPEG'):
        compressed_msg_to_rgb(real_compressed_msg(fmt, data[: len(data) // 2]))


@pytest.mark.parametrize('encoding', ['rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8'])
def test_agrees_with_rosbags_image(encoding: str) -> None:
    rosbags_image = pytest.importorskip('rosbags.image')
    image = grey_gradient() if encoding == 'mono8' else gradient()
    msg = image_msg(rgb_to_image_fields(image, encoding))
    np.testing.assert_array_equal(image_msg_to_rgb(msg), rosbags_image.message_to_cvimage(msg, 'rgb8'))


def test_module_imports_no_ros() -> None:
    code = (
        'import sys, actial_ros.imaging; '
        "bad = [m for m in sys.modules if m.split('.')[0] in ('rclpy', 'sensor_msgs', 'rosbags')]; "
        'assert not bad, bad'
    )
    subprocess.run([sys.executable, '-c', code], check=True)


# ----------------------------------------------------------------------------------------------------
# Model input: resize_max and jpeg_data_url
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ('shape', 'expected'),
    [
        ((1080, 1920), (540, 960)),
        ((3000, 1000), (540, 180)),
        ((540, 2000), (259, 960)),
        ((481, 641), (481, 641)),
    ],
)
def test_resize_max_shapes(shape: tuple[int, int], expected: tuple[int, int]) -> None:
    out = resize_max(np.zeros((*shape, 3), dtype=np.uint8))
    assert out.shape == (*expected, 3)
    assert out.dtype == np.uint8


def test_resize_max_keeps_aspect_ratio_within_a_pixel() -> None:
    for height, width in [(1000, 1777), (999, 3001), (2048, 1536), (700, 5000)]:
        out = resize_max(np.zeros((height, width, 3), dtype=np.uint8), 640, 480)
        h, w = out.shape[:2]
        assert w <= 640
        assert h <= 480
        assert w == 640 or h == 480
        scale = min(640 / width, 480 / height)  # one scale for both axes, each rounded to a pixel
        assert abs(w - width * scale) <= 0.5
        assert abs(h - height * scale) <= 0.5


def test_resize_max_never_upscales() -> None:
    small = gradient()
    assert resize_max(small) is small
    assert resize_max(small, 9, 6) is small


def test_resize_max_keeps_content() -> None:
    out = resize_max(blocks(), 24, 24)
    assert out.shape == (16, 24, 3)
    assert tuple(out[8, 2]) == RED
    assert tuple(out[8, 21]) == (0, 0, 255)


def test_resize_max_errors() -> None:
    with pytest.raises(ImageError, match='positive'):
        resize_max(gradient(), 0, 10)
    with pytest.raises(ImageError):
        resize_max(np.zeros((4, 4), np.uint8))


def test_jpeg_data_url() -> None:
    image = np.zeros((1080, 1920, 3), dtype=np.uint8)
    image[:, :960] = RED
    url = jpeg_data_url(image, quality=80)
    prefix = 'data:image/jpeg;base64,'
    assert url.startswith(prefix)
    decoded = decode_jpeg(base64.b64decode(url[len(prefix) :], validate=True))
    assert decoded.shape == (540, 960, 3)
    assert decoded[270, 100, 0] > 240
    assert decoded[270, 100, 1:].max() < 15
    assert decoded[270, 800].max() < 15
    assert decode_jpeg(base64.b64decode(jpeg_data_url(gradient()).split(',', 1)[1])).shape == (6, 9, 3)
