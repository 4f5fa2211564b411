"""Tests of actial_ros.sources.llff on the shared capture, the bundled sample and synthetic captures."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from captures import SAMPLE_CAPTURE, SHARED_CAPTURE, needs_shared_capture

from actial_ros.enums import QuestionType, ViewpointLabel
from actial_ros.errors import ActialError, CaptureError
from actial_ros.geometry import LabelThresholds, relative_pose, viewpoint_label
from actial_ros.sources.llff import CaptureView, LlffCapture, llff_rotation_to_opencv

FloatArray = npt.NDArray[np.float64]


ORIGINAL_FOCAL = 7543.57464  # column 4 of every row of the shared capture (pixels at 4000x4000)


@pytest.fixture(scope='module')
def shared() -> LlffCapture:
    if not (SHARED_CAPTURE / 'poses_bounds.npy').is_file():
        pytest.skip(f'shared capture not found at {SHARED_CAPTURE}')
    return LlffCapture.open(SHARED_CAPTURE)


@pytest.fixture(scope='module')
def sample() -> LlffCapture:
    return LlffCapture.open(SAMPLE_CAPTURE)


def orbit_pairs(capture: LlffCapture) -> tuple[int, int]:
    """(number of ORDERED pairs i != j with 20 <= |yaw| <= 100, how many have opposite labels).

    Opposite: ego translation and rotation labels (threshold 0) are one LEFT and one RIGHT.
    """
    zero = LabelThresholds(translation_m=0.0, yaw_deg=0.0)
    selected = opposite = 0
    for i, view_1 in enumerate(capture.views):
        for j, view_2 in enumerate(capture.views):
            if i == j:
                continue
            rel = relative_pose(view_1.t_world_camera, view_2.t_world_camera)
            if not 20.0 <= rel.abs_yaw_deg <= 100.0:
                continue
            selected += 1
            ego = viewpoint_label(QuestionType.EGO_TRANSLATION, rel, zero)
            rot = viewpoint_label(QuestionType.ROTATION, rel, zero)
            if {ego, rot} == {ViewpointLabel.LEFT, ViewpointLabel.RIGHT}:
                opposite += 1
    return selected, opposite


def assert_valid_rotation(transform: FloatArray) -> None:
    rotation = transform[:3, :3]
    np.testing.assert_allclose(rotation.T @ rotation, np.eye(3), atol=1e-9)
    assert np.linalg.det(rotation) == pytest.approx(1.0, abs=1e-9)
    np.testing.assert_array_equal(transform[3], (0.0, 0.0, 0.0, 1.0))


# --- conversion -----------------------------------------------------------------------------------


def test_llff_rotation_to_opencv_hand_case() -> None:
    # An OpenCV camera aligned with the world (x right, y down, z forward = world x, y, z) has LLFF
    # columns down = (0, 1, 0), right = (1, 0, 0), back = (0, 0, -1).
    llff = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])
    np.testing.assert_array_equal(llff_rotation_to_opencv(llff), np.eye(3))


# --- the shared capture ---------------------------------------------------------------------------


@needs_shared_capture
def test_shared_capture_views(shared: LlffCapture) -> None:
    assert len(shared) == 66
    assert shared.name == 'ethiopian_head'
    names = [view.name for view in shared.views]
    assert names == sorted(names)
    assert names[0] == 'DSC_0007.JPG'
    for view in shared.views:
        assert isinstance(view, CaptureView)
        assert view.path.is_file() and view.path.name == view.name
        assert view.t_world_camera.shape == (4, 4) and view.t_world_camera.dtype == np.float64
        assert not view.t_world_camera.flags.writeable
        assert_valid_rotation(view.t_world_camera)
        k = view.intrinsics
        assert (k.width, k.height) == (512, 512)
        # fx = fy = 7543.57 * 512 / 4000 = 965.58 px; principal point at the centre (256, 256).
        assert k.fx == pytest.approx(ORIGINAL_FOCAL * 512 / 4000, rel=1e-6)
        assert k.fx == pytest.approx(965.577, abs=1e-2)
        assert k.fy == k.fx
        assert (k.cx, k.cy) == (256.0, 256.0)
        near, far = view.bounds
        assert 0 < near < far


@needs_shared_capture
def test_shared_capture_matches_raw_rows(shared: LlffCapture) -> None:
    raw = np.load(SHARED_CAPTURE / 'poses_bounds.npy')
    for view, row in zip(shared.views, raw, strict=True):
        matrix = row[:15].reshape(3, 5)
        # OpenCV x (right) = LLFF col 1, y (down) = col 0, z (forward) = -col 2 (back); centre = col 3.
        np.testing.assert_array_equal(view.t_world_camera[:3, 0], matrix[:, 1])
        np.testing.assert_array_equal(view.t_world_camera[:3, 1], matrix[:, 0])
        np.testing.assert_array_equal(view.t_world_camera[:3, 2], -matrix[:, 2])
        np.testing.assert_array_equal(view.t_world_camera[:3, 3], matrix[:, 3])
        assert view.bounds == (row[15], row[16])


@needs_shared_capture
def test_shared_capture_orbit_sanity_check(shared: LlffCapture) -> None:
    # CONVENTIONS.md: opposite on all 2,283 pairs with 20 <= |yaw| <= 100 -- these are ORDERED pairs
    # (i, j), i != j (1,142 unordered pairs i < j; |yaw| of (i, j) and (j, i) differ slightly).
    selected, opposite = orbit_pairs(shared)
    assert selected == 2283
    assert opposite >= 0.99 * selected
    assert opposite == selected


@needs_shared_capture
def test_shared_capture_load_frame(shared: LlffCapture) -> None:
    frame = shared.load_frame(3, stamp_ns=1_500_000_000)
    view = shared.views[3]
    assert frame.image.shape == (512, 512, 3) and frame.image.dtype == np.uint8
    assert frame.image.flags.c_contiguous
    assert frame.stamp_ns == 1_500_000_000
    assert frame.intrinsics == view.intrinsics
    assert frame.t_world_camera is not None
    np.testing.assert_array_equal(frame.t_world_camera, view.t_world_camera)
    assert frame.name == view.name == 'DSC_0010.JPG'
    assert frame.camera_id == 'ethiopian_head'
    # RGB order: compare with OpenCV's BGR decode.
    bgr = cv2.imread(str(view.path), cv2.IMREAD_COLOR)
    assert bgr is not None
    np.testing.assert_array_equal(frame.image, bgr[:, :, ::-1])


# --- the bundled sample ---------------------------------------------------------------------------


def test_sample_capture(sample: LlffCapture) -> None:
    assert len(sample) == 24
    assert sample.name == 'sample_capture'
    for view in sample.views:
        assert_valid_rotation(view.t_world_camera)
        assert (view.intrinsics.width, view.intrinsics.height) == (512, 512)
        assert view.intrinsics.fx == pytest.approx(ORIGINAL_FOCAL * 512 / 4000, rel=1e-6)
    raw = np.load(SAMPLE_CAPTURE / 'poses_bounds.npy')
    assert raw.dtype == np.float64 and raw.shape == (24, 17)
    attribution = (SAMPLE_CAPTURE / 'ATTRIBUTION.md').read_text(encoding='utf-8')
    assert 'CC BY-NC-SA 4.0' in attribution and 'Daniel Pett' in attribution
    frame = sample.load_frame(-1)
    assert frame.name == sample.views[-1].name
    with pytest.raises(IndexError):
        sample.load_frame(24)


def test_sample_capture_orbit_sanity_check(sample: LlffCapture) -> None:
    selected, opposite = orbit_pairs(sample)
    assert selected == 362  # ordered pairs (181 unordered)
    assert opposite == selected


@needs_shared_capture
def test_sample_is_every_second_of_the_first_48(sample: LlffCapture, shared: LlffCapture) -> None:
    expected = shared.views[0:48:2]
    assert [v.name for v in sample.views] == [v.name for v in expected]
    for mine, theirs in zip(sample.views, expected, strict=True):
        assert mine.path.read_bytes() == theirs.path.read_bytes()
        np.testing.assert_array_equal(mine.t_world_camera, theirs.t_world_camera)
        assert mine.bounds == theirs.bounds
    raw_sample = np.load(SAMPLE_CAPTURE / 'poses_bounds.npy')
    raw_shared = np.load(SHARED_CAPTURE / 'poses_bounds.npy')
    np.testing.assert_array_equal(raw_sample, raw_shared[0:48:2])


# --- synthetic captures and error cases -----------------------------------------------------------


def to_llff_row(transform: FloatArray, hwf: tuple[float, float, float], bounds: tuple[float, float]) -> FloatArray:
    """Inverse of the reader's conversion, written independently: (down, right, back) = (y, x, -z)."""
    rotation = transform[:3, :3]
    matrix = np.zeros((3, 5))
    matrix[:, 0] = rotation[:, 1]
    matrix[:, 1] = rotation[:, 0]
    matrix[:, 2] = -rotation[:, 2]
    matrix[:, 3] = transform[:3, 3]
    matrix[:, 4] = hwf
    return np.concatenate([matrix.reshape(-1), bounds])


def write_synthetic(
    root: Path,
    names: list[str],
    size: tuple[int, int] = (64, 48),
    hwf: tuple[float, float, float] = (480, 640, 500),
) -> FloatArray:
    """Write a capture of ``len(names)`` images (``size`` = (width, height)); camera k sits at (k, 0, 0)."""
    (root / 'images').mkdir(parents=True)
    rows = []
    for k, name in enumerate(names):
        image = np.full((size[1], size[0], 3), 10 * k, dtype=np.uint8)
        image[0, 0] = (255, 0, 0)  # RGB red in the top-left pixel
        assert cv2.imwrite(str(root / 'images' / name), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        transform = np.eye(4)
        transform[:3, 3] = (float(k), 0.0, 0.0)
        rows.append(to_llff_row(transform, hwf, (0.5, 5.0)))
    poses = np.stack(rows)
    np.save(root / 'poses_bounds.npy', poses)
    return poses


def test_synthetic_order_suffixes_and_intrinsics(tmp_path: Path) -> None:
    # Written in this order; sorted by name (code points): 'A.JPG' < 'b.png' < 'c.jpeg'. Row k holds
    # camera centre (k, 0, 0), so row 0 must land on 'A.JPG'.
    root = tmp_path / 'synthetic'
    write_synthetic(root, ['A.JPG', 'b.png', 'c.jpeg'])
    (root / 'images' / 'notes.txt').write_text('not an image')
    (root / 'images' / '.hidden.png').write_bytes(b'')
    (root / 'images' / 'sub.png').mkdir()
    capture = LlffCapture.open(root)
    assert [v.name for v in capture.views] == ['A.JPG', 'b.png', 'c.jpeg']
    for k, view in enumerate(capture.views):
        expected = np.eye(4)
        expected[0, 3] = k
        np.testing.assert_array_equal(view.t_world_camera, expected)
        # Original 640x480 with focal 500; images 64x48: fx = fy = 500 * 64 / 640 = 50, cx = 32, cy = 24.
        k_ = view.intrinsics
        assert (k_.fx, k_.fy, k_.cx, k_.cy, k_.width, k_.height) == (50.0, 50.0, 32.0, 24.0, 64, 48)
    frame = capture.load_frame(1)
    assert frame.image.shape == (48, 64, 3)
    assert tuple(frame.image[0, 0]) == (255, 0, 0)  # RGB, not BGR
    assert frame.name == 'b.png' and frame.camera_id == 'synthetic'


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match='does not exist'):
        LlffCapture.open(tmp_path / 'nope')
    (tmp_path / 'file').write_text('x')
    with pytest.raises(CaptureError, match='not a directory'):
        LlffCapture.open(tmp_path / 'file')


def test_missing_poses_file(tmp_path: Path) -> None:
    write_synthetic(tmp_path / 'c', ['a.png', 'b.png'])
    (tmp_path / 'c' / 'poses_bounds.npy').unlink()
    with pytest.raises(CaptureError, match=r'poses_bounds\.npy is missing'):
        LlffCapture.open(tmp_path / 'c')


def test_missing_images_folder_or_no_images(tmp_path: Path) -> None:
    write_synthetic(tmp_path / 'c', ['a.png'])
    shutil.rmtree(tmp_path / 'c' / 'images')
    with pytest.raises(CaptureError, match='images/ folder is missing'):
        LlffCapture.open(tmp_path / 'c')
    (tmp_path / 'c' / 'images').mkdir()
    (tmp_path / 'c' / 'images' / 'readme.txt').write_text('x')
    with pytest.raises(CaptureError, match='no image files'):
        LlffCapture.open(tmp_path / 'c')


def test_row_count_mismatch(tmp_path: Path) -> None:
    poses = write_synthetic(tmp_path / 'c', ['a.png', 'b.png', 'c.png'])
    np.save(tmp_path / 'c' / 'poses_bounds.npy', poses[:2])
    with pytest.raises(CaptureError, match='2 pose rows but 3 images'):
        LlffCapture.open(tmp_path / 'c')


@pytest.mark.parametrize('shape', [(2, 15), (2, 17, 1), (34,)])
def test_wrong_shape(tmp_path: Path, shape: tuple[int, ...]) -> None:
    write_synthetic(tmp_path / 'c', ['a.png', 'b.png'])
    np.save(tmp_path / 'c' / 'poses_bounds.npy', np.zeros(shape))
    with pytest.raises(CaptureError, match=r'\(N, 17\)'):
        LlffCapture.open(tmp_path / 'c')


def test_unreadable_poses_file(tmp_path: Path) -> None:
    write_synthetic(tmp_path / 'c', ['a.png'])
    (tmp_path / 'c' / 'poses_bounds.npy').write_bytes(b'not numpy')
    with pytest.raises(CaptureError, match='cannot read'):
        LlffCapture.open(tmp_path / 'c')
    np.save(tmp_path / 'c' / 'poses_bounds.npy', np.array([['a'] * 17]))
    with pytest.raises(CaptureError, match='numeric'):
        LlffCapture.open(tmp_path / 'c')


@pytest.mark.parametrize('value', [np.nan, np.inf])
def test_non_finite_poses(tmp_path: Path, value: float) -> None:
    poses = write_synthetic(tmp_path / 'c', ['a.png', 'b.png'])
    poses[1, 16] = value
    np.save(tmp_path / 'c' / 'poses_bounds.npy', poses)
    with pytest.raises(CaptureError, match=r'non-finite values in rows \[1\]'):
        LlffCapture.open(tmp_path / 'c')


def test_invalid_rotation(tmp_path: Path) -> None:
    poses = write_synthetic(tmp_path / 'c', ['a.png', 'b.png'])
    reflected = poses.copy()
    reflected[1, [2, 7, 12]] *= -1.0  # flip the back column: determinant -1
    np.save(tmp_path / 'c' / 'poses_bounds.npy', reflected)
    with pytest.raises(CaptureError, match=r'b\.png.*determinant'):
        LlffCapture.open(tmp_path / 'c')
    scaled = poses.copy()
    scaled[0, [0, 5, 10]] *= 1.01
    np.save(tmp_path / 'c' / 'poses_bounds.npy', scaled)
    with pytest.raises(CaptureError, match=r'a\.png.*orthonormal'):
        LlffCapture.open(tmp_path / 'c')


def test_bad_original_size_or_focal(tmp_path: Path) -> None:
    poses = write_synthetic(tmp_path / 'c', ['a.png'])
    poses[0, 14] = 0.0  # focal
    np.save(tmp_path / 'c' / 'poses_bounds.npy', poses)
    with pytest.raises(CaptureError, match='non-positive'):
        LlffCapture.open(tmp_path / 'c')


def test_aspect_ratio_mismatch(tmp_path: Path) -> None:
    # 48x64 (portrait) images but poses for 640x480 (landscape) photos.
    write_synthetic(tmp_path / 'c', ['a.png'], size=(48, 64))
    with pytest.raises(CaptureError, match='aspect ratio'):
        LlffCapture.open(tmp_path / 'c')


def test_corrupt_first_image_fails_open(tmp_path: Path) -> None:
    write_synthetic(tmp_path / 'c', ['a.png', 'b.png'])
    (tmp_path / 'c' / 'images' / 'a.png').write_bytes(b'\x89PNG garbage')
    with pytest.raises(CaptureError, match=r'a\.png'):
        LlffCapture.open(tmp_path / 'c')


def test_corrupt_later_image_fails_load_frame(tmp_path: Path) -> None:
    root = tmp_path / 'c'
    (root / 'images').mkdir(parents=True)
    names = sorted(p.name for p in (SAMPLE_CAPTURE / 'images').iterdir())[:3]
    for name in names:
        shutil.copyfile(SAMPLE_CAPTURE / 'images' / name, root / 'images' / name)
    np.save(root / 'poses_bounds.npy', np.load(SAMPLE_CAPTURE / 'poses_bounds.npy')[:3])
    # Truncate the second JPEG (no end-of-image marker) and replace the third with garbage.
    second = root / 'images' / names[1]
    second.write_bytes(second.read_bytes()[:2000])
    (root / 'images' / names[2]).write_bytes(b'\xff\xd8 this is not a jpeg \xff\xd9')
    capture = LlffCapture.open(root)
    assert capture.load_frame(0).image.shape == (512, 512, 3)
    with pytest.raises(CaptureError, match=re.escape(names[1])):
        capture.load_frame(1)
    with pytest.raises(CaptureError, match=re.escape(names[2])):
        capture.load_frame(2)
    (root / 'images' / names[2]).write_bytes(b'')
    with pytest.raises(CaptureError, match='empty'):
        capture.load_frame(2)


def test_size_mismatch_on_load_frame(tmp_path: Path) -> None:
    root = tmp_path / 'c'
    write_synthetic(root, ['a.png', 'b.png'])
    cv2.imwrite(str(root / 'images' / 'b.png'), np.zeros((24, 32, 3), dtype=np.uint8))
    capture = LlffCapture.open(root)  # only the first image is decoded at open time
    with pytest.raises(CaptureError, match=r'b\.png is 32x24 but the capture expects 64x48'):
        capture.load_frame(1)


def test_capture_error_is_an_actial_error() -> None:
    assert issubclass(CaptureError, ActialError)
