"""Opening one part of a rosbag2 recording, salvaging parts that were cut short (power loss, killed recorder).

:func:`open_part` is the one place where a bag part (a rosbag2 folder, a ``.mcap`` file or a ``.db3`` file;
:func:`actial_ros.bags.files.bag_parts` lists them) is opened. An intact part is read by rosbags'
``AnyReader`` exactly as before. Only when ``AnyReader`` refuses the part AND its storage turns out to be
damaged is the part salvaged:

* **mcap** (rosbags needs the footer and summary at the end of the file: "File end magic is invalid"): the file
  is read from the start as a stream with the ``mcap`` library (:class:`mcap.stream_reader.StreamReader`, with
  chunk CRC checks). Every complete record up to the cut is kept; a record that runs past the end of the file
  (the cut), or one that does not decode (CRC mismatch, garbage), ends the data. A chunk is only readable
  whole, so the messages of an incomplete chunk are all lost: rosbags' writer
  (:class:`~actial_ros.bags.writer.SplitBagWriter`, ``bag_recorder``) closes a chunk at about 1 MiB, so a
  cut loses at most the last ~1 MiB on disk (a killed writer also loses the chunk it still held in memory);
  its schema and channel records are in the first chunk, so a file cut inside its first chunk has nothing
  recoverable. Only ``cdr`` channels are read. Each file is read twice (a scan, then the messages in
  log-time order), never held in memory whole.
* **sqlite3** (SQLite calls a file shorter than its header says "malformed"): the ``topics``,
  ``message_definitions`` and ``messages`` tables are read with Python's :mod:`sqlite3` on a read-only,
  immutable connection with ``PRAGMA writable_schema=ON`` (which lifts that one size check); messages are
  scanned in row order until SQLite reports a page it cannot read (``PRAGMA quick_check`` decides whether the
  file is damaged at all). How many bytes or rows were lost is not knowable here
  (:attr:`SalvageReport.lost_bytes` is 0).

A part that rosbags opens but fails to read to the end (a sqlite3 file cut inside its last page, a corrupt
chunk inside a complete mcap) is salvaged from that point on: :meth:`BagPart.messages` goes on with the
salvaged messages rosbags had not yielded yet, and :attr:`BagPart.salvage` is set once it has.

A ``.db3`` without its ``metadata.yaml`` needs no salvage: rosbags reads a bare ``.db3`` file (topics and
message definitions come from the database). Note: rosbags' sqlite3 writer commits only when a part is
closed, so a part whose recorder was killed holds its topics but no message (its messages are an uncommitted
transaction); :func:`open_part` warns when such a ``-journal`` file lies beside a ``.db3``. Use mcap storage
(the default) where power can fail.

Message definitions of a salvaged part: the part's own (mcap schema records or the ``message_definitions``
table; ``ros2msg`` and ``ros2idl``), registered with ``rosbags.typesys.get_types_from_msg`` /
``get_types_from_idl`` over the given type store's (default: ROS 2 Kilted, :func:`default_typestore`).

Messages come in log-time order (ties in file order) for intact and salvaged parts alike.

:func:`image_message_counts` counts a recording's messages per topic over all its readable parts.

Why one module of about 650 lines: an intact part and a salvaged one are one :class:`BagPart` interface behind
:func:`open_part`, and the mcap and sqlite3 salvage (scans, their cache, the message readers) exist only
for it and share its :class:`SalvageReport`; split apart, each part would need the others' internals.
"""

from __future__ import annotations

import functools
import heapq
import logging
import sqlite3
from abc import ABC, abstractmethod
from array import array
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

import numpy as np

from actial_ros.bags.files import bag_parts, storage_files
from actial_ros.errors import CaptureError

if TYPE_CHECKING:
    from rosbags.interfaces import Connection, MessageDefinition
    from rosbags.typesys.store import Typestore

__all__ = [
    'SALVAGE_COUNTERS',
    'BagPart',
    'BagReadError',
    'SalvageReport',
    'default_typestore',
    'image_message_counts',
    'open_part',
]

_LOG = logging.getLogger(__name__)

SALVAGE_COUNTERS = ('salvaged_bag', 'salvaged_messages', 'lost_tail_bytes')
"""Counter names of :meth:`SalvageReport.counters`: parts salvaged, messages recovered from them, bytes after
their last complete record."""

_MAX_SCANS = 16
"""Scans of damaged files kept (keyed by path, size and modification time): a capture reopens its parts for
images."""


def default_typestore() -> Typestore:
    """The ROS 2 Kilted type store of ``rosbags`` (message definitions for bags that carry none)."""
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_KILTED)


class BagReadError(CaptureError):
    """A bag part that neither rosbags nor the salvage can read (e.g. cut inside its header or first chunk)."""


@dataclass(frozen=True, slots=True)
class SalvageReport:
    """What the salvage of one damaged part recovered and lost.

    Attributes:
        path: the part (folder or file) as given to :func:`open_part`.
        storage: ``'mcap'`` or ``'sqlite3'``.
        messages: messages recovered (every topic).
        lost_bytes: bytes after the end of the last complete record (mcap: the cut chunk and what follows
            it); 0 for sqlite3 (not measurable).
        truncated: the data ends inside a record or without the file's footer (cut short); ``False`` when
            reading stopped at a complete record that does not decode (corrupt). Always ``True`` for
            sqlite3 (SQLite does not tell a cut from corruption).
        reason: why rosbags refused the part and where the salvage stopped.
    """

    path: Path
    storage: str
    messages: int
    lost_bytes: int
    truncated: bool
    reason: str

    def counters(self) -> dict[str, int]:
        """``{'salvaged_bag': 1, 'salvaged_messages': N, 'lost_tail_bytes': B}`` (:data:`SALVAGE_COUNTERS`),
        without the zero ones."""
        values = zip(SALVAGE_COUNTERS, (1, self.messages, self.lost_bytes), strict=True)
        return {name: value for name, value in values if value}

    def describe(self) -> str:
        """One line for a log."""
        cut = 'cut short' if self.truncated else 'corrupt'
        lost = f', {self.lost_bytes} bytes after the last complete record lost' if self.storage == 'mcap' else ''
        return f'{self.path}: {self.storage} part {cut}; salvaged {self.messages} messages{lost} ({self.reason})'


class BagPart(ABC):
    """An open bag part (:func:`open_part`).

    Attributes:
        path: the part as given.
        connections: rosbags ``Connection`` tuples (``.id``, ``.topic``, ``.msgtype``, ``.msgcount``: messages
            in the part, or recovered from it).
        typestore: the message definitions used by :meth:`deserialize`.
        salvage: ``None`` for an intact part, else what the salvage recovered and lost.
    """

    path: Path
    connections: list[Connection]
    typestore: Typestore
    salvage: SalvageReport | None

    @abstractmethod
    def messages(self, connections: Collection[Connection] = ()) -> Iterator[tuple[Connection, int, bytes]]:
        """``(connection, log_time_ns, raw CDR bytes)`` of the given connections (all when empty), by log time.

        Raises:
            BagReadError: a salvaged part changed or became unreadable since it was opened. Intact parts raise
                what rosbags raises for a damaged file.
        """

    def deserialize(self, raw: bytes | bytearray | memoryview, msgtype: str) -> Any:
        """The message of CDR bytes ``raw`` of type ``msgtype``.

        Raises:
            Exception: what rosbags raises for undecodable CDR (callers count ``bad_message``).
        """
        return self.typestore.deserialize_cdr(bytes(raw), msgtype)


@contextmanager
def open_part(path: str | Path, typestore: Typestore | None = None, *, warn: bool = True) -> Iterator[BagPart]:
    """Open one bag part: with rosbags' ``AnyReader`` when it is intact, else salvaged (module docstring).

    Args:
        path: a rosbag2 folder, a ``.mcap`` or a ``.db3`` file.
        typestore: message definitions for parts that carry none, and the base of a salvaged part's
            definitions (default: ROS 2 Kilted).
        warn: log a warning (python ``logging``) when the part is salvaged or holds an uncommitted
            sqlite3 journal (``False`` when reopening a part already reported).

    Yields:
        The open part; :attr:`BagPart.salvage` tells whether it was salvaged.

    Raises:
        BagReadError: rosbags cannot read the part and either its storage is intact (the error is then
            rosbags', e.g. an unknown profile or a metadata.yaml naming missing files) or nothing can be
            salvaged from it (a file cut inside its header or first chunk, not a bag at all).
    """
    from rosbags.highlevel import AnyReader

    if typestore is None:
        typestore = default_typestore()
    part_path = Path(path)
    salvaged: _SalvagedPart | None = None
    try:
        reader = AnyReader([part_path], default_typestore=typestore)
        reader.open()
    except Exception as error:  # AnyReaderError, ReaderError, FileNotFoundError, struct errors...
        salvaged = _salvage(part_path, typestore, error)
    if salvaged is not None:
        if warn and salvaged.salvage is not None:
            _LOG.warning('%s', salvaged.salvage.describe())
        yield salvaged
        return
    try:
        if warn:
            _warn_uncommitted(part_path)
        yield _IntactPart(part_path, reader, typestore, warn=warn)
    finally:
        reader.close()


def image_message_counts(path: str | Path, topics: Iterable[str]) -> dict[str, int]:
    """Messages per topic over every readable part of a recording, from the bags' metadata/indexes (a salvaged
    part: the messages recovered from it)."""
    wanted = set(topics)
    counts = dict.fromkeys(sorted(wanted), 0)
    typestore = default_typestore()
    for part in bag_parts(path):
        try:
            with open_part(part, typestore) as reader:
                for connection in reader.connections:
                    if connection.topic in wanted:
                        counts[connection.topic] += int(connection.msgcount)
        except Exception:  # an unreadable part counts nothing
            continue
    return counts


def _warn_uncommitted(part: Path) -> None:
    for file in storage_files(part):
        journal = file.with_name(file.name + '-journal')
        if file.suffix == '.db3' and journal.is_file() and journal.stat().st_size > 0:
            _LOG.warning(
                '%s: a sqlite3 journal lies beside it: the writer did not finish, and the messages of its last '
                'transaction are lost (rosbags commits a part only when closing it)',
                file,
            )


class _IntactPart(BagPart):
    """A part rosbags opens: every call goes to its ``AnyReader``, until reading its messages fails (a sqlite3
    file cut inside its last page opens, a corrupt mcap chunk inside a complete file): the rest then comes
    from the salvage, and :attr:`salvage` is set."""

    def __init__(self, path: Path, reader: Any, base: Typestore, *, warn: bool) -> None:
        self.path = path
        self._reader = reader
        self._base = base
        self._warn = warn
        self.connections = list(reader.connections)
        self.typestore = reader.typestore
        self.salvage = None

    def messages(self, connections: Collection[Connection] = ()) -> Iterator[tuple[Connection, int, bytes]]:
        last: int | None = None
        at_last: list[tuple[str, bytes]] = []  # the messages yielded at log time `last`
        try:
            for connection, log_time, raw in self._reader.messages(connections=connections):
                if log_time != last:
                    last, at_last = log_time, []
                at_last.append((connection.topic, raw))
                yield connection, log_time, raw
        except Exception as error:  # apsw.CorruptError, ReaderError, zstd errors...
            salvaged = _salvage(self.path, self._base, error, failed_reading=True)
            assert salvaged.salvage is not None
            self.salvage = salvaged.salvage
            if self._warn:
                _LOG.warning('%s', salvaged.salvage.describe())
            mine = {(c.topic, c.msgtype): c for c in (connections or self.connections)}
            wanted = [c for c in salvaged.connections if (c.topic, c.msgtype) in mine]
            for connection, log_time, raw in salvaged.messages(wanted) if wanted else ():
                if last is not None and log_time < last:
                    continue  # yielded before the failure
                if log_time == last and (connection.topic, raw) in at_last:
                    at_last.remove((connection.topic, raw))
                    continue
                yield mine[(connection.topic, connection.msgtype)], log_time, raw

    def deserialize(self, raw: bytes | bytearray | memoryview, msgtype: str) -> Any:
        return self._reader.deserialize(bytes(raw), msgtype)


# ----------------------------------------------------------------------------------------------------
# Salvage
# ----------------------------------------------------------------------------------------------------


@dataclass
class _Scan:
    """What one storage file holds up to its first unreadable record (messages in file order)."""

    file: Path
    storage: str
    size: int
    end: int = 0
    """Offset after the last complete record (mcap)."""
    damaged: bool = False
    truncated: bool = False
    stop: str = ''
    topics: dict[int, tuple[str, str]] = field(default_factory=dict)
    """Channel (mcap) or topic (sqlite3) id -> (topic, msgtype), cdr only."""
    definitions: dict[str, MessageDefinition] = field(default_factory=dict)
    log_times: array[int] = field(default_factory=lambda: array('q'))
    ids: array[int] = field(default_factory=lambda: array('q'))
    """Per message: its row id (sqlite3 only)."""
    channels: array[int] = field(default_factory=lambda: array('q'))
    """Per message: its channel (mcap) or topic (sqlite3) id; -1 when unknown."""

    def per_channel(self) -> dict[int, int]:
        """Messages recovered per channel (mcap) or topic (sqlite3) id."""
        ids, counts = np.unique(np.asarray(self.channels, dtype=np.int64), return_counts=True)
        return {int(i): int(n) for i, n in zip(ids, counts, strict=True) if int(i) in self.topics}

    @property
    def recovered(self) -> int:
        """Messages recovered (on a known cdr channel or topic)."""
        return sum(self.per_channel().values())


def _salvage(path: Path, typestore: Typestore, error: Exception, *, failed_reading: bool = False) -> _SalvagedPart:
    """The salvaged part, after rosbags failed with ``error`` opening it (or reading it: ``failed_reading``,
    which shows damage the scans may not see, e.g. a sqlite3 index page).

    Raises:
        BagReadError: not mcap or sqlite3 storage, storage found intact, or nothing recoverable.
    """
    refused = f'{type(error).__name__}: {error}'
    files = storage_files(path)
    suffixes = {file.suffix for file in files}
    if not files or len(suffixes) != 1 or suffixes - {'.mcap', '.db3'}:
        raise BagReadError(f'{path}: {refused}') from error
    scans = [_scan(file) for file in files]
    if not failed_reading and not any(scan.damaged for scan in scans):
        raise BagReadError(f'{path}: {refused}') from error  # intact storage: not ours to second-guess
    stops = '; '.join(f'{scan.file.name}: {scan.stop}' for scan in scans if scan.damaged) or 'every record read'
    storage = 'mcap' if suffixes == {'.mcap'} else 'sqlite3'
    if not any(scan.recovered for scan in scans):
        raise BagReadError(f'{path}: {refused}; nothing recoverable ({stops})') from error
    report = SalvageReport(
        path=path,
        storage=storage,
        messages=sum(scan.recovered for scan in scans),
        lost_bytes=sum(scan.size - scan.end for scan in scans if scan.storage == 'mcap'),
        truncated=storage == 'sqlite3' or any(scan.truncated for scan in scans),
        reason=f'{refused}; {stops}',
    )
    return _SalvagedPart(path, scans, typestore, report)


class _SalvagedPart(BagPart):
    """The recovered messages of a damaged part's storage files, read again on each :meth:`messages`."""

    def __init__(self, path: Path, scans: Sequence[_Scan], base: Typestore, report: SalvageReport) -> None:
        from rosbags.interfaces import Connection, ConnectionExtRosbag2, MessageDefinition, MessageDefinitionFormat

        self.path = path
        self.salvage = report
        self._scans = list(scans)
        by_key: dict[tuple[str, str], int] = {}
        counts: dict[int, int] = {}
        self._ids: list[dict[int, int]] = []  # per scan: channel/topic id -> connection id
        for scan in self._scans:
            ids = {channel: by_key.setdefault(key, len(by_key) + 1) for channel, key in scan.topics.items()}
            for channel, count in scan.per_channel().items():
                counts[ids[channel]] = counts.get(ids[channel], 0) + count
            self._ids.append(ids)
        definitions = {msgtype: d for scan in self._scans for msgtype, d in scan.definitions.items()}
        none = MessageDefinition(MessageDefinitionFormat.NONE, '')
        self.connections = [
            Connection(
                cid,
                topic,
                msgtype,
                definitions.get(msgtype, none),
                '',
                counts.get(cid, 0),
                ConnectionExtRosbag2('cdr', []),
                self,
            )
            for (topic, msgtype), cid in by_key.items()
        ]
        self._by_id = {connection.id: connection for connection in self.connections}
        self.typestore = _typestore(definitions, base)

    def messages(self, connections: Collection[Connection] = ()) -> Iterator[tuple[Connection, int, bytes]]:
        wanted = {c.id for c in connections} if connections else set(self._by_id)
        streams = [
            self._file_messages(scan, ids, {channel for channel, cid in ids.items() if cid in wanted})
            for scan, ids in zip(self._scans, self._ids, strict=True)
        ]
        yield from heapq.merge(*streams, key=lambda item: item[1])  # files in order at equal log times

    def _file_messages(
        self, scan: _Scan, ids: dict[int, int], channels: set[int]
    ) -> Iterator[tuple[Connection, int, bytes]]:
        if channels:
            reader = _mcap_messages if scan.storage == 'mcap' else _sqlite_messages
            for channel, log_time, data in reader(scan, channels):
                yield self._by_id[ids[channel]], log_time, data


def _typestore(definitions: dict[str, MessageDefinition], base: Typestore) -> Typestore:
    """``base``'s definitions overlaid with the part's own, as rosbags' AnyReader registers them."""
    from rosbags.interfaces import MessageDefinitionFormat
    from rosbags.typesys import Stores, get_types_from_idl, get_types_from_msg, get_typestore

    types = dict(base.fielddefs)
    for msgtype, definition in definitions.items():
        try:
            if definition.format == MessageDefinitionFormat.MSG:
                types.update(get_types_from_msg(definition.data, msgtype))
            elif definition.format == MessageDefinitionFormat.IDL:
                sep = '=' * 80 + '\n'
                texts = definition.data.split(sep)[1:] if definition.data.startswith(f'{sep}IDL: ') else None
                for text in texts if texts is not None else [definition.data]:
                    types.update(get_types_from_idl(text.split('\n', 1)[1] if texts is not None else text))
        except Exception as error:  # a definition rosbags cannot parse: the base store's is used
            _LOG.warning('cannot parse the message definition of %s (%s): using the default', msgtype, error)
    store = get_typestore(Stores.EMPTY)
    try:
        store.register(types)
    except Exception as error:  # inconsistent definitions: the base store alone
        _LOG.warning('cannot register the salvaged message definitions (%s): using the default type store', error)
        return base
    return store


# ----------------------------------------------------------------------------------------------------
# mcap: the mcap library's stream reader over the complete records
# ----------------------------------------------------------------------------------------------------


class _Cut(Exception):
    """A record runs past the end of the readable data."""


class _ExactReader:
    """A file whose ``read(n)`` returns exactly ``n`` bytes or raises :class:`_Cut` (the mcap library would
    otherwise hand a short last record on as if complete); ``offset`` is the position after the last read."""

    def __init__(self, file: IO[bytes], limit: int) -> None:
        self._file = file
        self._limit = limit
        self.offset = 0

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            raise ValueError(f'invalid record length at byte {self.offset}')
        if self.offset + size > self._limit:
            raise _Cut(self.offset)
        data = self._file.read(size)
        if len(data) != size:
            raise _Cut(self.offset)
        self.offset += size
        return data


def _stream(file: IO[bytes], limit: int) -> tuple[_ExactReader, Iterator[Any]]:
    from mcap.stream_reader import StreamReader

    source = _ExactReader(file, limit)
    # A record longer than what is left of the file is a cut (_Cut), found before anything is read for it.
    reader = StreamReader(cast(IO[bytes], source), validate_crcs=True)
    return source, reader.records


def _scan(file: Path) -> _Scan:
    """The scan of one storage file (``.mcap`` or ``.db3``), cached while its size and modification time hold."""
    stat = file.stat()
    return _scan_cached(file.resolve(), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=_MAX_SCANS)
def _scan_cached(file: Path, size: int, mtime_ns: int) -> _Scan:
    del mtime_ns  # part of the cache key only
    return _scan_mcap(file, size) if file.suffix == '.mcap' else _scan_sqlite(file, size)


def _scan_mcap(file: Path, size: int) -> _Scan:
    """Every complete record of ``file`` in one pass: schemas, cdr channels, each message's log time and
    channel; where and why reading stopped."""
    from mcap.records import Channel, Footer, Message, Schema
    from rosbags.interfaces import MessageDefinition, MessageDefinitionFormat

    scan = _Scan(file, 'mcap', size)
    schemas: dict[int, Schema] = {}
    formats = {'ros2msg': MessageDefinitionFormat.MSG, 'ros2idl': MessageDefinitionFormat.IDL}
    with file.open('rb') as handle:
        source, records = _stream(handle, size)
        footer = False
        try:
            for record in records:
                scan.end = source.offset
                if isinstance(record, Message):
                    scan.log_times.append(record.log_time)
                    scan.channels.append(record.channel_id if record.channel_id in scan.topics else -1)
                elif isinstance(record, Schema):
                    schemas[record.id] = record
                elif isinstance(record, Channel):
                    schema = schemas.get(record.schema_id)
                    if record.message_encoding != 'cdr' or schema is None:
                        continue
                    scan.topics[record.id] = (record.topic, schema.name)
                    if schema.encoding in formats:
                        text = schema.data.decode('utf-8', errors='replace')
                        scan.definitions.setdefault(schema.name, MessageDefinition(formats[schema.encoding], text))
                elif isinstance(record, Footer):
                    footer = True
        except _Cut:
            scan.damaged = scan.truncated = True
            where = 'at the end of a record' if scan.end == size else 'inside a record'
            scan.stop = f'cut {where} after byte {scan.end} of {size} (no footer)'
        except Exception as error:  # CRC mismatch, undecodable chunk, garbage lengths, bad magic
            scan.damaged = True
            scan.stop = f'unreadable record after byte {scan.end} of {size}: {type(error).__name__}: {error}'
        else:
            if not footer:
                scan.damaged = scan.truncated = True
                scan.stop = f'no footer after byte {scan.end} of {size}'
    return scan


def _mcap_messages(scan: _Scan, channels: set[int]) -> Iterator[tuple[int, int, bytes]]:
    """``(channel id, log time, data)`` of the scanned messages on ``channels``, by log time (ties in file
    order), reading the file again up to the end of its last complete record; only messages that arrive
    before their turn are held in memory."""
    from mcap.records import Message

    known = np.asarray(scan.channels, dtype=np.int64)
    times = np.asarray(scan.log_times, dtype=np.int64)
    mask = np.isin(known, np.fromiter(channels, dtype=np.int64))
    wanted_times = times[mask]
    total = int(mask.sum())
    if not total:
        return
    # after[j]: the earliest log time of the wanted messages after the j-th (in file order)
    after = np.append(np.minimum.accumulate(wanted_times[::-1])[::-1][1:], np.iinfo(np.int64).max)
    pending: list[tuple[int, int, int, bytes]] = []
    index = seen = 0
    try:
        with scan.file.open('rb') as handle:
            _, records = _stream(handle, scan.end)
            for record in records:
                if not isinstance(record, Message):
                    continue
                position = index
                index += 1
                if position >= len(mask):
                    break
                if not mask[position]:
                    continue
                heapq.heappush(pending, (record.log_time, position, record.channel_id, record.data))
                while pending and pending[0][0] <= after[seen]:
                    log_time, _, channel, data = heapq.heappop(pending)
                    yield channel, log_time, data
                seen += 1
                if seen == total:
                    break
    except _Cut as error:
        raise BagReadError(f'{scan.file}: changed since it was opened (cut at byte {error})') from error
    while pending:
        log_time, _, channel, data = heapq.heappop(pending)
        yield channel, log_time, data
    if seen != total:
        raise BagReadError(f'{scan.file}: changed since it was opened ({seen} of {total} messages read again)')


# ----------------------------------------------------------------------------------------------------
# sqlite3: whatever SQLite still reads of the rosbag2 tables
# ----------------------------------------------------------------------------------------------------


def _connect(file: Path, *, relaxed: bool) -> sqlite3.Connection:
    connection = sqlite3.connect(f'{file.resolve().as_uri()}?mode=ro&immutable=1', uri=True)
    if relaxed:
        connection.execute('PRAGMA writable_schema=ON')  # read past "database disk image is malformed" checks
    return connection


def _scan_sqlite(file: Path, size: int) -> _Scan:
    """The topics, definitions and each message's row id, timestamp and topic, in row order, up to the first
    row SQLite cannot read; whether SQLite finds the file damaged."""
    from rosbags.interfaces import MessageDefinition, MessageDefinitionFormat

    scan = _Scan(file, 'sqlite3', size)
    try:  # SQLite's own verdict on every page (reads the whole file; only when rosbags failed)
        strict = _connect(file, relaxed=False)
        try:
            problems = [str(row[0]) for row in strict.execute('PRAGMA quick_check(3)').fetchall()]
        finally:
            strict.close()
        if problems != ['ok']:
            scan.damaged = scan.truncated = True
            scan.stop = f'quick_check: {"; ".join(problems)}'
    except sqlite3.Error as error:
        scan.damaged = scan.truncated = True
        scan.stop = f'{error}'
    try:
        connection = _connect(file, relaxed=True)
    except sqlite3.Error as error:
        scan.damaged = scan.truncated = True
        scan.stop = f'cannot open: {error}'
        return scan
    formats = {'ros2msg': MessageDefinitionFormat.MSG, 'ros2idl': MessageDefinitionFormat.IDL}
    try:
        try:
            rows = connection.execute('SELECT id, name, type, serialization_format FROM topics').fetchall()
        except sqlite3.Error as error:
            scan.damaged = scan.truncated = True
            scan.stop = f'topics unreadable: {error}'
            return scan
        scan.topics = {int(i): (str(name), str(msgtype)) for i, name, msgtype, fmt in rows if fmt == 'cdr'}
        with suppress(sqlite3.Error):  # older schemas have no definitions table
            for msgtype, encoding, text in connection.execute(
                'SELECT topic_type, encoding, encoded_message_definition FROM message_definitions'
            ):
                if encoding in formats and text:
                    scan.definitions.setdefault(str(msgtype), MessageDefinition(formats[encoding], str(text)))
        try:
            # The data column too: a message whose overflow pages are gone must end the scan here.
            for rowid, topic_id, timestamp, _ in connection.execute(
                'SELECT id, topic_id, timestamp, data FROM messages'
            ):
                scan.ids.append(int(rowid))
                scan.log_times.append(int(timestamp))
                scan.channels.append(int(topic_id) if int(topic_id) in scan.topics else -1)
        except sqlite3.Error as error:
            scan.damaged = scan.truncated = True
            scan.stop = f'messages readable up to row {scan.ids[-1] if scan.ids else 0}: {error}'
    finally:
        connection.close()
    return scan


def _sqlite_messages(scan: _Scan, topics: set[int]) -> Iterator[tuple[int, int, bytes]]:
    """``(topic id, timestamp, data)`` of the scanned rows on ``topics``, by timestamp (ties in row order)."""
    keys = sorted(
        (time, rowid, topic)
        for time, rowid, topic in zip(scan.log_times, scan.ids, scan.channels, strict=True)
        if topic in topics
    )
    connection = _connect(scan.file, relaxed=True)
    try:
        for time, rowid, topic in keys:
            try:
                row = connection.execute('SELECT data FROM messages WHERE id = ?', (rowid,)).fetchone()
            except sqlite3.Error as error:
                raise BagReadError(f'{scan.file}: row {rowid} no longer readable: {error}') from error
            if row is None:
                raise BagReadError(f'{scan.file}: row {rowid} is gone (the file changed since it was opened)')
            yield topic, time, bytes(row[0])
    finally:
        connection.close()
