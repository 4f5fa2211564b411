"""Planning a viewpoint build (steps 2 to 4 of :mod:`actial_ros.training.dataset.build`): the pairs of each object
(:func:`plan_object`), the split by object (:func:`assign_splits`) and the shards (:func:`make_shards`).
Poses only: no image is read here.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from actial_ros.training.dataset.pair_selection import PairConfig, label_thresholds, object_scale, select_pairs

from actial_ros.errors import ActialError
from actial_ros.geometry import LabelThresholds
from actial_ros.sources.base import CaptureRef, PosedCapture
from actial_ros.sources.discovery import open_capture

__all__ = ['ObjectPlan', 'ShardTask', 'assign_splits', 'capture_digest', 'make_shards', 'plan_object']


@dataclass(frozen=True)
class ObjectPlan:
    """The pairs chosen for one object (what a shard worker needs besides the capture itself).

    Attributes:
        ref: the capture.
        pairs: ``(K, 2)`` int32 view indices.
        thresholds: the object's label thresholds.
        metric: lengths in metres (bags) or capture units.
        views: usable views.
        digest: SHA-256 of the view names and poses (detects a capture that changed since planning).
        view_skips: views dropped when opening, by reason.
        pair_stats: counters of the pair choice.
        error: why the object could not be opened (then no pairs).
    """

    ref: CaptureRef
    pairs: npt.NDArray[np.int32]
    thresholds: LabelThresholds
    metric: bool
    views: int
    digest: str
    view_skips: dict[str, int] = field(default_factory=dict)
    pair_stats: dict[str, int] = field(default_factory=dict)
    error: str | None = None


def capture_digest(capture: PosedCapture) -> str:
    """SHA-256 (hex) of the capture's view names and poses: a capture that changed since planning differs."""
    digest = hashlib.sha256()
    for view in capture.views:
        digest.update(view.name.encode())
        digest.update(np.ascontiguousarray(view.t_world_camera, dtype=np.float64).tobytes())
    return digest.hexdigest()


def plan_object(ref: CaptureRef, pair_config: PairConfig, seed: int) -> ObjectPlan:
    """Open one capture and choose its pairs (poses only); a capture that cannot be opened gives a plan
    with no pairs and its ``error``."""
    empty = np.zeros((0, 2), dtype=np.int32)
    try:
        capture = open_capture(ref)
    except (ActialError, OSError, ValueError) as error:
        return ObjectPlan(ref, empty, LabelThresholds(), False, 0, '', error=str(error))
    poses = capture.poses
    scale = 0.0 if capture.metric else object_scale(poses)
    thresholds = label_thresholds(pair_config, metric=capture.metric, scale=scale)
    selection = select_pairs(poses, pair_config, thresholds=thresholds, seed=seed, key=ref.object_id)
    return ObjectPlan(
        ref=ref,
        pairs=selection.pairs,
        thresholds=thresholds,
        metric=capture.metric,
        views=len(capture.views),
        digest=capture_digest(capture),
        view_skips=dict(sorted(capture.skips.items())),
        pair_stats=dict(sorted(selection.stats.items())),
    )


@dataclass(frozen=True)
class ShardTask:
    """One parquet shard: its file name and the pair ranges ``(plan index, start, stop)`` it holds."""

    split: str
    index: int
    count: int
    segments: tuple[tuple[int, int, int], ...]

    @property
    def name(self) -> str:
        """``{split}-{index:05d}-of-{count:05d}.parquet``."""
        return f'{self.split}-{self.index:05d}-of-{self.count:05d}.parquet'

    @property
    def pairs(self) -> int:
        """Pairs in the shard."""
        return sum(stop - start for _, start, stop in self.segments)


def assign_splits(
    plans: Sequence[ObjectPlan], test_size: int, seed: int
) -> tuple[list[tuple[int, int]], list[tuple[int, int]], list[str]]:
    """Split objects into train and test by object.

    Returns:
        ``(train, test, warnings)``: ``(plan index, pairs used)`` in object-id order per split.
    """
    usable = [i for i, plan in enumerate(plans) if len(plan.pairs)]
    order = sorted(usable, key=lambda i: plans[i].ref.object_id)
    shuffled = list(order)
    random.Random(f'{seed}|split').shuffle(shuffled)
    test: dict[int, int] = {}
    total = 0
    warnings: list[str] = []
    for index in shuffled:
        if total >= test_size or len(test) >= len(usable) - 1:
            break
        take = min(len(plans[index].pairs), test_size - total)
        test[index] = take
        total += take
    if test_size and total < test_size:
        warnings.append(
            f'test split has {total} pairs, fewer than the {test_size} asked for: at least one object must stay in '
            f'train ({len(usable)} objects with pairs)'
        )
    train = [(i, len(plans[i].pairs)) for i in order if i not in test]
    return train, [(i, test[i]) for i in order if i in test], warnings


def make_shards(split: str, items: Sequence[tuple[int, int]], pairs_per_shard: int) -> list[ShardTask]:
    """Cut a split's ``(plan index, pairs used)`` list into shards of ``pairs_per_shard`` pairs."""
    groups: list[list[tuple[int, int, int]]] = []
    current: list[tuple[int, int, int]] = []
    filled = 0
    for plan_index, used in items:
        start = 0
        while start < used:
            take = min(used - start, pairs_per_shard - filled)
            current.append((plan_index, start, start + take))
            filled += take
            start += take
            if filled == pairs_per_shard:
                groups.append(current)
                current, filled = [], 0
    if current:
        groups.append(current)
    return [ShardTask(split, i, len(groups), tuple(group)) for i, group in enumerate(groups)]
