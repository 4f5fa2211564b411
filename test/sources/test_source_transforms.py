"""transforms.json source: a NeRF/nerfstudio capture written by the test from the shared capture."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from captures import SHARED_CAPTURE, needs_shared_capture

from actial_ros.errors import CaptureError, ImageError
from actial_ros.geometry import relative_pose
from actial_ros.imaging import decode_jpeg, encode_jpeg, resize_max
from actial_ros.sources.base import SourceKind
from actial_ros.sources.detection import detect_capture_kind
from actial_ros.sources.llff import LlffPosedCapture
from actial_ros.sources.transforms import TransformsCapture, opengl_to_opencv

pytestmark = needs_shared_capture


@pytest.fixture(scope='module')
def llff() -> LlffPosedCapture:
    return LlffPosedCapture.open(SHARED_CAPTURE)


def opengl(t_world_camera: Any) -> list[list[float]]:
    """OpenGL/Blender camera-to-world (x right, y UP, z BACK) of an OpenCV pose, written out by hand."""
    matrix = np.array(t_world_camera, dtype=np.float64)
    matrix[:3, 1] = -matrix[:3, 1]
    matrix[:3, 2] = -matrix[:3, 2]
    result: list[list[float]] = matrix.tolist()
    return result


def write_capture(llff: LlffPosedCapture, root: Path, *, nerf_synthetic: bool = False) -> dict[str, Any]:
    (root / 'images').mkdir(parents=True)
    k = llff.views[0].intrinsics
    assert k is not None
    frames = []
    for view in llff.views:
        os.symlink(SHARED_CAPTURE / 'images' / view.name, root / 'images' / view.name)
        path = f'./images/{Path(view.name).stem}' if nerf_synthetic else f'images/{view.name}'
        frames.append({'file_path': path, 'transform_matrix': opengl(view.t_world_camera)})
    if nerf_synthetic:
        # NeRF synthetic: field of view only, file paths without suffix (here the files are .JPG).
        data: dict[str, Any] = {'camera_angle_x': 2 * math.atan(0.5 * k.width / k.fx), 'frames': frames}
    else:
        data = {'fl_x': k.fx, 'fl_y': k.fy, 'cx': k.cx, 'cy': k.cy, 'w': k.width, 'h': k.height, 'frames': frames}
    (root / 'transforms.json').write_text(json.dumps(data))
    return data


def test_opengl_to_opencv_hand_case() -> None:
    # A Blender camera at the origin looking down world -z (its z axis points back, +z): in OpenCV its optical
    # axis is world -z, its x axis world +x and its y axis (down) world -y.
    pose = opengl_to_opencv(np.eye(4))
    np.testing.assert_array_equal(pose[:3, 2], (0.0, 0.0, -1.0))
    np.testing.assert_array_equal(pose[:3, 0], (1.0, 0.0, 0.0))
    np.testing.assert_array_equal(pose[:3, 1], (0.0, -1.0, 0.0))


@pytest.mark.parametrize('nerf_synthetic', [False, True])
def test_poses_and_intrinsics_match_the_capture(llff: LlffPosedCapture, tmp_path: Path, nerf_synthetic: bool) -> None:
    root = tmp_path / 'scene'
    write_capture(llff, root, nerf_synthetic=nerf_synthetic)
    assert detect_capture_kind(root) is SourceKind.TRANSFORMS
    capture = TransformsCapture.open(root)
    assert capture.object_id == 'scene' and not capture.skips
    assert [Path(v.name).name for v in capture.views] == [v.name for v in llff.views]
    for mine, theirs in zip(capture.views, llff.views, strict=True):
        np.testing.assert_allclose(mine.t_world_camera, theirs.t_world_camera, atol=1e-12)
        assert mine.intrinsics is not None and theirs.intrinsics is not None
        assert mine.intrinsics.fx == pytest.approx(theirs.intrinsics.fx)
        assert (mine.intrinsics.width, mine.intrinsics.height) == (512, 512)
    rel = relative_pose(capture.views[0].t_world_camera, capture.views[8].t_world_camera)
    expected = relative_pose(llff.views[0].t_world_camera, llff.views[8].t_world_camera)
    assert rel.yaw_deg == pytest.approx(expected.yaw_deg, abs=1e-9)
    np.testing.assert_array_equal(capture.load_image(2), llff.load_image(2))


def test_downscaled_images_scale_the_intrinsics(llff: LlffPosedCapture, tmp_path: Path) -> None:
    root = tmp_path / 'scene'
    data = write_capture(llff, root)
    data.update(w=1024, h=1024, fl_x=2 * data['fl_x'], fl_y=2 * data['fl_y'], cx=512.0, cy=512.0)
    (root / 'transforms.json').write_text(json.dumps(data))
    k = TransformsCapture.open(root).views[0].intrinsics
    assert k is not None and k.width == 512
    assert k.fx == pytest.approx(data['fl_x'] / 2) and k.cx == pytest.approx(256.0)


def test_iter_jpeg_stores_files_within_the_limits_and_keeps_the_size_check(
    llff: LlffPosedCapture, tmp_path: Path
) -> None:
    root = tmp_path / 'scene'
    write_capture(llff, root)
    odd = root / 'images' / llff.views[3].name
    odd.unlink()
    odd.write_bytes(encode_jpeg(resize_max(llff.load_image(3), 256, 256)))  # 256x256, intrinsics say 512x512
    capture = TransformsCapture.open(root)
    results = dict(capture.iter_jpeg([5, 3, 2, 5]))
    assert sorted(results) == [2, 3, 5]
    for index in (2, 5):
        assert results[index] == (SHARED_CAPTURE / 'images' / llff.views[index].name).read_bytes()
    error = results[3]
    assert isinstance(error, ImageError) and 'is 256x256, expected 512x512' in str(error)
    with pytest.raises(ImageError, match='is 256x256, expected 512x512'):
        capture.load_image(3)
    # Smaller limits: decoded at reduced scale and encoded, at the size a full decode + resize gives.
    small = dict(capture.iter_jpeg([2], max_width=200, max_height=100, quality=80))[2]
    assert isinstance(small, bytes) and decode_jpeg(small).shape == (100, 100, 3)
    with pytest.raises(ImageError, match='resize limits'):
        dict(capture.iter_jpeg([2], max_width=0))


def test_bad_frames_are_counted_not_used(llff: LlffPosedCapture, tmp_path: Path) -> None:
    root = tmp_path / 'scene'
    data = write_capture(llff, root)
    frames = data['frames']
    scaled = np.array(frames[0]['transform_matrix'])
    scaled[:3, :3] *= 2.0  # a scaled rotation is not a rotation
    frames[0]['transform_matrix'] = scaled.tolist()
    frames[1]['transform_matrix'][0][3] = float('nan')
    reflected = np.array(frames[2]['transform_matrix'])
    reflected[:3, 0] *= -1.0  # determinant -1
    frames[2]['transform_matrix'] = reflected.tolist()
    frames[3]['transform_matrix'] = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    frames[4]['file_path'] = 'images/missing.jpg'
    (root / 'transforms.json').write_text(json.dumps(data))
    capture = TransformsCapture.open(root)
    assert capture.skips == {'bad_pose': 4, 'missing_image': 1}
    assert len(capture.views) == len(llff.views) - 5


def test_unusable_files_are_capture_errors(llff: LlffPosedCapture, tmp_path: Path) -> None:
    root = tmp_path / 'scene'
    data = write_capture(llff, root)
    (root / 'transforms.json').write_text('{"frames": ')
    with pytest.raises(CaptureError, match='cannot read'):
        TransformsCapture.open(root)
    del data['fl_x'], data['fl_y']
    (root / 'transforms.json').write_text(json.dumps(data))
    with pytest.raises(CaptureError, match='focal'):
        TransformsCapture.open(root)
    (root / 'transforms.json').write_text(
        json.dumps({'frames': [{'file_path': 'images/missing.jpg', 'transform_matrix': np.eye(4).tolist()}]})
    )
    with pytest.raises(CaptureError, match='no usable frame'):
        TransformsCapture.open(root)
