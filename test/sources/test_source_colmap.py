"""COLMAP source: models written by the test from the shared capture (text by hand, binary with pycolmap)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from captures import SHARED_CAPTURE, needs_shared_capture
from scipy.spatial.transform import Rotation

from actial_ros.enums import QuestionType
from actial_ros.errors import CaptureError, ImageError
from actial_ros.geometry import relative_pose, viewpoint_label
from actial_ros.sources.base import SourceKind
from actial_ros.sources.colmap import ColmapCapture, find_model_dir
from actial_ros.sources.detection import detect_capture_kind
from actial_ros.sources.discovery import discover
from actial_ros.sources.llff import LlffPosedCapture

pycolmap = pytest.importorskip('pycolmap')

pytestmark = needs_shared_capture

FloatArray = npt.NDArray[np.float64]


@pytest.fixture(scope='module')
def llff() -> LlffPosedCapture:
    return LlffPosedCapture.open(SHARED_CAPTURE)


def world_to_camera(t_world_camera: FloatArray) -> tuple[FloatArray, FloatArray]:
    """COLMAP's (qvec w x y z, tvec) of a camera-to-world pose, computed independently of the reader."""
    rotation = t_world_camera[:3, :3].T
    translation = -rotation @ t_world_camera[:3, 3]
    x, y, z, w = Rotation.from_matrix(rotation).as_quat()
    return np.array([w, x, y, z]), translation


def link_images(capture: LlffPosedCapture, folder: Path, names: list[str] | None = None) -> None:
    folder.mkdir(parents=True)
    for view in capture.views if names is None else [v for v in capture.views if v.name in names]:
        os.symlink(SHARED_CAPTURE / 'images' / view.name, folder / view.name)


def write_text_model(capture: LlffPosedCapture, model: Path, *, extra: str = '', camera_size: int = 512) -> None:
    """An old-style (MVImgNet) text model: cameras.txt, images.txt, points3D.txt; no rigs or frames."""
    model.mkdir(parents=True)
    k = capture.views[0].intrinsics
    assert k is not None
    scale = camera_size / k.width
    (model / 'cameras.txt').write_text(
        f'# Camera list\n1 PINHOLE {camera_size} {camera_size} {k.fx * scale} {k.fy * scale} '
        f'{k.cx * scale} {k.cy * scale}\n'
    )
    lines = ['# Image list']
    for index, view in enumerate(capture.views):
        q, t = world_to_camera(view.t_world_camera)
        lines.append(f'{index + 1} {" ".join(repr(float(v)) for v in (*q, *t))} 1 {view.name}')
        lines.append('')
    (model / 'images.txt').write_text('\n'.join(lines) + extra + '\n')
    (model / 'points3D.txt').write_text('# 3D point list\n')


def write_binary_model(capture: LlffPosedCapture, model: Path) -> None:
    model.mkdir(parents=True)
    reconstruction = pycolmap.Reconstruction()
    k = capture.views[0].intrinsics
    assert k is not None
    camera = pycolmap.Camera(
        model='SIMPLE_RADIAL', width=k.width, height=k.height, params=[k.fx, k.cx, k.cy, 0.01], camera_id=1
    )
    reconstruction.add_camera_with_trivial_rig(camera)
    for index, view in enumerate(capture.views):
        rotation = view.t_world_camera[:3, :3].T
        pose = pycolmap.Rigid3d(pycolmap.Rotation3d(rotation), -rotation @ view.t_world_camera[:3, 3])
        image = pycolmap.Image(name=view.name, camera_id=1, image_id=index + 1)
        reconstruction.add_image_with_trivial_frame(image, pose)
    reconstruction.write_binary(str(model))


def assert_same_poses(colmap: ColmapCapture, llff: LlffPosedCapture) -> None:
    assert [v.name for v in colmap.views] == [v.name for v in llff.views]
    for mine, theirs in zip(colmap.views, llff.views, strict=True):
        np.testing.assert_allclose(mine.t_world_camera, theirs.t_world_camera, atol=1e-9)


def test_text_model_like_mvimgnet(llff: LlffPosedCapture, tmp_path: Path) -> None:
    root = tmp_path / 'object_1'
    link_images(llff, root / 'images')
    write_text_model(llff, root / 'sparse' / '0', camera_size=1024)  # reconstructed at twice the size on disk
    assert detect_capture_kind(root) is SourceKind.COLMAP
    assert find_model_dir(root) == root / 'sparse' / '0'
    capture = ColmapCapture.open(root)
    assert capture.object_id == 'object_1' and not capture.skips
    assert_same_poses(capture, llff)
    # Intrinsics scaled from the 1024-pixel model to the 512-pixel images on disk.
    k, expected = capture.views[3].intrinsics, llff.views[3].intrinsics
    assert k is not None and expected is not None
    assert (k.width, k.height) == (512, 512)
    assert k.fx == pytest.approx(expected.fx) and k.cx == pytest.approx(expected.cx)
    # Labels of every in-range pair equal the LLFF ones (same geometry, one implementation).
    for i, j in [(0, 5), (5, 0), (10, 30), (40, 20)]:
        ours = relative_pose(capture.views[i].t_world_camera, capture.views[j].t_world_camera)
        theirs = relative_pose(llff.views[i].t_world_camera, llff.views[j].t_world_camera)
        assert ours.yaw_deg == pytest.approx(theirs.yaw_deg, abs=1e-7)
        for kind in QuestionType:
            assert viewpoint_label(kind, ours) == viewpoint_label(kind, theirs)
    frame = next(capture.frames())
    assert frame.image.shape == (512, 512, 3) and frame.name == llff.views[0].name
    np.testing.assert_array_equal(capture.load_image(0), llff.load_image(0))


def test_binary_model_with_rigs_and_frames(llff: LlffPosedCapture, tmp_path: Path) -> None:
    root = tmp_path / 'obj'
    link_images(llff, root / 'images')
    write_binary_model(llff, root / 'sparse' / '0')
    refs, _ = discover(f'colmap:{root}')
    assert len(refs) == 1 and refs[0].object_id == 'obj'
    capture = ColmapCapture.open(root)
    assert_same_poses(capture, llff)


def test_missing_unregistered_and_corrupt_images_are_counted(llff: LlffPosedCapture, tmp_path: Path) -> None:
    root = tmp_path / 'obj'
    names = [v.name for v in llff.views[1:]]  # the first image is missing on disk
    link_images(llff, root / 'images', names)
    (root / 'images' / names[0]).unlink()
    (root / 'images' / names[0]).write_bytes(b'\xff\xd8\xff\xe0 not a jpeg \xff\xd9')
    # Extra entries: a zero quaternion (pycolmap would make it an identity rotation), a quaternion of norm 2,
    # both with existing image files, and an image file that is missing.
    os.symlink(SHARED_CAPTURE / 'images' / names[1], root / 'images' / 'zero.jpg')
    os.symlink(SHARED_CAPTURE / 'images' / names[1], root / 'images' / 'double.jpg')
    extra = '\n997 0 0 0 0 0 0 0 1 zero.jpg\n\n998 2 0 0 0 0 0 0 1 double.jpg\n\n999 1 0 0 0 0 0 0 1 ghost.jpg\n'
    write_text_model(llff, root / 'sparse' / '0', extra=extra)
    capture = ColmapCapture.open(root)
    assert capture.skips == {'missing_image': 2, 'bad_pose': 2}  # DSC first image and ghost.jpg; zero and double
    assert len(capture.views) == len(llff.views) - 1
    assert {v.name for v in capture.views} == set(names)
    with pytest.raises(ImageError):
        capture.load_image(0)
    results = dict(capture.iter_images([0, 1]))
    assert isinstance(results[0], ImageError) and isinstance(results[1], np.ndarray)


def test_unreadable_model_is_a_capture_error(tmp_path: Path) -> None:
    root = tmp_path / 'obj'
    (root / 'images').mkdir(parents=True)
    model = root / 'sparse' / '0'
    model.mkdir(parents=True)
    (model / 'cameras.txt').write_text('1 PINHOLE 10 10 not numbers\n')
    (model / 'images.txt').write_text('')
    (model / 'points3D.txt').write_text('')
    with pytest.raises(CaptureError):
        ColmapCapture.open(root)
    with pytest.raises(CaptureError, match='no COLMAP model'):
        ColmapCapture.open(tmp_path)
