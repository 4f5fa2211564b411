"""What DDS lost on the way to a node's subscriptions: the RMW's QoS events and gaps in each publisher's
sequence numbers, counted and logged (one home for every node that subscribes: spatial_reasoner and
bag_recorder).

Counter keys handed to ``count``: ``dds_lost`` (messages missing from a publisher's sequence:
:class:`actial_ros.delivery.SequenceGapCounter`), ``dds_message_lost_event`` (the RMW's ``message_lost``
event), ``incompatible_qos`` and ``incompatible_type`` (a publisher DDS will never match with this
subscription). Deadline and liveliness events are not subscribed: no node here sets those policies.

Portable from ROS 2 Humble to Kilted: the event classes moved from ``rclpy.qos_event`` (Humble) to
``rclpy.event_handler`` (Iron, rclpy PR #1058), where the ``incompatible_type`` event also arrived; on
Humble it is not subscribed. Subscription callbacks get the message info from Iron on (rclpy PR #922,
3.4.0: a callback taking two arguments); Humble's executor passes the message alone, so
:func:`with_message_info` passes ``None`` there and sequence gaps are not counted. ``publisher_gid`` is in
the info from Kilted on; before it the gaps of several publishers on one topic share one sequence key,
which can miscount them (Iron, Jazzy).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

try:  # Iron and newer
    from rclpy.event_handler import SubscriptionEventCallbacks
except ImportError:  # pragma: no cover - Humble
    from rclpy.qos_event import SubscriptionEventCallbacks

from rclpy.subscription import Subscription

from actial_ros.delivery import COUNTER_KEYS, SequenceGapCounter

__all__ = ['COUNTER_KEYS', 'HAS_INCOMPATIBLE_TYPE_EVENT', 'HAS_MESSAGE_INFO', 'DeliveryMonitor', 'with_message_info']

HAS_INCOMPATIBLE_TYPE_EVENT = 'incompatible_type' in inspect.signature(SubscriptionEventCallbacks).parameters
"""Whether this rclpy reports publishers of another type on a topic (Iron and newer)."""

HAS_MESSAGE_INFO = hasattr(Subscription, 'CallbackType')
"""Whether subscription callbacks can take the message info (Iron and newer; rclpy tells the two kinds apart by
how many arguments the callback binds)."""

Guard = Callable[[str, Callable[..., None]], Callable[..., None]]


def _unguarded(name: str, callback: Callable[..., None]) -> Callable[..., None]:
    return callback


def with_message_info(callback: Callable[[Any, Any], None]) -> Callable[..., None]:
    """``callback(msg, info)`` as a subscription callback: given rclpy's message info (a dict) where rclpy
    passes it, ``None`` on Humble."""
    if HAS_MESSAGE_INFO:

        def with_info(msg: Any, info: Any) -> None:  # exactly two parameters: rclpy passes the info
            callback(msg, info)

        return with_info

    def without_info(msg: Any) -> None:
        callback(msg, None)

    return without_info


class DeliveryMonitor:
    """Counts and logs what DDS lost on the way to one node's subscriptions. Thread-safe.

    Args:
        logger: the node's logger (``rclpy`` ``RcutilsLogger``).
        count: called with a counter key (module docstring) and how many to add.
        guard: wraps each event callback (the node's last-resort guard); none by default.
    """

    def __init__(self, *, logger: Any, count: Callable[[str, int], None], guard: Guard = _unguarded) -> None:
        self._logger = logger
        self._count = count
        self._guard = guard
        self._gaps = SequenceGapCounter()

    def event_callbacks(self, topic: str, name: str) -> SubscriptionEventCallbacks:
        """The QoS event callbacks for a subscription to ``topic`` (``name`` labels the guard's log)."""
        callbacks: dict[str, Callable[..., None]] = {
            'message_lost': self._guard(f'{name} message_lost', lambda event: self._on_message_lost(topic, event)),
            'incompatible_qos': self._guard(
                f'{name} incompatible_qos', lambda event: self._on_incompatible(topic, 'QoS', event)
            ),
        }
        if HAS_INCOMPATIBLE_TYPE_EVENT:
            callbacks['incompatible_type'] = self._guard(
                f'{name} incompatible_type', lambda event: self._on_incompatible(topic, 'type', event)
            )
        return SubscriptionEventCallbacks(**callbacks)  # type: ignore[arg-type]

    def observe(self, topic: str, info: Any) -> int:
        """Record one message received on ``topic`` with its rclpy message info (a dict with
        ``publisher_gid`` and ``publication_sequence_number`` where the RMW fills them in); counts and
        returns how many of its publisher's messages went missing before it (0 when unknown)."""
        if not isinstance(info, dict):
            return 0
        gid = info.get('publisher_gid')
        publisher = bytes(gid['data']) if isinstance(gid, dict) and 'data' in gid else None
        lost = self._gaps.observe(topic, publisher, info.get('publication_sequence_number'))
        if lost:
            self._count('dds_lost', lost)
        return lost

    def _on_message_lost(self, topic: str, event: Any) -> None:
        self._count('dds_message_lost_event', int(event.total_count_change))
        self._logger.warning(
            f'DDS reports {event.total_count_change} message(s) lost on {topic} ({event.total_count} in all)',
            throttle_duration_sec=5.0,
        )

    def _on_incompatible(self, topic: str, what: str, event: Any) -> None:
        self._count(f'incompatible_{what.lower()}', max(1, int(event.total_count_change)))
        policy = getattr(event, 'last_policy_kind', None)
        detail = f' (policy {policy.name})' if policy is not None and hasattr(policy, 'name') else ''
        self._logger.error(
            f'a publisher on {topic} has an incompatible {what}{detail}: its messages never reach this node',
            throttle_duration_sec=5.0,
        )
