"""Writing a rosbag2 recording split into parts by size, within a disk budget (:class:`SplitBagWriter`).

:class:`SplitBagWriter` writes raw CDR messages to numbered rosbag2 parts, starting a new part when a part
reaches a size limit and refusing messages (counted) once a total disk budget is spent. ``bag_recorder``
records with it, and :func:`actial_ros.bags.export.write_rig_bag` writes split recordings with it; the
folder it writes is one recording for :func:`actial_ros.bags.files.bag_parts` and the bag reader
(:class:`actial_ros.sources.rosbag.RosbagCapture`).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from actial_ros.bags.reading import default_typestore
from actial_ros.errors import ConfigError

if TYPE_CHECKING:
    from rosbags.typesys.store import Typestore

__all__ = ['SplitBagWriter']

_MESSAGE_OVERHEAD = 40
"""Bytes counted per message on top of its payload (mcap record + index entry, approximately)."""


class SplitBagWriter:
    """Write raw CDR messages to a recording split into rosbag2 parts by size, within a disk budget.

    Parts are ``directory/{prefix}_0000``, ``{prefix}_0001``, ... (each a complete rosbag2 folder with
    ``metadata.yaml``, written when the part is closed); :class:`~actial_ros.sources.rosbag.RosbagCapture`
    reads the folder as one recording. A writer that dies (power loss) leaves only its current part cut: the
    closed parts are whole, and the cut part's complete records (mcap: all but its last, about 1 MiB, chunk)
    are salvaged on reading (:mod:`actial_ros.bags.reading`). A new part starts when the current one would
    exceed ``max_part_bytes``; the last message of each ``sticky`` topic (e.g. camera_info) is written again
    at the start of every new part, so each part is self-contained. Sizes are counted as payload + 40 bytes
    per message.

    Args:
        directory: the recording folder (created; existing parts are left alone and numbering continues
            after them).
        storage: ``'mcap'`` or ``'sqlite3'``.
        max_part_bytes: size at which a new part starts (> 0).
        max_total_bytes: disk budget of this writer; once a message would exceed it, it and every later
            message are refused (counted in :attr:`refused`); ``None``: unlimited.
        prefix: part folder prefix.
        typestore: message definitions for the connections (default: :func:`default_typestore`).

    Raises:
        ConfigError: invalid storage or sizes.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        storage: str = 'mcap',
        max_part_bytes: int = 512 * 1024 * 1024,
        max_total_bytes: int | None = None,
        prefix: str = 'bag',
        typestore: Typestore | None = None,
    ) -> None:
        from rosbags.rosbag2 import StoragePlugin

        plugins = {'mcap': StoragePlugin.MCAP, 'sqlite3': StoragePlugin.SQLITE3}
        if storage not in plugins:
            raise ConfigError(f"storage must be 'mcap' or 'sqlite3', got {storage!r}")
        if max_part_bytes <= 0 or (max_total_bytes is not None and max_total_bytes <= 0):
            raise ConfigError(f'sizes must be > 0, got part {max_part_bytes}, total {max_total_bytes}')
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._plugin = plugins[storage]
        self._max_part = int(max_part_bytes)
        self._max_total = max_total_bytes
        self._prefix = prefix
        self._typestore = typestore or default_typestore()
        self._topics: dict[str, str] = {}
        self._sticky: dict[str, tuple[int, bytes] | None] = {}
        self._writer: Any = None
        self._connections: dict[str, Any] = {}
        self._part_bytes = 0
        existing = sorted(self.directory.glob(f'{prefix}_[0-9][0-9][0-9][0-9]'))
        self._next_index = int(existing[-1].name.rsplit('_', 1)[1]) + 1 if existing else 0
        self.parts: list[Path] = []
        """Parts written by this writer, in order."""
        self.bytes_written = 0
        """Bytes counted so far (payload + per-message overhead)."""
        self.messages_written: Counter[str] = Counter()
        """Messages written per topic."""
        self.refused = 0
        """Messages refused because the disk budget was spent."""

    @property
    def budget_exhausted(self) -> bool:
        """True once a message was refused for the disk budget (recording has stopped)."""
        return self.refused > 0

    def add_topic(self, topic: str, msgtype: str, *, sticky: bool = False) -> None:
        """Declare a topic before writing to it (``sticky``: repeat its last message in each new part)."""
        self._topics[topic] = msgtype
        if sticky:
            self._sticky.setdefault(topic, None)
        if self._writer is not None and topic not in self._connections:
            self._connections[topic] = self._writer.add_connection(topic, msgtype, typestore=self._typestore)

    def write(self, topic: str, timestamp_ns: int, raw: bytes | bytearray | memoryview) -> bool:
        """Write one CDR message; returns ``False`` when refused for the disk budget.

        Raises:
            ConfigError: the topic was not declared with :meth:`add_topic`.
        """
        if topic not in self._topics:
            raise ConfigError(f'topic {topic} was not declared with add_topic()')
        data = bytes(raw)
        size = len(data) + _MESSAGE_OVERHEAD
        if self.refused or (self._max_total is not None and self.bytes_written + size > self._max_total):
            self.refused += 1
            return False
        if self._writer is None or (self._part_bytes > 0 and self._part_bytes + size > self._max_part):
            self._open_part()
        self._write(topic, timestamp_ns, data)
        if topic in self._sticky:
            self._sticky[topic] = (timestamp_ns, data)
        return True

    def _write(self, topic: str, timestamp_ns: int, data: bytes) -> None:
        self._writer.write(self._connections[topic], int(timestamp_ns), data)
        size = len(data) + _MESSAGE_OVERHEAD
        self._part_bytes += size
        self.bytes_written += size
        self.messages_written[topic] += 1

    def _open_part(self) -> None:
        from rosbags.rosbag2 import Writer

        self._close_part()
        path = self.directory / f'{self._prefix}_{self._next_index:04d}'
        self._next_index += 1
        writer = Writer(path, version=9, storage_plugin=self._plugin)
        writer.open()
        self._writer = writer
        self._connections = {
            topic: writer.add_connection(topic, msgtype, typestore=self._typestore)
            for topic, msgtype in self._topics.items()
        }
        self._part_bytes = 0
        self.parts.append(path)
        for topic, last in self._sticky.items():
            if last is not None:
                self._write(topic, last[0], last[1])

    def _close_part(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def close(self) -> None:
        """Close the current part (writes its ``metadata.yaml``). Idempotent."""
        self._close_part()

    def __enter__(self) -> SplitBagWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
