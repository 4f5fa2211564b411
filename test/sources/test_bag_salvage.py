"""Bags cut by power loss are salvaged: every complete record before the cut is read (no ROS).

The bags are the package's own: the bundled capture written by :func:`write_rig_bag` as a two-camera rig
(raw 512x512 rgb8 images, so that rosbags' mcap writer, which closes a chunk at about 1 MiB, writes a chunk
every two images: cuts land in many places), then cut. What is expected of a cut mcap is derived from the
intact file's own index (chunk offsets, message index records), independently of the salvage code: the
messages of every chunk that ends before the cut, and nothing after the last complete record.
"""

from __future__ import annotations

import heapq
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from actial_ros.bags.cdr import IMAGE_TYPE, ODOMETRY_TYPE, image_cdr, odometry_cdr
from actial_ros.bags.export import RigCamera, write_rig_bag
from actial_ros.bags.files import bag_parts, storage_files
from actial_ros.bags.reading import BagReadError, SalvageReport, default_typestore, image_message_counts, open_part
from actial_ros.bags.writer import SplitBagWriter
from actial_ros.errors import CaptureError
from actial_ros.sources.bag_layout import read_bag_layout
from actial_ros.sources.llff import LlffPosedCapture
from actial_ros.sources.rosbag import RosbagCapture

pytest.importorskip('rosbags')
pytest.importorskip('mcap')

Message = tuple[str, int, bytes]  # (topic, log time, CDR)
NS = 1_000_000_000
T0 = 1_700_000_000 * NS


def rig_cameras(capture: LlffPosedCapture) -> list[RigCamera]:
    return [
        RigCamera('left', capture, tuple(range(0, len(capture), 2))),
        RigCamera('right', capture, tuple(range(1, len(capture), 2))),
    ]


@pytest.fixture(scope='module')
def capture(sample_capture: Path) -> LlffPosedCapture:
    return LlffPosedCapture.open(sample_capture)


@pytest.fixture(scope='module')
def mcap_rig(tmp_path_factory: pytest.TempPathFactory, capture: LlffPosedCapture) -> Path:
    """The rig as one mcap bag folder (metadata.yaml, recording.json): about 19 MB in 12 chunks."""
    bag = tmp_path_factory.mktemp('rig') / 'rig'
    write_rig_bag(rig_cameras(capture), bag, transport='raw')
    return bag


def read_all(path: Path) -> tuple[list[Message], SalvageReport | None, int]:
    """Every message of a part (log-time order), its salvage report, and the sum of its connections' counts."""
    with open_part(path) as part:
        messages = [(c.topic, t, bytes(raw)) for c, t, raw in part.messages()]
        return messages, part.salvage, sum(c.msgcount for c in part.connections)


def mcap_layout(mcap: Path) -> tuple[list[tuple[int, int, int]], set[int], int]:
    """From the intact file, with the mcap library's seeking reader (summary) and stream reader (chunks):
    ``(start, end, messages)`` of every chunk, every record boundary of the data section, the summary start."""
    from mcap.reader import make_reader
    from mcap.records import Chunk, Footer
    from mcap.records import Message as McapMessage
    from mcap.stream_reader import StreamReader, breakup_chunk

    with mcap.open('rb') as file:
        summary = make_reader(file).get_summary()
    assert summary is not None
    indexes = sorted(summary.chunk_indexes, key=lambda index: index.chunk_start_offset)
    with mcap.open('rb') as file:
        records = list(StreamReader(file, emit_chunks=True).records)
    chunks = [record for record in records if isinstance(record, Chunk)]
    footer = next(record for record in records if isinstance(record, Footer))
    counts = [sum(isinstance(r, McapMessage) for r in breakup_chunk(chunk)) for chunk in chunks]
    layout, boundaries = [], {footer.summary_start}
    for index, count in zip(indexes, counts, strict=True):
        end = index.chunk_start_offset + index.chunk_length
        layout.append((index.chunk_start_offset, end, count))
        boundaries |= {index.chunk_start_offset, end, end + index.message_index_length}
        boundaries |= set(index.message_index_offsets.values())
    return layout, boundaries, footer.summary_start


CUTS: dict[str, Callable[[list[tuple[int, int, int]], int, int], int]] = {
    # name: cut offset from (chunks, summary start, file size)
    'half': lambda chunks, summary, size: size // 2,
    'quarter': lambda chunks, summary, size: size // 4,
    'three_quarters': lambda chunks, summary, size: size * 3 // 4,
    'inside_chunk_4': lambda chunks, summary, size: (chunks[3][0] + chunks[3][1]) // 2,
    'right_after_chunk_4_and_its_index': lambda chunks, summary, size: chunks[4][0],
    'inside_the_index_of_chunk_2': lambda chunks, summary, size: chunks[1][1] + 5,
    'only_the_summary_lost': lambda chunks, summary, size: summary,
}


@pytest.mark.parametrize('cut_name', sorted(CUTS))
def test_cut_mcap_keeps_every_complete_chunk(
    mcap_rig: Path, tmp_path: Path, cut_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    source = next(mcap_rig.glob('*.mcap'))
    intact, report, count = read_all(source)
    assert report is None and count == len(intact) == 72  # 24 images, 24 CameraInfo, 24 odometry
    chunks, boundaries, summary = mcap_layout(source)
    assert len(chunks) == 12 and sum(n for _, _, n in chunks) == len(intact)
    data = source.read_bytes()
    cut = CUTS[cut_name](chunks, summary, len(data))
    expected = sum(n for _, end, n in chunks if end <= cut)
    lost = cut - max(b for b in boundaries if b <= cut)

    cut_file = tmp_path / 'cut.mcap'
    cut_file.write_bytes(data[:cut])
    with caplog.at_level(logging.WARNING, logger='actial_ros.bags.reading'):
        messages, report, count = read_all(cut_file)
    assert report is not None and report.storage == 'mcap' and report.truncated
    # A prefix of the intact bag in log-time order, byte for byte: nothing before the cut is missing.
    assert messages == intact[:expected]
    assert report.messages == count == expected
    assert report.lost_bytes == lost
    assert report.counters() == {
        k: v for k, v in [('salvaged_bag', 1), ('salvaged_messages', expected), ('lost_tail_bytes', lost)] if v
    }
    assert 'cut short' in caplog.text and f'salvaged {expected} messages' in caplog.text
    if cut_name == 'only_the_summary_lost':
        assert expected == len(intact) and lost == 0
    if cut_name == 'right_after_chunk_4_and_its_index':
        assert lost == 0 and expected == sum(n for _, _, n in chunks[:4])


def test_cut_mcap_written_out_of_log_time_order_comes_back_in_order(tmp_path: Path) -> None:
    """Messages written newest first (file order is not log-time order): the salvaged ones come back by log
    time, and they are the ones written before the cut."""
    typestore = default_typestore()
    written: list[Message] = []
    with SplitBagWriter(tmp_path, prefix='reversed') as writer:
        writer.add_topic('/camera/image_raw', IMAGE_TYPE)
        writer.add_topic('/odom', ODOMETRY_TYPE)
        for k in reversed(range(10)):  # 10 raw 512x512 images: a chunk every two
            stamp = T0 + k * NS // 10
            for topic, raw in (
                ('/odom', odometry_cdr(typestore, stamp, np.eye(4))),
                ('/camera/image_raw', image_cdr(typestore, stamp, np.full((512, 512, 3), k, dtype=np.uint8))),
            ):
                writer.write(topic, stamp, raw)
                written.append((topic, stamp, raw))
    source = storage_files(tmp_path / 'reversed_0000')[0]
    chunks, _, _ = mcap_layout(source)
    assert len(chunks) == 5
    data = source.read_bytes()
    cut_file = tmp_path / 'cut.mcap'
    cut_file.write_bytes(data[: (chunks[3][0] + chunks[3][1]) // 2])  # inside the fourth chunk
    messages, report, _ = read_all(cut_file)
    expected = sum(n for _, _, n in chunks[:3])
    assert report is not None and report.messages == len(messages) == expected
    assert messages == sorted(written[:expected], key=lambda message: message[1])  # stable: odometry first


def test_mcap_cut_inside_its_header_or_first_chunk_has_nothing_to_salvage(mcap_rig: Path, tmp_path: Path) -> None:
    source = next(mcap_rig.glob('*.mcap'))
    chunks, _, _ = mcap_layout(source)
    data = source.read_bytes()
    for cut in (0, 5, 20, chunks[0][0], chunks[0][0] + 100, chunks[0][1] - 1):
        cut_file = tmp_path / f'cut_{cut}.mcap'
        cut_file.write_bytes(data[:cut])
        with pytest.raises(BagReadError, match='nothing recoverable'), open_part(cut_file):
            pass
    # An mcap whose storage is intact but that rosbags refuses is not second-guessed.
    other = tmp_path / 'profile.mcap'
    other.write_bytes(data.replace(b'ros2', b'ros9', 1))
    with pytest.raises(BagReadError, match='Profile is not ros2'), open_part(other):
        pass


def test_cut_recording_poses_the_images_it_still_holds(
    mcap_rig: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A recorder that lost power: no metadata.yaml, the mcap cut at half. Read like any bag, with a warning."""
    intact = RosbagCapture.open(mcap_rig)
    assert len(intact.views) == 24 and not intact.skips
    bag = tmp_path / 'rig'
    shutil.copytree(mcap_rig, bag)
    (bag / 'metadata.yaml').unlink()
    mcap = next(bag.glob('*.mcap'))
    mcap.write_bytes(mcap.read_bytes()[: mcap.stat().st_size // 2])
    assert bag_parts(bag) == [mcap]
    messages, report, _ = read_all(mcap)
    assert report is not None
    recovered = {(topic, t) for topic, t, _ in messages if topic.endswith('/image_raw')}

    with caplog.at_level(logging.WARNING, logger='actial_ros.bags.reading'):
        cut = RosbagCapture.open(bag)
    assert 'cut short' in caplog.text
    assert cut.skips == {
        'salvaged_bag': 1,
        'salvaged_messages': report.messages,
        'lost_tail_bytes': report.lost_bytes,
    }
    expected = [
        i for i, view in enumerate(intact.views) if (f'/{intact.view_camera(i)}/image_raw', view.stamp_ns) in recovered
    ]
    assert 0 < len(expected) == len(cut.views) < len(intact.views)
    for view, i in zip(cut.views, expected, strict=True):
        assert view.name == intact.views[i].name and view.intrinsics == intact.views[i].intrinsics
        np.testing.assert_array_equal(view.t_world_camera, intact.views[i].t_world_camera)
    # Images decode from the salvaged part as from the intact one.
    first, last = 0, len(cut.views) - 1
    images = dict(cut.iter_images([first, last]))
    np.testing.assert_array_equal(images[first], intact.load_image(expected[first]))
    np.testing.assert_array_equal(images[last], intact.load_image(expected[last]))
    # The demo's view of the bag: its cameras, and the images it still holds.
    layout = read_bag_layout(bag)
    assert [c.name for c in layout.cameras] == ['left', 'right'] and layout.cameras[0].image_type == IMAGE_TYPE
    counts = image_message_counts(bag, ['/left/image_raw', '/right/image_raw'])
    assert sum(counts.values()) == len(recovered) == len(cut.views)


def test_split_recording_with_its_last_part_cut(
    capture: LlffPosedCapture, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The recorder splits recordings into parts: power loss cuts the last one only, the others are whole."""
    session = tmp_path / 'session'
    write_rig_bag(rig_cameras(capture), session, transport='raw', max_part_bytes=5_000_000)
    parts = bag_parts(session)
    assert len(parts) >= 4
    intact = RosbagCapture.open(session)
    last = parts[-1]
    (last / 'metadata.yaml').unlink()  # the recorder never closed it
    mcap = storage_files(last)[0]
    data = mcap.read_bytes()
    mcap.write_bytes(data[: len(data) * 3 // 4])
    assert bag_parts(session) == [*parts[:-1], mcap]
    with caplog.at_level(logging.WARNING, logger='actial_ros.bags.reading'):
        cut = RosbagCapture.open(session)
    assert cut.skips['salvaged_bag'] == 1 and cut.skips['lost_tail_bytes'] > 0 and 'cut short' in caplog.text
    assert cut.parts == (*parts[:-1], mcap)
    names = [view.name for view in cut.views]
    assert len(intact.views) > len(names) >= len(intact.views) - 4  # a part holds about 6 images
    assert names == [view.name for view in intact.views[: len(names)]]


def test_folder_of_several_storage_files_one_of_them_cut(capture: LlffPosedCapture, tmp_path: Path) -> None:
    """A bag folder holding several mcap files (no metadata.yaml) with the last one cut: the whole files read
    whole, the cut one up to its cut, as one part with one connection per topic."""
    session = tmp_path / 'session'
    write_rig_bag(rig_cameras(capture), session, transport='raw', max_part_bytes=5_000_000)
    first, second = (storage_files(part)[0] for part in bag_parts(session)[:2])
    whole_first, _, _ = read_all(first)
    whole_second, _, _ = read_all(second)
    folder = tmp_path / 'two_files'
    folder.mkdir()
    shutil.copy(first, folder / 'a.mcap')
    data = second.read_bytes()
    (folder / 'b.mcap').write_bytes(data[: len(data) // 2])
    with open_part(folder) as part:
        assert part.salvage is not None and part.salvage.truncated
        assert sorted(c.topic for c in part.connections) == sorted({t for t, _, _ in whole_first})
        messages = [(c.topic, t, bytes(raw)) for c, t, raw in part.messages()]
        left = [c for c in part.connections if c.topic == '/left/image_raw']
        only_left = [(c.topic, t, bytes(raw)) for c, t, raw in part.messages(left)]
    recovered = len(messages) - len(whole_first)
    assert 0 < recovered < len(whole_second) and part.salvage.messages == len(messages)
    # In log-time order across the files (each new part starts with the sticky CameraInfo, stamped earlier).
    assert messages == list(heapq.merge(whole_first, whole_second[:recovered], key=lambda message: message[1]))
    assert only_left == [m for m in messages if m[0] == '/left/image_raw']


@pytest.fixture(scope='module')
def sqlite_rig(tmp_path_factory: pytest.TempPathFactory, capture: LlffPosedCapture) -> Path:
    bag = tmp_path_factory.mktemp('sqlite') / 'rig'
    write_rig_bag(rig_cameras(capture), bag, storage='sqlite3')
    return bag


def test_db3_without_metadata_reads_as_with_it(
    sqlite_rig: Path, capture: LlffPosedCapture, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    intact = RosbagCapture.open(sqlite_rig)
    bag = tmp_path / 'rig'
    shutil.copytree(sqlite_rig, bag)
    (bag / 'metadata.yaml').unlink()
    db3 = bag / 'rig.db3'
    assert bag_parts(bag) == [db3] and bag_parts(db3) == [db3]
    with caplog.at_level(logging.WARNING, logger='actial_ros.bags.reading'):
        bare = RosbagCapture.open(bag)
    assert not bare.skips and not caplog.text  # rosbags reads a bare .db3: nothing to salvage
    assert [v.name for v in bare.views] == [v.name for v in intact.views] and len(bare.views) == 24
    for view, with_metadata in zip(bare.views, intact.views, strict=True):
        np.testing.assert_array_equal(view.t_world_camera, with_metadata.t_world_camera)
        assert view.intrinsics == with_metadata.intrinsics
    assert read_bag_layout(bag) == read_bag_layout(sqlite_rig)
    topics = ['/left/image_raw/compressed', '/right/image_raw/compressed']
    assert image_message_counts(bag, topics) == image_message_counts(sqlite_rig, topics) == dict.fromkeys(topics, 12)

    # A split sqlite3 recording whose middle part has no metadata.yaml: found as a part all the same.
    session = tmp_path / 'session'
    write_rig_bag(rig_cameras(capture), session, storage='sqlite3', max_part_bytes=400_000)
    parts = bag_parts(session)
    assert len(parts) >= 3
    whole = RosbagCapture.open(session)
    (parts[1] / 'metadata.yaml').unlink()
    assert bag_parts(session) == [parts[0], parts[1] / f'{parts[1].name}.db3', *parts[2:]]
    split = RosbagCapture.open(session)
    assert [v.name for v in split.views] == [v.name for v in whole.views] and not split.skips


@pytest.mark.parametrize('where', ['half', 'inside_the_last_page'])
def test_cut_db3_is_salvaged(sqlite_rig: Path, tmp_path: Path, where: str, caplog: pytest.LogCaptureFixture) -> None:
    source = sqlite_rig / 'rig.db3'
    intact, report, _ = read_all(source)
    assert report is None and len(intact) == 72
    data = source.read_bytes()
    cut = len(data) // 2 if where == 'half' else len(data) - 100
    bag = tmp_path / 'rig'
    bag.mkdir()
    shutil.copy(sqlite_rig / 'recording.json', bag)
    (bag / 'rig.db3').write_bytes(data[:cut])

    with caplog.at_level(logging.WARNING, logger='actial_ros.bags.reading'), open_part(bag / 'rig.db3') as part:
        if where == 'half':
            assert part.salvage is not None  # "database disk image is malformed": refused by rosbags at once
        messages = [(c.topic, t, bytes(raw)) for c, t, raw in part.messages()]
        # Inside the last page, rosbags opens the file and its SQLite (apsw 3.54 here) fails on the short page
        # half-way through the messages: the rest comes from the salvage.
        report = part.salvage
    assert report is not None and report.storage == 'sqlite3' and report.truncated and report.lost_bytes == 0
    assert 0 < len(messages) <= len(intact) and messages == intact[: len(messages)]
    assert len(messages) < len(intact) if where == 'half' else len(messages) >= len(intact) - 2
    assert 'cut short' in caplog.text
    capture = RosbagCapture.open(bag)
    assert capture.skips['salvaged_bag'] == 1 and capture.skips['salvaged_messages'] == report.messages
    assert 0 < len(capture.views) <= 24

    # Cut inside its first page: nothing SQLite can read, a counted skip / an error that says so.
    (bag / 'rig.db3').write_bytes(data[:1000])
    with pytest.raises(CaptureError, match=r'no readable bag.*nothing recoverable'):
        RosbagCapture.open(bag)
