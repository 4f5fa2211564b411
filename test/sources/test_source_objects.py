"""An MVImgNet-style directory of objects of every kind, walked as one source."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from captures import SHARED_CAPTURE, needs_shared_capture

from actial_ros.bags.export import write_capture_bag
from actial_ros.errors import CaptureError, ConfigError
from actial_ros.sources.base import CaptureRef, SourceKind
from actial_ros.sources.discovery import check_unique_ids, discover, open_capture, parse_source
from actial_ros.sources.llff import LlffPosedCapture

pytestmark = needs_shared_capture


def make_objects(root: Path) -> LlffPosedCapture:
    llff = LlffPosedCapture.open(SHARED_CAPTURE)
    # cat_a/head_llff: the capture itself (symlinks).
    (root / 'cat_a' / 'head_llff').mkdir(parents=True)
    os.symlink(SHARED_CAPTURE / 'images', root / 'cat_a' / 'head_llff' / 'images')
    os.symlink(SHARED_CAPTURE / 'poses_bounds.npy', root / 'cat_a' / 'head_llff' / 'poses_bounds.npy')
    # cat_a/head_colmap: a COLMAP text model over the same images (as MVImgNet ships objects).
    colmap = root / 'cat_a' / 'head_colmap'
    (colmap / 'sparse' / '0').mkdir(parents=True)
    os.symlink(SHARED_CAPTURE / 'images', colmap / 'images')
    k = llff.views[0].intrinsics
    assert k is not None
    (colmap / 'sparse' / '0' / 'cameras.txt').write_text(f'1 PINHOLE 512 512 {k.fx} {k.fy} {k.cx} {k.cy}\n')
    from scipy.spatial.transform import Rotation

    lines = []
    for index, view in enumerate(llff.views[:20]):
        rotation = view.t_world_camera[:3, :3].T
        x, y, z, w = Rotation.from_matrix(rotation).as_quat()
        tx, ty, tz = -rotation @ view.t_world_camera[:3, 3]
        lines += [f'{index + 1} {w} {x} {y} {z} {tx} {ty} {tz} 1 {view.name}', '']
    (colmap / 'sparse' / '0' / 'images.txt').write_text('\n'.join(lines) + '\n')
    (colmap / 'sparse' / '0' / 'points3D.txt').write_text('')
    # cat_b/head_nerf: transforms.json.
    nerf = root / 'cat_b' / 'head_nerf'
    nerf.mkdir(parents=True)
    os.symlink(SHARED_CAPTURE / 'images', nerf / 'images')
    frames = []
    for view in llff.views[20:40]:
        matrix = np.array(view.t_world_camera)
        matrix[:3, 1:3] *= -1.0
        frames.append({'file_path': f'images/{view.name}', 'transform_matrix': matrix.tolist()})
    (nerf / 'transforms.json').write_text(json.dumps({'fl_x': k.fx, 'fl_y': k.fy, 'frames': frames}))
    # cat_b/robot: a bag; cat_b/notes/images: pictures without poses (rejected); .hidden: ignored.
    write_capture_bag(llff, root / 'cat_b' / 'robot', rate_hz=10.0)
    (root / 'cat_b' / 'notes' / 'images').mkdir(parents=True)
    (root / '.hidden' / 'x').mkdir(parents=True)
    os.symlink(SHARED_CAPTURE / 'images', root / '.hidden' / 'x' / 'images')
    os.symlink(SHARED_CAPTURE / 'poses_bounds.npy', root / '.hidden' / 'x' / 'poses_bounds.npy')
    return llff


def test_every_kind_is_found_with_a_path_id(tmp_path: Path) -> None:
    root = tmp_path / 'objects'
    llff = make_objects(root)
    refs, rejected = discover(f'objects:{root}')
    assert [(r.object_id, r.kind) for r in refs] == [
        ('cat_a/head_colmap', SourceKind.COLMAP),
        ('cat_a/head_llff', SourceKind.LLFF),
        ('cat_b/head_nerf', SourceKind.TRANSFORMS),
        ('cat_b/robot', SourceKind.ROSBAG),
    ]
    assert all(r.source == f'objects:{root}' for r in refs)
    assert [path for path, _ in rejected] == [str(root / 'cat_b' / 'notes')]
    sizes = {r.object_id: len(open_capture(r).views) for r in refs}
    assert sizes == {'cat_a/head_colmap': 20, 'cat_a/head_llff': 66, 'cat_b/head_nerf': 20, 'cat_b/robot': 66}
    # Every adapter gives the same pose for the same photo.
    expected = {v.name: v.t_world_camera for v in llff.views}
    for ref in refs[:3]:
        for view in open_capture(ref).views:
            np.testing.assert_allclose(view.t_world_camera, expected[Path(view.name).name], atol=1e-9)


def test_source_texts_and_duplicate_ids(tmp_path: Path) -> None:
    assert parse_source('rosbag:/a:b') == (SourceKind.ROSBAG, '/a:b')
    for bad in ('llff', 'zip:/x', 'llff:'):
        with pytest.raises(ConfigError):
            parse_source(bad)
    with pytest.raises(CaptureError, match='does not exist'):
        discover(f'llff:{tmp_path / "nothing"}')
    with pytest.raises(CaptureError, match='not a colmap capture'):
        discover(f'colmap:{SHARED_CAPTURE}')
    with pytest.raises(CaptureError, match='itself a llff capture'):
        discover(f'objects:{SHARED_CAPTURE}')
    with pytest.raises(CaptureError, match='no capture found'):
        discover(f'objects:{tmp_path}')
    a = CaptureRef(SourceKind.LLFF, '/x/head', 'head', 'llff:/x/head')
    b = CaptureRef(SourceKind.LLFF, '/y/head', 'head', 'llff:/y/head')
    with pytest.raises(ConfigError, match='unique'):
        check_unique_ids([a, b])
