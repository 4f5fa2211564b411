"""The build counters (:class:`ShardStats`): typed counts, the flat ``'a|b|c'`` done records they are stored as
(unchanged from the records of earlier builds), and a resume that reads such a record."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from actial_ros.training.dataset.build import build
from actial_ros.training.dataset.build_config import BuildConfig
from actial_ros.training.dataset.pair_selection import PairConfig
from actial_ros.training.dataset.shard_stats import CotKind, ShardStats, SkipReason, SplitCounts
from actial_ros.training.dataset.teacher import TeacherStatus
from captures import SAMPLE_CAPTURE

pytest.importorskip('pyarrow.parquet')

OLD_RECORD = (
    '{"cot|teacher": 6, "cot|template": 3, "skip|bad_image": 1, "skip|pair_bad_image": 2, '
    '"skip|pair_out_of_range": 1, "teacher|accepted": 6, "teacher|rejected_format": 2, '
    '"test|label|rotation|left": 1, "test|pairs": 1, "test|rows": 1, "test|source|objects:/data/a|b": 1, '
    '"test|type|rotation": 1, "test|yaw_bin|12": 1, "train|label|rotation|left": 4, '
    '"train|label|yaw_bin|right_6": 1, "train|pairs": 8, "train|rows": 5, "train|source|llff:/data/capture": 5, '
    '"train|type|rotation": 4, "train|type|yaw_bin": 1, "train|yaw_bin|2": 2, "train|yaw_bin|6": 3}\n'
)
"""A done record as the builder wrote it before the counters were typed (same keys, sorted, one line)."""


def test_a_done_record_of_an_earlier_build_reads_and_writes_back_the_same_bytes() -> None:
    stats = ShardStats.from_record(json.loads(OLD_RECORD))
    train = stats.splits['train']
    assert (train.rows, train.pairs) == (5, 8)
    assert train.types == Counter({'rotation': 4, 'yaw_bin': 1})
    assert train.labels == Counter({('rotation', 'left'): 4, ('yaw_bin', 'right_6'): 1})
    assert train.yaw_bins == Counter({2: 2, 6: 3}) and train.sources == Counter({'llff:/data/capture': 5})
    assert stats.splits['test'].sources == Counter({'objects:/data/a|b': 1}) and stats.splits['test'].yaw_bins[12] == 1
    assert stats.skips == {SkipReason.BAD_IMAGE: 1, SkipReason.PAIR_BAD_IMAGE: 2, SkipReason.PAIR_OUT_OF_RANGE: 1}
    assert stats.teacher == {TeacherStatus.ACCEPTED: 6, TeacherStatus.BAD_FORMAT: 2}
    assert stats.cot == {CotKind.TEACHER: 6, CotKind.TEMPLATE: 3}
    assert json.dumps(stats.to_record(), sort_keys=True) + '\n' == OLD_RECORD


def test_counting_and_merging_sum_the_records() -> None:
    first = ShardStats()
    first.split('train').add_row('rotation', 'left', 3, 'llff:a')
    first.split('train').pairs += 1
    first.skips[SkipReason.PAIR_OUT_OF_RANGE] += 1
    second = ShardStats(splits={'test': SplitCounts(rows=2, pairs=1)}, cot=Counter({CotKind.TEMPLATE: 1}))
    second.split('train').add_row('rotation', 'right', 3, 'llff:a')
    second.skips[SkipReason.PAIR_OUT_OF_RANGE] += 2
    expected = Counter(first.to_record()) + Counter(second.to_record())
    first.merge(second)
    assert first.to_record() == dict(expected)
    assert first.to_record() == {
        'cot|template': 1,
        'skip|pair_out_of_range': 3,
        'test|pairs': 1,
        'test|rows': 2,
        'train|label|rotation|left': 1,
        'train|label|rotation|right': 1,
        'train|pairs': 1,
        'train|rows': 2,
        'train|source|llff:a': 2,
        'train|type|rotation': 2,
        'train|yaw_bin|3': 2,
    }
    assert ShardStats().to_record() == {} and ShardStats(splits={'train': SplitCounts()}).to_record() == {}


@pytest.mark.parametrize(
    'key',
    ['skip|tired', 'teacher|maybe', 'cot|dreamt', 'train', 'train|rows|x', 'train|label|rotation', 'train|yaw_bin|x'],
)
def test_a_key_that_is_no_counter_is_refused(key: str) -> None:
    with pytest.raises(ValueError, match='is not a build counter'):
        ShardStats.from_record({key: 1})


def _sample_build(out: Path, stop: int | None = None, **options: Any) -> BuildConfig:
    """A 3-shard build of the sample capture into ``out`` (stopped after ``stop`` shards), with ``options``."""
    return BuildConfig(
        sources=(f'llff:{SAMPLE_CAPTURE}',),
        out=out,
        pairs=PairConfig(max_pairs=10),
        test_size=0,
        rows_per_shard=16,
        stop_after_shards=stop,
        **options,
    )


def test_a_resume_reads_the_done_records_of_an_earlier_build(tmp_path: Path) -> None:
    def config(out: Path, stop: int | None = None) -> BuildConfig:
        return _sample_build(
            out,
            stop,
            question_types=('ego_translation', 'object_translation', 'rotation', 'yaw_bin'),
            cot='template',
            cot_fraction=0.5,
        )

    full = build(config(tmp_path / 'full'))
    assert full.shards_total == 3 and full.splits['train']['rows'] == 40 and full.cot['template'] > 0
    out = tmp_path / 'resumed'
    assert not build(config(out, stop=1)).complete
    # The record of the first shard, rewritten as the earlier builder wrote it (a flat mapping) with a skip.
    (record,) = (out / '.build' / 'done').iterdir()
    flat = json.loads(record.read_text())
    assert flat['train|rows'] > 0 and all(isinstance(v, int) for v in flat.values())
    flat['skip|pair_bad_image'] = 3
    record.write_text(json.dumps(flat, sort_keys=True) + '\n')
    resumed = build(config(out))
    assert resumed.complete and resumed.shards_resumed == 1 and resumed.shards_written == 2
    assert resumed.skips == {'pair_bad_image': 3}
    assert (resumed.splits, resumed.counts, resumed.cot) == (full.splits, full.counts, full.cot)


@pytest.mark.parametrize(
    'text',
    ['{"train|rows": 5, "train|mood|happy": 1}\n', '{"train|rows": 5', '[1, 2]\n', '{"train|rows": "5"}\n'],
    ids=['unknown counter', 'truncated', 'not a mapping', 'not a count'],
)
def test_a_shard_whose_done_record_cannot_be_read_is_written_again(tmp_path: Path, text: str) -> None:
    full = build(_sample_build(tmp_path / 'full'))
    out = tmp_path / 'resumed'
    assert not build(_sample_build(out, stop=1)).complete
    (record,) = (out / '.build' / 'done').iterdir()
    record.write_text(text)
    resumed = build(_sample_build(out))
    assert resumed.complete and resumed.shards_resumed == 0 and resumed.shards_written == full.shards_total
    unreadable = [w for w in resumed.warnings if 'done record is unreadable' in w]
    assert len(unreadable) == 1 and unreadable[0].startswith(f'{record.stem}: ')
    assert (resumed.splits, resumed.counts) == (full.splits, full.counts)
    assert ShardStats.from_record(json.loads(record.read_text())).to_record()
