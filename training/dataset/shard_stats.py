"""The counters of a viewpoint build's shards (:class:`ShardStats`): rows, pairs, question types, labels, yaw
bins and sources per split, skips by :class:`SkipReason`, teacher outcomes by
:class:`~actial_ros.training.dataset.teacher.TeacherStatus` and CoTs by :class:`CotKind`.

A shard worker counts into one (:func:`actial_ros.training.dataset.shards.write_shard`), the build stores it as
the shard's done record and sums the records of every written shard
(:mod:`actial_ros.training.dataset.build`), and the report reads the sum
(:func:`actial_ros.training.dataset.report.make_report`).

A done record is a flat JSON object of ``'a|b|c'`` keys, one per non-zero counter (:meth:`ShardStats.to_record`,
:meth:`ShardStats.from_record`, the only place that knows the keys):

- ``SPLIT|rows``, ``SPLIT|pairs``: rows and pairs written to the split;
- ``SPLIT|type|TYPE``, ``SPLIT|label|TYPE|LABEL``, ``SPLIT|yaw_bin|N`` (1-6), ``SPLIT|source|SOURCE``: its rows
  by question type, answer label, yaw bin and source;
- ``skip|REASON``: skipped images and pairs (:class:`SkipReason`);
- ``teacher|STATUS``: teacher answers (:class:`~actial_ros.training.dataset.teacher.TeacherStatus`);
- ``cot|KIND``: rows given a chain of thought (:class:`CotKind`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from actial_ros.training.dataset.teacher import TeacherStatus

from actial_ros.enums import StrEnum

__all__ = ['CotKind', 'ShardStats', 'SkipReason', 'SplitCounts']


class SkipReason(StrEnum):
    """Why a shard worker left an image or a pair out."""

    BAD_IMAGE = 'bad_image'
    """A view's image is unusable (unreadable, corrupt, another size than its intrinsics); counted once per view."""
    PAIR_BAD_IMAGE = 'pair_bad_image'
    """A planned pair uses a view whose image is unusable."""
    PAIR_OUT_OF_RANGE = 'pair_out_of_range'
    """A planned pair's recomputed yaw falls outside every yaw bin."""


class CotKind(StrEnum):
    """Where a row's chain of thought came from."""

    TEMPLATE = 'template'
    """Written from the pose (:func:`actial_ros.training.dataset.cot.pseudo_cot`)."""
    TEACHER = 'teacher'
    """A teacher model's answer, accepted."""


@dataclass
class SplitCounts:
    """What one split received from a shard (or a build).

    Attributes:
        rows, pairs: rows and pairs written.
        types: rows by question type.
        labels: rows by ``(question type, answer label)``.
        yaw_bins: rows by yaw bin (1-6).
        sources: rows by source (the ``--source`` text).
    """

    rows: int = 0
    pairs: int = 0
    types: Counter[str] = field(default_factory=Counter)
    labels: Counter[tuple[str, str]] = field(default_factory=Counter)
    yaw_bins: Counter[int] = field(default_factory=Counter)
    sources: Counter[str] = field(default_factory=Counter)

    def add_row(self, question_type: str, label: str, yaw_bin: int, source: str) -> None:
        """Count one row."""
        self.rows += 1
        self.types[question_type] += 1
        self.labels[(question_type, label)] += 1
        self.yaw_bins[yaw_bin] += 1
        self.sources[source] += 1

    def merge(self, other: SplitCounts) -> None:
        """Add ``other``'s counts to these."""
        self.rows += other.rows
        self.pairs += other.pairs
        self.types.update(other.types)
        self.labels.update(other.labels)
        self.yaw_bins.update(other.yaw_bins)
        self.sources.update(other.sources)


@dataclass
class ShardStats:
    """The counters of one shard or, summed with :meth:`merge`, of a build.

    Attributes:
        splits: counts by split name (``train``, ``test``); a split appears once something is counted in it.
        skips: skipped images and pairs by reason.
        teacher: teacher answers by status.
        cot: rows given a chain of thought, by kind.
    """

    splits: dict[str, SplitCounts] = field(default_factory=dict)
    skips: Counter[SkipReason] = field(default_factory=Counter)
    teacher: Counter[TeacherStatus] = field(default_factory=Counter)
    cot: Counter[CotKind] = field(default_factory=Counter)

    def split(self, name: str) -> SplitCounts:
        """The counts of split ``name`` (created empty when new)."""
        counts = self.splits.get(name)
        if counts is None:
            counts = self.splits[name] = SplitCounts()
        return counts

    def merge(self, other: ShardStats) -> None:
        """Add ``other``'s counts to these."""
        for name, counts in other.splits.items():
            self.split(name).merge(counts)
        self.skips.update(other.skips)
        self.teacher.update(other.teacher)
        self.cot.update(other.cot)

    def _items(self) -> Iterator[tuple[str, int]]:
        for name, counts in self.splits.items():
            yield f'{name}|rows', counts.rows
            yield f'{name}|pairs', counts.pairs
            yield from ((f'{name}|type|{t}', n) for t, n in counts.types.items())
            yield from ((f'{name}|label|{t}|{label}', n) for (t, label), n in counts.labels.items())
            yield from ((f'{name}|yaw_bin|{b}', n) for b, n in counts.yaw_bins.items())
            yield from ((f'{name}|source|{s}', n) for s, n in counts.sources.items())
        yield from ((f'skip|{reason.value}', n) for reason, n in self.skips.items())
        yield from ((f'teacher|{status.value}', n) for status, n in self.teacher.items())
        yield from ((f'cot|{kind.value}', n) for kind, n in self.cot.items())

    def to_record(self) -> dict[str, int]:
        """The flat done-record mapping (``'train|label|rotation|left': 5``, ...; see the module docstring),
        non-zero counters only, sorted by key."""
        return dict(sorted((key, value) for key, value in self._items() if value))

    @classmethod
    def from_record(cls, record: Mapping[str, int]) -> ShardStats:
        """The counters of a done record (:meth:`to_record`; also records written before this class existed,
        which have the same keys).

        Raises:
            ValueError: a key that is not a build counter.
        """
        stats = cls()
        for key, value in record.items():
            head, _, rest = key.partition('|')
            try:
                if head == 'skip':
                    stats.skips[SkipReason(rest)] += value
                elif head == 'teacher':
                    stats.teacher[TeacherStatus(rest)] += value
                elif head == 'cot':
                    stats.cot[CotKind(rest)] += value
                elif head and rest:
                    _count(stats.split(head), rest, value)
                else:
                    raise ValueError
            except ValueError:
                raise ValueError(f'{key!r} is not a build counter') from None
        return stats


def _count(counts: SplitCounts, key: str, value: int) -> None:
    """Add ``value`` to the counter of ``key``, a record key without its split (``label|rotation|left``)."""
    kind, _, name = key.partition('|')
    if kind == 'rows' and not name:
        counts.rows += value
    elif kind == 'pairs' and not name:
        counts.pairs += value
    elif kind == 'type' and name:
        counts.types[name] += value
    elif kind == 'label' and '|' in name:
        question_type, _, label = name.partition('|')
        counts.labels[(question_type, label)] += value
    elif kind == 'yaw_bin' and name:
        counts.yaw_bins[int(name)] += value
    elif kind == 'source' and name:
        counts.sources[name] += value
    else:
        raise ValueError(key)
