"""actial_ros.nodes.delivery_events: the subscription callbacks and QoS events portable from Humble to Kilted
(no Humble rclpy installs here: the Humble branches are driven by switching the feature flags, the way the
module decides them)."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

rclpy = pytest.importorskip('rclpy')
from rclpy.subscription import Subscription  # noqa: E402

from actial_ros.nodes import delivery_events  # noqa: E402
from actial_ros.nodes.delivery_events import DeliveryMonitor, with_message_info  # noqa: E402


def kind(callback: Any) -> Any:
    """What rclpy's Subscription makes of a callback (it binds one, then two arguments)."""
    try:
        inspect.signature(callback).bind(object())
        return Subscription.CallbackType.MessageOnly
    except TypeError:
        inspect.signature(callback).bind(object(), object())
        return Subscription.CallbackType.WithMessageInfo


def test_callbacks_take_the_message_info_where_rclpy_passes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[Any, Any]] = []
    assert delivery_events.HAS_MESSAGE_INFO  # this rclpy (Kilted)
    callback = with_message_info(lambda msg, info: seen.append((msg, info)))
    assert kind(callback) == Subscription.CallbackType.WithMessageInfo
    callback('m', {'publication_sequence_number': 3})
    monkeypatch.setattr(delivery_events, 'HAS_MESSAGE_INFO', False)  # Humble: the executor calls callback(msg)
    humble = with_message_info(lambda msg, info: seen.append((msg, info)))
    humble('m')
    assert seen == [('m', {'publication_sequence_number': 3}), ('m', None)]


def test_gaps_are_counted_per_publisher_and_unknown_info_counts_nothing() -> None:
    counts: dict[str, int] = {}

    def count(key: str, n: int) -> None:
        counts[key] = counts.get(key, 0) + n

    monitor = DeliveryMonitor(logger=rclpy.logging.get_logger('test'), count=count)

    def info(gid: int, sequence: int) -> dict[str, Any]:
        return {'publisher_gid': {'data': bytes([gid] * 16)}, 'publication_sequence_number': sequence}

    assert [monitor.observe('/t', info(1, n)) for n in (1, 2, 5)] == [0, 0, 2]
    assert monitor.observe('/t', info(2, 9)) == 0  # another publisher: its own baseline
    assert monitor.observe('/t', None) == 0  # Humble: no info
    assert monitor.observe('/t', {}) == 0  # an RMW that does not number samples
    assert counts == {'dds_lost': 2}


def test_event_callbacks_match_this_rclpy(monkeypatch: pytest.MonkeyPatch) -> None:
    monitor = DeliveryMonitor(logger=rclpy.logging.get_logger('test'), count=lambda key, n: None)
    events = monitor.event_callbacks('/t', 'image')
    assert events.message_lost is not None and events.incompatible_qos is not None
    assert events.incompatible_type is not None  # Iron and newer
    monkeypatch.setattr(delivery_events, 'HAS_INCOMPATIBLE_TYPE_EVENT', False)  # Humble's keyword set
    assert getattr(monitor.event_callbacks('/t', 'image'), 'incompatible_type', None) is None
