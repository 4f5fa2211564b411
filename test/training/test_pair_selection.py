"""Pair selection of the viewpoint builder: range, balance, cap, determinism, ambiguity, scale."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from actial_ros.training.dataset.pair_selection import (
    PairConfig,
    label_thresholds,
    object_scale,
    select_pairs,
    yaw_bin_edges,
    yaw_bin_index,
)
from captures import SHARED_CAPTURE, needs_shared_capture
from scipy.spatial.transform import Rotation

from actial_ros.errors import ConfigError
from actial_ros.geometry import LabelThresholds, relative_pose
from actial_ros.sources.llff import LlffPosedCapture


def ring(count: int, radius: float = 3.0, height: float = 0.0) -> np.ndarray:
    """Cameras on a circle around the origin (world z up), looking at it, optical y pointing down."""
    poses = []
    for k in range(count):
        angle = 2 * np.pi * k / count
        centre = np.array([radius * np.cos(angle), radius * np.sin(angle), height])
        forward = -centre / np.linalg.norm(centre)
        down = np.array([0.0, 0.0, -1.0])
        right = np.cross(down, forward)
        pose = np.eye(4)
        pose[:3, :3] = np.stack([right, down, forward], axis=1)
        pose[:3, 3] = centre
        poses.append(pose)
    return np.stack(poses)


@pytest.fixture(scope='module')
def shared_poses() -> np.ndarray:
    if not (SHARED_CAPTURE / 'poses_bounds.npy').is_file():
        pytest.skip('no shared capture')
    return LlffPosedCapture.open(SHARED_CAPTURE).poses


def test_yaw_bins() -> None:
    edges = yaw_bin_edges()
    np.testing.assert_allclose(edges, [20, 20 + 80 / 6, 20 + 160 / 6, 60, 20 + 320 / 6, 20 + 400 / 6, 100])
    assert [yaw_bin_index(v, edges) for v in (20.0, 33.3, 33.34, 59.99, 60.0, 99.0, 100.0)] == [0, 0, 1, 2, 3, 5, 5]
    assert yaw_bin_index(19.99, edges) is None and yaw_bin_index(100.01, edges) is None
    with pytest.raises(ConfigError):
        PairConfig(min_yaw_deg=50, max_yaw_deg=40)
    with pytest.raises(ConfigError):
        PairConfig(ambiguity_factor=0.5)


def test_object_scale() -> None:
    assert object_scale(ring(24, radius=3.0)) == pytest.approx(3.0)
    line = np.stack([np.eye(4)] * 5)
    line[:, 0, 3] = np.arange(5.0)  # all looking the same way along a line: no object centre
    assert object_scale(line) == pytest.approx(1.0)
    assert object_scale(np.stack([np.eye(4)] * 3)) == 0.0


@needs_shared_capture
def test_pairs_are_in_range_balanced_capped_and_deterministic(shared_poses: np.ndarray) -> None:
    config = PairConfig(max_pairs=60)
    thresholds = label_thresholds(config, metric=False, scale=object_scale(shared_poses))
    selection = select_pairs(shared_poses, config, thresholds=thresholds, seed=3, key='head')
    assert selection.pairs.shape == (60, 2) and selection.stats['candidates'] == 2283
    cells: Counter[tuple[int | None, bool]] = Counter()
    unordered = set()
    for i, j in selection.pairs:
        rel = relative_pose(shared_poses[i], shared_poses[j])
        assert 20.0 <= rel.abs_yaw_deg <= 100.0 and i != j
        cells[(yaw_bin_index(rel.abs_yaw_deg, config.edges), rel.yaw_deg > 0)] += 1
        unordered.add((min(i, j), max(i, j)))
    assert len(unordered) == 60  # never the same two views twice
    assert cells == {(b, right): 5 for b in range(6) for right in (False, True)}  # 12 cells x 5
    again = select_pairs(shared_poses, config, thresholds=thresholds, seed=3, key='head')
    np.testing.assert_array_equal(again.pairs, selection.pairs)
    other_seed = select_pairs(shared_poses, config, thresholds=thresholds, seed=4, key='head')
    other_object = select_pairs(shared_poses, config, thresholds=thresholds, seed=3, key='head2')
    assert not np.array_equal(other_seed.pairs, selection.pairs)
    assert not np.array_equal(other_object.pairs, selection.pairs)
    # Uncapped: every unordered pair at most once.
    everything = select_pairs(shared_poses, PairConfig(max_pairs=None), thresholds=thresholds, seed=0, key='h')
    keys = {(min(i, j), max(i, j)) for i, j in everything.pairs}
    assert len(keys) == len(everything.pairs) > 1000


def test_ambiguous_translations_are_left_out() -> None:
    # Cameras that only rotate in place (metric): t12 = 0, far below the threshold: label "none", kept.
    in_place = np.stack([np.eye(4)] * 8)
    for k in range(8):
        in_place[k, :3, :3] = Rotation.from_euler('y', 15.0 * k, degrees=True).as_matrix()
    config = PairConfig(max_pairs=None)
    thresholds = LabelThresholds(translation_m=0.01, yaw_deg=2.0)
    kept = select_pairs(in_place, config, thresholds=thresholds, seed=0, key='x')
    assert len(kept.pairs) > 0 and kept.stats['ambiguous_translation'] == 0
    # The same rotations with the camera 1 cm off the axis: |t12.x| close to the 1 cm threshold: left out.
    offset = in_place.copy()
    for k in range(8):
        offset[k, :3, 3] = offset[k, :3, :3] @ np.array([0.0, 0.0, -0.012])
    ambiguous = select_pairs(offset, config, thresholds=thresholds, seed=0, key='x')
    assert ambiguous.stats['ambiguous_translation'] > 0
    for i, j in ambiguous.pairs:
        tx = abs(relative_pose(offset[i], offset[j]).translation[0])
        assert not 0.005 <= tx < 0.02
    # With the factor at 1 nothing is left out.
    plain = select_pairs(
        offset, PairConfig(max_pairs=None, ambiguity_factor=1.0), thresholds=thresholds, seed=0, key='x'
    )
    assert len(plain.pairs) > len(ambiguous.pairs) and plain.stats['ambiguous_translation'] == 0
