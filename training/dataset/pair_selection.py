"""Pair selection for the viewpoint dataset: yaw range, left/right and yaw-bin balance, per-object cap.

Definitions (one place for the whole builder):

* **Yaw bins.** The pair range ``[min_yaw_deg, max_yaw_deg]`` (paper: 20 to 100 degrees of ``|yaw|``)
  is cut into :data:`YAW_BIN_COUNT` = 6 bins of equal width; with the defaults their edges are 20,
  33.3, 46.7, 60, 73.3, 86.7 and 100 degrees. Bin ``k`` (0-based) holds ``edges[k] <= |yaw| <
  edges[k + 1]``; the last bin also holds ``|yaw| = max_yaw_deg``. The yaw-bin probe question uses the
  same bins (labels ``left_1`` .. ``right_6``, 1-based).
* **Direction.** The sign of yaw (CONVENTIONS.md): negative is ``left``, positive ``right``.
* **Selection.** Every ordered pair ``(i, j)``, ``i != j``, whose ``|yaw|`` lies in the range is a
  candidate, unless its translation or yaw is ambiguous (below). Candidates fall into 12 cells
  (direction x bin); each gets a pseudo-random key from a generator seeded with the build seed and
  the object id, and each cell keeps its lowest keys. Pairs are then taken round-robin over the cells
  (cell order shuffled per object) in key order, skipping a pair whose two views were already paired
  (in either order), until ``max_pairs`` are chosen or the cells run out. So the choice is
  deterministic for a seed, independent of other objects, as balanced between left and right and
  across bins as the object allows, and capped per object.
* **Ambiguity.** A label is only as good as the pose: candidates with ``|t12.x|`` within a factor
  ``ambiguity_factor`` of the translation threshold (``thr / f <= |t12.x| < thr * f``), or ``|yaw|``
  likewise near the yaw threshold, are left out and counted (``ambiguous_translation``,
  ``ambiguous_yaw``) instead of being labelled by a coin flip of pose noise.
* **Translation threshold.** Captures from structure from motion have an arbitrary length unit, so
  there the threshold is relative: ``translation_threshold_rel`` times the object's scale
  (:func:`object_scale`: the median distance from the cameras to the point their optical axes pass
  closest to, i.e. the object). Bags are in metres (odometry) and use ``translation_threshold_m``.

The vectorised prefilter here uses the same formulas as :func:`actial_ros.geometry.relative_pose`
(``yaw = atan2(x1 . z2, z1 . z2)``, ``t12.x = x1 . (C2 - C1)``); the builder recomputes every chosen
pair with :func:`~actial_ros.geometry.relative_pose` and labels it with
:func:`~actial_ros.geometry.viewpoint_label` (the one implementation).
"""

from __future__ import annotations

import hashlib
import math
import random
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from actial_ros.training.config import setting

from actial_ros.errors import ConfigError
from actial_ros.geometry import LabelThresholds, yaw_deg_from_forward
from actial_ros.pairing import DEFAULT_MAX_YAW_DEG, DEFAULT_MIN_YAW_DEG, validate_yaw_range

__all__ = [
    'YAW_BIN_COUNT',
    'PairConfig',
    'PairSelection',
    'label_thresholds',
    'object_scale',
    'select_pairs',
    'yaw_bin_edges',
    'yaw_bin_index',
]

YAW_BIN_COUNT = 6
"""Number of yaw bins over the pair range ("direction plus one of six rotation-angle bins")."""

FloatArray = npt.NDArray[np.float64]
_BLOCK = 256
"""Rows of the pair matrix evaluated at once (bounded memory: ``_BLOCK * N`` values)."""


@dataclass(frozen=True, slots=True)
class PairConfig:
    """How pairs are chosen and labelled.

    Attributes:
        min_yaw_deg, max_yaw_deg: ``|yaw|`` range of a pair, degrees (paper: 20 to 100).
        max_pairs: most pairs per object (``None``: every candidate, in balanced order). The paper has
            100K pairs over 10,813 objects, about 9 per object.
        translation_threshold_rel: "no movement" threshold on ``|t12.x|`` for captures in arbitrary
            units, as a fraction of :func:`object_scale`.
        translation_threshold_m: the same for metric sources (bags), metres.
        yaw_threshold_deg: "no rotation" threshold on ``|yaw|``, degrees.
        ambiguity_factor: candidates within this factor of a threshold are left out (>= 1; 1 disables).
    """

    # Each field is also a build-viewpoint flag and YAML key (``key``; actial_ros.training.config).
    min_yaw_deg: float = field(
        default=DEFAULT_MIN_YAW_DEG, metadata=setting('smallest |yaw| of a pair, degrees', key='min_yaw')
    )
    max_yaw_deg: float = field(
        default=DEFAULT_MAX_YAW_DEG, metadata=setting('largest |yaw| of a pair, degrees', key='max_yaw')
    )
    max_pairs: int | None = field(
        default=10,
        metadata=setting('cap per object; 0: no cap', key='max_pairs_per_object', parse=lambda cap: cap or None),
    )
    translation_threshold_rel: float = field(
        default=0.02, metadata=setting('"no movement" below this x object scale, captures')
    )
    translation_threshold_m: float = field(default=0.01, metadata=setting('"no movement" below this, metres, bags'))
    yaw_threshold_deg: float = field(default=2.0, metadata=setting('"no rotation" below this'))
    ambiguity_factor: float = field(
        default=2.0, metadata=setting('leave out pairs within this factor of a threshold; 1 disables')
    )

    def __post_init__(self) -> None:
        validate_yaw_range(self.min_yaw_deg, self.max_yaw_deg)  # the node's rule (actial_ros.pairing)
        if self.max_pairs is not None and self.max_pairs < 1:
            raise ConfigError(f'max_pairs must be >= 1 or None, got {self.max_pairs}')
        for name in ('translation_threshold_rel', 'translation_threshold_m', 'yaw_threshold_deg'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f'{name} must be finite and >= 0, got {value}')
        if not (math.isfinite(self.ambiguity_factor) and self.ambiguity_factor >= 1.0):
            raise ConfigError(f'ambiguity_factor must be >= 1, got {self.ambiguity_factor}')

    @property
    def edges(self) -> tuple[float, ...]:
        """The yaw bin edges of this range (:func:`yaw_bin_edges`)."""
        return yaw_bin_edges(self.min_yaw_deg, self.max_yaw_deg)


def yaw_bin_edges(
    min_yaw_deg: float = DEFAULT_MIN_YAW_DEG, max_yaw_deg: float = DEFAULT_MAX_YAW_DEG, count: int = YAW_BIN_COUNT
) -> tuple[float, ...]:
    """``count + 1`` equally spaced bin edges over ``[min_yaw_deg, max_yaw_deg]`` (degrees)."""
    if count < 1 or not min_yaw_deg < max_yaw_deg:
        raise ConfigError(f'invalid yaw bins: {count} over [{min_yaw_deg}, {max_yaw_deg}]')
    step = (max_yaw_deg - min_yaw_deg) / count
    return (*(min_yaw_deg + k * step for k in range(count)), float(max_yaw_deg))


def yaw_bin_index(abs_yaw_deg: float, edges: tuple[float, ...]) -> int | None:
    """0-based bin of ``|yaw|`` (degrees), or ``None`` outside ``[edges[0], edges[-1]]``."""
    if not (edges[0] <= abs_yaw_deg <= edges[-1]):
        return None
    index = int(np.searchsorted(np.asarray(edges), abs_yaw_deg, side='right')) - 1
    return min(max(index, 0), len(edges) - 2)


def object_scale(poses: npt.ArrayLike) -> float:
    """Length scale of a capture: median distance from the cameras to the object (capture units).

    The object centre is the least-squares point closest to every optical axis (solving
    ``sum(I - z z^T) p = sum(I - z z^T) c`` over cameras with centre ``c`` and unit axis ``z``); it is
    used when the system is well conditioned and the point lies in front of most cameras. Otherwise
    (e.g. a robot driving straight) the scale is the median distance of the camera centres from their
    mean, and 0 when all centres coincide.

    Args:
        poses: ``(N, 4, 4)`` camera-to-world poses (optical frame).
    """
    matrices = np.asarray(poses, dtype=np.float64)
    centres = matrices[:, :3, 3]
    axes = matrices[:, :3, 2]
    if len(matrices) >= 2:
        projectors = np.eye(3)[None] - axes[:, :, None] * axes[:, None, :]
        a = projectors.sum(axis=0)
        b = np.einsum('nij,nj->i', projectors, centres)
        if np.linalg.cond(a) < 1e6:
            centre = np.linalg.solve(a, b)
            depths = np.einsum('ni,ni->n', axes, centre[None] - centres)
            if np.median(depths) > 0:
                return float(np.median(np.linalg.norm(centre[None] - centres, axis=1)))
    spread = np.linalg.norm(centres - centres.mean(axis=0), axis=1)
    return float(np.median(spread)) if len(spread) else 0.0


def label_thresholds(config: PairConfig, *, metric: bool, scale: float) -> LabelThresholds:
    """Label thresholds for one object: absolute metres for metric sources, else relative to ``scale``."""
    translation = config.translation_threshold_m if metric else config.translation_threshold_rel * scale
    return LabelThresholds(translation_m=translation, yaw_deg=config.yaw_threshold_deg)


@dataclass(frozen=True, slots=True)
class PairSelection:
    """Chosen pairs of one object.

    Attributes:
        pairs: ``(K, 2)`` int32 view indices ``(i, j)``, frame 1 -> frame 2, in selection order.
        stats: counters: ``candidates`` (ordered pairs in range), ``ambiguous_translation``,
            ``ambiguous_yaw`` (left out), ``duplicate_pair`` (a pair whose views were already paired,
            skipped), ``chosen``.
    """

    pairs: npt.NDArray[np.int32]
    stats: Counter[str] = field(default_factory=Counter)


def _seed_sequence(seed: int, key: str) -> np.random.SeedSequence:
    digest = hashlib.sha256(key.encode()).digest()
    return np.random.SeedSequence([int(seed) & 0xFFFFFFFF, *np.frombuffer(digest, dtype=np.uint32).tolist()])


def select_pairs(
    poses: npt.ArrayLike,
    config: PairConfig,
    *,
    thresholds: LabelThresholds,
    seed: int,
    key: str,
) -> PairSelection:
    """Choose the pairs of one object (see the module docstring).

    Args:
        poses: ``(N, 4, 4)`` validated camera-to-world poses of the object's views.
        config: range, cap and ambiguity factor.
        thresholds: the object's label thresholds (:func:`label_thresholds`).
        seed: the build seed.
        key: the object id (with the seed, it seeds this object's choice).

    Returns:
        The chosen pairs and counters.
    """
    matrices = np.asarray(poses, dtype=np.float64)
    count = len(matrices)
    stats: Counter[str] = Counter()
    edges = np.asarray(config.edges)
    bins = len(edges) - 1
    keep = None if config.max_pairs is None else 2 * config.max_pairs + 8
    cells: list[list[tuple[FloatArray, npt.NDArray[np.int64], npt.NDArray[np.int64]]]] = [[] for _ in range(2 * bins)]
    cell_sizes = [0] * (2 * bins)
    if count < 2:
        return PairSelection(np.zeros((0, 2), dtype=np.int32), stats)
    generator = np.random.default_rng(_seed_sequence(seed, key))
    x_axes, z_axes, centres = matrices[:, :3, 0], matrices[:, :3, 2], matrices[:, :3, 3]
    x_dot_c = np.einsum('ni,ni->n', x_axes, centres)
    factor = config.ambiguity_factor
    t_thr, y_thr = thresholds.translation_m, thresholds.yaw_deg
    for start in range(0, count, _BLOCK):
        stop = min(count, start + _BLOCK)
        fx = x_axes[start:stop] @ z_axes.T
        fz = z_axes[start:stop] @ z_axes.T
        yaw = yaw_deg_from_forward(fx, fz)
        abs_yaw = np.abs(yaw)
        in_range = (abs_yaw >= config.min_yaw_deg) & (abs_yaw <= config.max_yaw_deg)
        rows = np.arange(start, stop)
        in_range[rows - start, rows] = False
        stats['candidates'] += int(in_range.sum())
        tx = np.abs(x_axes[start:stop] @ centres.T - x_dot_c[start:stop, None])
        mask = in_range
        if factor > 1.0:
            ambiguous_t = (tx >= t_thr / factor) & (tx < t_thr * factor) & in_range
            ambiguous_y = (abs_yaw >= y_thr / factor) & (abs_yaw < y_thr * factor) & in_range & ~ambiguous_t
            stats['ambiguous_translation'] += int(ambiguous_t.sum())
            stats['ambiguous_yaw'] += int(ambiguous_y.sum())
            mask = in_range & ~ambiguous_t & ~ambiguous_y
        ii, jj = np.nonzero(mask)
        if not len(ii):
            continue
        keys = generator.random(len(ii))
        values = yaw[ii, jj]
        bin_index = np.clip(np.searchsorted(edges, np.abs(values), side='right') - 1, 0, bins - 1)
        cell_index = bin_index * 2 + (values > 0)
        ii = ii + start
        for cell in np.unique(cell_index):
            members = cell_index == cell
            cells[cell].append((keys[members], ii[members], jj[members]))
            cell_sizes[cell] += int(members.sum())
            if keep is not None and cell_sizes[cell] > 4 * keep:
                cells[cell] = [_lowest(cells[cell], keep)]
                cell_sizes[cell] = keep

    ordered: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]] = []
    for parts in cells:
        if not parts:
            ordered.append((np.zeros(0, np.int64), np.zeros(0, np.int64)))
            continue
        cell_keys, cell_rows, cell_cols = _lowest(parts, keep)
        order = np.argsort(cell_keys, kind='stable')
        ordered.append((cell_rows[order], cell_cols[order]))
    cell_order = list(range(len(cells)))
    random.Random(f'{seed}|{key}|cells').shuffle(cell_order)
    positions = [0] * len(cells)
    used: set[tuple[int, int]] = set()
    chosen: list[tuple[int, int]] = []
    limit = config.max_pairs
    active = [c for c in cell_order if len(ordered[c][0])]
    while active and (limit is None or len(chosen) < limit):
        still: list[int] = []
        for cell in active:
            if limit is not None and len(chosen) >= limit:
                break
            cell_i, cell_j = ordered[cell]
            while positions[cell] < len(cell_i):
                i, j = int(cell_i[positions[cell]]), int(cell_j[positions[cell]])
                positions[cell] += 1
                unordered = (i, j) if i < j else (j, i)
                if unordered in used:
                    stats['duplicate_pair'] += 1
                    continue
                used.add(unordered)
                chosen.append((i, j))
                break
            if positions[cell] < len(cell_i):
                still.append(cell)
        active = still
    stats['chosen'] = len(chosen)
    pairs = np.asarray(chosen, dtype=np.int32).reshape(-1, 2)
    return PairSelection(pairs, stats)


def _lowest(
    parts: list[tuple[FloatArray, npt.NDArray[np.int64], npt.NDArray[np.int64]]], keep: int | None
) -> tuple[FloatArray, npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    keys = np.concatenate([p[0] for p in parts])
    ii = np.concatenate([p[1] for p in parts])
    jj = np.concatenate([p[2] for p in parts])
    if keep is not None and len(keys) > keep:
        index = np.argpartition(keys, keep - 1)[:keep]
        keys, ii, jj = keys[index], ii[index], jj[index]
    return keys, ii, jj
