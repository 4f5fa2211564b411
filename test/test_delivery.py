"""Tests of actial_ros.delivery.SequenceGapCounter (messages lost inside DDS, from sequence numbers)."""

from __future__ import annotations

from actial_ros.delivery import SequenceGapCounter


def test_gaps_are_counted_per_stream_and_publisher() -> None:
    gaps = SequenceGapCounter()
    assert gaps.observe('/image', b'a', 7) == 0  # first seen: the baseline (a late join loses nothing)
    assert gaps.observe('/image', b'a', 8) == 0
    assert gaps.observe('/image', b'a', 12) == 3
    assert gaps.observe('/image', b'b', 100) == 0  # another publisher: its own sequence
    assert gaps.observe('/odom', b'a', 50) == 0  # another stream
    assert gaps.observe('/image', b'b', 102) == 1


def test_restarts_duplicates_and_unnumbered_messages_count_nothing() -> None:
    gaps = SequenceGapCounter()
    gaps.observe('/image', b'a', 10)
    assert gaps.observe('/image', b'a', 10) == 0  # duplicate
    assert gaps.observe('/image', b'a', 1) == 0  # a restarted writer: new baseline
    assert gaps.observe('/image', b'a', 3) == 1
    assert gaps.observe('/image', b'a', None) == 0  # an RMW that does not number samples
    assert gaps.observe('/image', b'a', 0) == 0
