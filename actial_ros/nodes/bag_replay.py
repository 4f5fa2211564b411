"""``bag_replay``: publishes a rosbag2 recording onto ROS 2 topics as raw CDR (no ROS install needed).

Reads ``bag`` (a rosbag2 folder, sqlite3 or mcap; a bare ``.mcap`` or ``.db3``; or a split recording as
``bag_recorder`` writes it: ``bag_0000/``, ``bag_0001/``, ... read in order, unreadable parts skipped
and logged) with ``rosbags`` and publishes every message of a type rclpy can import on its topic, with
the bag's serialized bytes (``Publisher.publish(bytes)``: rclpy 9 publishes ``bytes`` raw), so that
subscribers receive exactly what was recorded.

* **Timing**: a message is published at ``start + (log_time - first_log_time) / rate`` (wall clock;
  ``rate`` 2: twice as fast). The bag's log time is when the recorder received it (``bag_recorder``) or
  its stamp (simulated and exported bags).
* **Stamps** (``restamp``): ``false`` (default, as ``ros2 bag play``): header stamps unchanged.
  ``true``: every message whose first field is a ``std_msgs/Header`` (Image, CompressedImage,
  CameraInfo, Odometry, ...) or a ``builtin_interfaces/Time`` (``rosgraph_msgs/Clock``) is re-stamped
  ``stamp + (now_at_start - first_log_time)``: one constant offset, so the spacing of stamps, and hence
  the matching of images to odometry, is unchanged (it does not scale with ``rate``). Other messages
  (e.g. ``tf2_msgs/TFMessage``) go out unchanged; a warning names them.
* **Topics**: ``topics`` (empty: all) selects bag topics; ROS remapping applies to the publishers
  (``--ros-args -r /camera/image_raw:=/front/image_raw``). A topic whose type rclpy cannot import, or
  that has two types in the bag, is skipped with a warning.
* **Start**: like ``capture_replay``, it waits up to ``wait_for_subscribers_s`` until every topic of
  ``wait_topics`` (empty: every image and odometry topic) has ``wait_subscriptions`` subscriptions (1),
  then ``settle_s`` more, so that the first messages are not lost while discovery settles.
* **Manifest** (``manifest``): JSON lines, one per image published (Image/CompressedImage):
  ``topic`` (bag topic), ``published_topic`` (after remapping), ``stamp_ns`` (the bag's header stamp),
  ``published_stamp_ns``, ``log_time_ns``, ``msgtype``.

* **Cut bags** (power loss, a killed recorder): a part rosbags refuses because it was cut short is salvaged
  (:func:`actial_ros.bags.reading.open_part`: every complete mcap record up to the cut, every row
  SQLite still reads) and its recovered messages are played, with a warning; :attr:`BagReplayNode.salvage`
  counts ``salvaged_bag``, ``salvaged_messages`` and ``lost_tail_bytes`` (logged with the final count). A part
  with nothing recoverable is skipped with a warning.

With ``exit_when_done`` (default) the node ends after the last message.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import rclpy
from rclpy.node import Node
from rclpy.publisher import Publisher

from actial_ros.bags.cdr import (
    COMPRESSED_IMAGE_TYPE,
    IMAGE_TYPE,
    ODOMETRY_TYPE,
    cdr_header_stamp_ns,
    set_cdr_header_stamp,
)
from actial_ros.bags.files import bag_parts
from actial_ros.bags.reading import SalvageReport, default_typestore, open_part
from actial_ros.enums import QOS_CHOICES, QOS_NAMES
from actial_ros.errors import CaptureError, ConfigError
from actial_ros.nodes.descriptors import declare_parameters
from actial_ros.nodes.entry import run_node
from actial_ros.nodes.qos import qos_profile
from actial_ros.parameter_spec import ParameterSpec, check_choices

__all__ = ['PARAMETERS', 'BagReplayNode', 'main', 'message_class']

_NS = 1_000_000_000
_STAMP_FIRST = ('std_msgs/msg/Header', 'builtin_interfaces/msg/Time')

PARAMETERS: tuple[ParameterSpec, ...] = (
    ParameterSpec('bag', '', 'rosbag2 folder, .mcap file or split recording (required).'),
    ParameterSpec('rate', 1.0, 'Playback speed factor (2: twice as fast).'),
    ParameterSpec('restamp', False, 'Shift header stamps by one offset so that the first message is stamped now.'),
    ParameterSpec('qos', 'reliable', f'Publisher reliability: {QOS_CHOICES}.', choices=QOS_NAMES),
    ParameterSpec('qos_depth', 100, 'Publisher queue depth.'),
    ParameterSpec(
        'wait_for_subscribers_s', 10.0, 'Wait up to this long for subscribers of wait_topics before playing (s).'
    ),
    ParameterSpec('wait_subscriptions', 1, 'Subscriptions each wait topic needs before playing.'),
    ParameterSpec(
        'settle_s', 1.0, 'Extra wait after the subscribers appeared, so that both sides finish matching (s).'
    ),
    ParameterSpec('manifest', '', 'If set, write a JSON-lines manifest of the images published to this path.'),
    ParameterSpec('exit_when_done', True, 'Shut down after the last message.'),
    ParameterSpec('topics', [], 'Bag topics to publish (empty: all).'),
    ParameterSpec(
        'wait_topics', [], 'Topics that need subscribers before playing (empty: every image and odometry topic).'
    ),
)
"""Every parameter (all read-only), its default and its meaning."""


def message_class(msgtype: str) -> Any:
    """The rclpy message class of ``pkg/msg/Name`` (e.g. ``sensor_msgs/msg/Image``).

    Raises:
        ImportError: the interface package is not installed; ValueError: not ``pkg/msg/Name``.
    """
    package, kind, name = msgtype.split('/')
    if kind != 'msg' or not package or not name:
        raise ValueError(f'not a message type: {msgtype}')
    return getattr(importlib.import_module(f'{package}.msg'), name)


class BagReplayNode(Node):
    """Publishes a recording's messages as raw CDR at the recorded pace (see the module docstring).

    Attributes:
        done: every message was published (or playing stopped).
        published: messages published per bag topic.
        errors: problems counted while playing (``play``, ``unreadable_part``, ``bad_header``, ``bad_stamp``).
        salvage: cut parts salvaged (``salvaged_bag``), the messages recovered from them
            (``salvaged_messages``) and the bytes after their last complete record (``lost_tail_bytes``).

    Raises:
        ConfigError: missing or invalid parameters.
        CaptureError: ``bag`` is not a readable recording, or none of its topics can be published.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__('bag_replay', **kwargs)
        values = declare_parameters(self, PARAMETERS, read_only=True)
        arrays: dict[str, list[str]] = {name: [str(v) for v in values[name]] for name in ('topics', 'wait_topics')}
        bag = str(self._value('bag'))
        if not bag:
            raise ConfigError('parameter "bag" (a rosbag2 recording) is required')
        self._rate = float(self._value('rate'))
        if not self._rate > 0:
            raise ConfigError(f'rate must be > 0, got {self._rate}')
        qos_name = str(self._value('qos'))
        check_choices(PARAMETERS, {'qos': qos_name})
        depth = int(self._value('qos_depth'))
        if depth < 1:
            raise ConfigError(f'qos_depth must be >= 1, got {depth}')
        self._restamp = bool(self._value('restamp'))
        self._parts = bag_parts(Path(bag).expanduser())
        if not self._parts:
            raise CaptureError(f'{bag} is not a rosbag2 recording (no metadata.yaml, .mcap or .db3)')
        self.salvage: Counter[str] = Counter()
        self._warned: set[Path] = set()  # parts whose salvage was counted and logged

        qos = qos_profile(qos_name, depth)
        selected = set(arrays['topics'])
        self._pubs: dict[str, Publisher[Any]] = {}
        self._types: dict[str, str] = {}
        self._stamp_first: dict[str, bool] = {}
        self._skipped: set[str] = set()
        for topic, msgtype, fields in self._connections():
            if selected and topic not in selected:
                continue
            if topic in self._skipped:
                continue
            if topic in self._types:
                if self._types[topic] != msgtype:
                    self.get_logger().warning(
                        f'skipping {topic}: two types in the bag ({self._types[topic]}, {msgtype})'
                    )
                    self._skipped.add(topic)
                    self.destroy_publisher(self._pubs.pop(topic))
                continue
            try:
                cls = message_class(msgtype)
            except (ImportError, AttributeError, ValueError) as error:
                self.get_logger().warning(f'skipping {topic}: cannot import {msgtype} ({error})')
                self._skipped.add(topic)
                continue
            self._types[topic] = msgtype
            self._stamp_first[topic] = fields
            self._pubs[topic] = self.create_publisher(cls, topic, qos)
        missing = selected - set(self._types) - self._skipped
        if missing:
            raise ConfigError(f'topics {sorted(missing)} are not in {bag}')
        if not self._pubs:
            raise CaptureError(f'{bag}: no topic can be published')
        if self._restamp:
            unchanged = sorted(t for t, first in self._stamp_first.items() if not first)
            if unchanged:
                self.get_logger().warning(f'restamp: {unchanged} have no leading header and go out unchanged')
        awaited = (IMAGE_TYPE, COMPRESSED_IMAGE_TYPE, ODOMETRY_TYPE)
        wait = arrays['wait_topics'] or [t for t, m in self._types.items() if m in awaited]
        unknown = [t for t in wait if t not in self._pubs]
        if unknown:
            raise ConfigError(f'wait_topics {unknown} are not published from the bag')
        self._wait_topics = wait
        self._wait_s = float(self._value('wait_for_subscribers_s'))
        self._wait_count = max(1, int(self._value('wait_subscriptions')))
        self._settle_s = float(self._value('settle_s'))
        self._manifest_path = str(self._value('manifest'))
        self._exit_when_done = bool(self._value('exit_when_done'))
        self.published: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.done = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._play_safely, name='bag_replay', daemon=True)
        self._thread.start()
        self.get_logger().info(
            f'replaying {len(self._pubs)} topics of {bag} ({len(self._parts)} part(s)) at x{self._rate:g}'
            + (', re-stamped' if self._restamp else '')
        )

    def _value(self, name: str) -> Any:
        return self.get_parameter(name).value

    @property
    def exit_when_done(self) -> bool:
        """The ``exit_when_done`` parameter."""
        return self._exit_when_done

    def _connections(self) -> Iterator[tuple[str, str, bool]]:
        """``(topic, msgtype, stamp first)`` of every connection of every readable part (cut parts salvaged)."""
        for part in self._parts:
            try:
                with open_part(part, default_typestore()) as reader:
                    if reader.salvage is not None:
                        self._count_salvage(part, reader.salvage)
                    for connection in reader.connections:
                        fields = reader.typestore.fielddefs.get(connection.msgtype)
                        first = bool(fields and fields[1] and fields[1][0][1][1] in _STAMP_FIRST)
                        yield connection.topic, connection.msgtype, first
            except Exception as error:  # nothing recoverable (BagReadError): skipped when playing too
                self.get_logger().warning(f'cannot read {part}: {type(error).__name__}: {error}')

    def _count_salvage(self, part: Path, report: SalvageReport) -> None:
        """Count and log a salvaged part once."""
        if part not in self._warned:
            self._warned.add(part)
            self.salvage.update(report.counters())
            self.get_logger().warning(f'salvaging a cut bag: {report.describe()}')

    def _ready(self) -> bool:
        return all(self._pubs[t].get_subscription_count() >= self._wait_count for t in self._wait_topics)

    def _play_safely(self) -> None:
        try:
            self._play()
        except Exception as error:  # report, never hang the main loop
            self.errors['play'] += 1
            self.get_logger().error(f'replay failed: {type(error).__name__}: {error}')
        finally:
            self.done = True

    def _play(self) -> None:
        started = time.monotonic()
        while not self._ready() and time.monotonic() - started < self._wait_s:
            if self._stop.wait(0.05):
                return
        if not self._ready():
            self.get_logger().warning(
                f'fewer than {self._wait_count} subscriptions on some of {self._wait_topics} after {self._wait_s:g} s: '
                'playing'
            )
        if self._stop.wait(self._settle_s):
            return
        manifest = None
        tmp = None
        if self._manifest_path:
            path = Path(self._manifest_path)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f'.{path.name}.tmp')
            manifest = tmp.open('w')
        first_log: int | None = None
        start_wall = 0.0
        offset = 0
        try:
            for part in self._parts:
                try:
                    with open_part(part, default_typestore(), warn=False) as reader:  # warned in _connections
                        wanted = [c for c in reader.connections if c.topic in self._pubs]
                        for connection, log_ns, raw in reader.messages(connections=wanted):
                            if first_log is None:
                                first_log = log_ns
                                start_wall = time.monotonic()
                                offset = self.get_clock().now().nanoseconds - log_ns
                            delay = start_wall + (log_ns - first_log) / _NS / self._rate - time.monotonic()
                            if delay > 0 and self._stop.wait(delay):
                                return
                            self._publish(connection.topic, connection.msgtype, log_ns, bytes(raw), offset, manifest)
                        if reader.salvage is not None:  # rosbags opened it, then failed half-way
                            self._count_salvage(part, reader.salvage)
                except Exception as error:  # nothing recoverable, a file changed while read: go on with the next
                    self.errors['unreadable_part'] += 1
                    self.get_logger().warning(f'stopped reading {part}: {type(error).__name__}: {error}')
        finally:
            if manifest is not None and tmp is not None:
                manifest.close()
                os.replace(tmp, self._manifest_path)
        total = sum(self.published.values())
        salvaged = f'; salvaged from cut parts: {dict(sorted(self.salvage.items()))}' if self.salvage else ''
        self.get_logger().info(f'published {total} messages ({dict(sorted(self.published.items()))}){salvaged}')

    def _publish(self, topic: str, msgtype: str, log_ns: int, raw: bytes, offset: int, manifest: Any) -> None:
        stamp: int | None = None
        if self._stamp_first.get(topic):
            try:
                stamp = cdr_header_stamp_ns(raw)
            except ValueError:
                self.errors['bad_header'] += 1
        published_stamp = stamp
        if self._restamp and stamp is not None:
            try:
                raw = set_cdr_header_stamp(raw, stamp + offset)
                published_stamp = stamp + offset
            except ValueError:
                self.errors['bad_stamp'] += 1
        self._pubs[topic].publish(raw)
        self.published[topic] += 1
        if manifest is not None and msgtype in (IMAGE_TYPE, COMPRESSED_IMAGE_TYPE):
            entry = {
                'topic': topic,
                'published_topic': self._pubs[topic].topic_name,
                'msgtype': msgtype,
                'stamp_ns': stamp,
                'published_stamp_ns': published_stamp,
                'log_time_ns': log_ns,
            }
            manifest.write(json.dumps(entry) + '\n')

    def destroy_node(self) -> None:
        """Stop playing (the manifest holds what was published so far), then destroy the node."""
        self._stop.set()
        self._thread.join(timeout=10.0)
        super().destroy_node()


def _spin_until_done(node: BagReplayNode) -> int:
    while rclpy.ok() and not node.done:
        rclpy.spin_once(node, timeout_sec=0.1)
    if node.done and not node.exit_when_done:
        rclpy.spin(node)
    else:
        # Give subscribers a moment to drain before the publishers disappear.
        end = time.monotonic() + 0.5
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.05)
    return 1 if node.errors.get('play') else 0


def main(args: Sequence[str] | None = None) -> int:
    """Entry point: ``bag_replay --ros-args -p bag:=PATH [-p rate:=1.0 -p restamp:=true ...]``."""
    return run_node(BagReplayNode, name='bag_replay', args=args, spin=_spin_until_done)


if __name__ == '__main__':
    os.environ.setdefault('RCUTILS_COLORIZED_OUTPUT', '0')
    sys.exit(main())
