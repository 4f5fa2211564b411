"""The viewpoint dataset builder end to end: labels, determinism, resume, splits, bad input, CLI, teacher."""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from actial_ros.training.cli import main as train_main
from actial_ros.training.dataset.build import build
from actial_ros.training.dataset.build_config import BuildConfig
from actial_ros.training.dataset.pair_selection import PairConfig, object_scale
from actial_ros.training.dataset.plan import ShardTask
from actial_ros.training.dataset.schema import COLUMNS
from actial_ros.training.dataset.shards import ShardWriter
from actial_ros.training.dataset.teacher import TeacherConfig
from captures import SHARED_CAPTURE, needs_shared_capture
from fake_openai_server import FakeOpenAIServer

from actial_ros.answers import matches_output_format, parse_answer
from actial_ros.bags.export import write_capture_bag
from actial_ros.enums import QuestionType
from actial_ros.errors import CaptureError, ConfigError, ImageError
from actial_ros.geometry import LabelThresholds, relative_pose, viewpoint_label
from actial_ros.imaging import decode_jpeg, encode_jpeg, fit_size, resize_max
from actial_ros.sources.image_files import fit_image_file, jpeg_reduction, read_image_file
from actial_ros.sources.llff import LlffPosedCapture

datasets = pytest.importorskip('datasets')
pq = pytest.importorskip('pyarrow.parquet')
PIL_Image = pytest.importorskip('PIL.Image')

pytestmark = needs_shared_capture
SOURCE = f'llff:{SHARED_CAPTURE}'


@pytest.fixture(scope='module')
def capture() -> LlffPosedCapture:
    return LlffPosedCapture.open(SHARED_CAPTURE)


def config(out: Path, **changes: Any) -> BuildConfig:
    base = BuildConfig(
        sources=(SOURCE,),
        out=out,
        seed=7,
        pairs=PairConfig(max_pairs=24),
        question_types=('ego_translation', 'object_translation', 'rotation', 'yaw_bin'),
        test_size=0,
        rows_per_shard=40,
        row_group_rows=16,
        cot='template',
        cot_fraction=0.5,
    )
    return replace(base, **changes)


def files(out: Path) -> dict[str, bytes]:
    """Every dataset file (parquet shards and card) by relative path."""
    found = {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted((out / 'data').iterdir())}
    card = out / 'README.md'
    if card.exists():
        found['README.md'] = card.read_bytes()
    return found


def test_rows_carry_the_true_pose_labels_and_images(capture: LlffPosedCapture, tmp_path: Path) -> None:
    out = tmp_path / 'ds'
    report = build(config(out))
    assert report.complete and report.splits['train']['pairs'] == 24 and report.splits['train']['rows'] == 96
    assert sorted(p.name for p in (out / 'data').iterdir()) == [f'train-0000{i}-of-00003.parquet' for i in range(3)]
    assert json.loads((out / 'build_report.json').read_text())['complete'] is True

    dataset = datasets.load_dataset(str(out))  # through the card's YAML configs
    assert list(dataset) == ['train'] and dataset['train'].num_rows == 96
    same = datasets.load_dataset('parquet', data_files=str(out / 'data' / 'train-*.parquet'))['train']
    assert same.features == dataset['train'].features and list(same.features) == list(COLUMNS)

    views = {view.name: view for view in capture.views}
    thresholds = LabelThresholds(translation_m=0.02 * object_scale(capture.poses), yaw_deg=2.0)
    ids = set()
    with_cot = 0
    for row in dataset['train']:
        ids.add(row['id'])
        first, second = views[row['image_1_name']], views[row['image_2_name']]
        expected = relative_pose(first.t_world_camera, second.t_world_camera)
        assert row['yaw_deg'] == pytest.approx(expected.yaw_deg, abs=1e-9)
        assert row['pitch_deg'] == pytest.approx(expected.pitch_deg, abs=1e-9)
        assert row['roll_deg'] == pytest.approx(expected.roll_deg, abs=1e-9)
        np.testing.assert_allclose(row['t12'], expected.translation, atol=1e-12)
        assert 20 <= abs(row['yaw_deg']) <= 100
        letters = 'ABCDEFGHIJKL'[: len(row['options'])]
        assert row['option_labels'][letters.index(row['answer'])] == row['answer_label']
        if row['question_type'] == 'yaw_bin':
            assert re.fullmatch(r'(left|right)_[1-6]', row['answer_label'])
            assert row['answer_label'].startswith('left' if row['yaw_deg'] < 0 else 'right')
        else:
            assert (
                row['answer_label'] == viewpoint_label(QuestionType(row['question_type']), expected, thresholds).value
            )
        assert row['question'].startswith('The two images were taken by the same camera')
        assert row['object_id'] == 'ethiopian_head' and row['split'] == 'train' and row['source'] == SOURCE
        image = row['image_1']
        assert isinstance(image, PIL_Image.Image) and image.size == (512, 512)
        pixels = np.asarray(image.convert('RGB'), dtype=np.int16)
        original = capture.load_image(capture.views.index(first)).astype(np.int16)
        assert np.abs(pixels - original).mean() < 1.0  # the same photo (the file itself, decoded by PIL)
        if row['cot'] is not None:
            with_cot += 1
            assert matches_output_format(row['cot'])
            assert parse_answer(row['cot'], letters=letters).letter == row['answer']
    assert len(ids) == 96
    assert 20 < with_cot < 76  # about half (seeded per row)
    # The 512x512 JPEG files fit in 960x540: their bytes are stored as they are, not re-encoded.
    stored = pq.read_table(out / 'data', columns=['image_1', 'image_2', 'image_1_name', 'image_2_name']).to_pylist()
    for row in stored:
        for column in ('image_1', 'image_2'):
            assert row[column]['bytes'] == (SHARED_CAPTURE / 'images' / row[f'{column}_name']).read_bytes()
    card = (out / 'README.md').read_text()
    assert 'path: data/train-*.parquet' in card and '| train | 1 | 24 | 96 | 3 |' in card
    assert '| rotation | left | 12 |' in card and '| yaw_bin | right_6 | 2 |' in card
    assert not re.search(r'20\d\d-\d\d-\d\d', card)  # no dates


def test_same_seed_same_bytes_with_workers_and_after_interruptions(tmp_path: Path, monkeypatch: Any) -> None:
    reference = tmp_path / 'reference'
    build(config(reference))
    expected = files(reference)
    assert len(expected) == 4

    parallel = tmp_path / 'parallel'
    build(config(parallel, workers=2))
    assert files(parallel) == expected

    # Interrupted between shards (a crash after the second shard was committed), then resumed.
    resumed = tmp_path / 'resumed'
    seen: list[ShardTask] = []

    def crash_after_two(task: ShardTask) -> None:
        seen.append(task)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build(config(resumed), on_shard=crash_after_two)
    assert sorted(p.name for p in (resumed / 'data').iterdir()) == [t.name for t in seen]
    assert not (resumed / 'README.md').exists()

    # Interrupted inside a shard: nothing half-written is left behind.
    original_add = ShardWriter.add
    calls = {'n': 0}

    def failing_add(self: Any, pending: Any) -> None:
        calls['n'] += 1
        if calls['n'] == 10:  # inside the last shard (16 rows, row groups of 16: nothing flushed yet)
            raise OSError('disk full')
        original_add(self, pending)

    monkeypatch.setattr(ShardWriter, 'add', failing_add)
    with pytest.raises(OSError, match='disk full'):
        build(config(resumed))
    assert sorted(p.name for p in (resumed / 'data').iterdir()) == [t.name for t in seen]  # no tmp, no partial
    monkeypatch.setattr(ShardWriter, 'add', original_add)

    report = build(config(resumed))
    assert report.complete and report.shards_resumed == 2 and report.shards_written == 1
    assert files(resumed) == expected

    # A stop after N shards (chunked runs) is a clean, resumable stop.
    chunked = tmp_path / 'chunked'
    first = build(config(chunked, stop_after_shards=1))
    assert not first.complete and first.shards_written == 1
    assert build(config(chunked)).complete and files(chunked) == expected

    # Another seed in the same folder is refused; --overwrite replaces it.
    with pytest.raises(ConfigError, match='another build'):
        build(config(reference, seed=8))
    build(config(reference, seed=8, overwrite=True))
    assert files(reference) != expected


def make_objects(root: Path, names: list[str], *, broken: str | None = None, corrupt: str | None = None) -> None:
    for name in names:
        folder = root / name
        folder.mkdir(parents=True)
        if name == corrupt:
            shutil.copytree(SHARED_CAPTURE / 'images', folder / 'images', symlinks=False)
            target = folder / 'images' / 'DSC_0020.JPG'
            target.write_bytes(target.read_bytes()[:3000])  # truncated JPEG
        else:
            os.symlink(SHARED_CAPTURE / 'images', folder / 'images')
        if name == broken:
            np.save(folder / 'poses_bounds.npy', np.zeros((3, 17)))
        else:
            os.symlink(SHARED_CAPTURE / 'poses_bounds.npy', folder / 'poses_bounds.npy')


def test_split_by_object_with_an_exact_test_size(tmp_path: Path) -> None:
    root = tmp_path / 'objects'
    make_objects(root, [f'cat/obj{k}' for k in range(5)])
    out = tmp_path / 'ds'
    report = build(
        config(
            out,
            sources=(f'objects:{root}',),
            pairs=PairConfig(max_pairs=10),
            test_size=25,
            question_types=('rotation',),
            cot='none',
            images=False,
        )
    )
    assert report.splits['test'] == {'objects': 3, 'pairs': 25, 'pairs_planned': 25, 'rows': 25, 'shards': 1}
    assert report.splits['train']['objects'] == 2 and report.pairs['test_trimmed'] == 5
    splits = {
        split: set(pq.read_table(next((out / 'data').glob(f'{split}-*'))).column('object_id').to_pylist())
        for split in ('train', 'test')
    }
    assert len(splits['test']) == 3 and len(splits['train']) == 2 and not splits['test'] & splits['train']
    rows = pq.read_table(next((out / 'data').glob('test-*')))
    assert rows.column('image_1').null_count == rows.num_rows  # --no-images
    assert set(datasets.load_dataset(str(out))) == {'train', 'test'}


def test_bad_input_is_counted_and_never_labelled(tmp_path: Path) -> None:
    root = tmp_path / 'objects'
    make_objects(root, ['good', 'broken', 'corrupt'], broken='broken', corrupt='corrupt')
    out = tmp_path / 'ds'
    report = build(
        config(
            out,
            sources=(f'objects:{root}',),
            pairs=PairConfig(max_pairs=300),
            cot='none',
            question_types=('rotation',),
            rows_per_shard=5000,
        )
    )
    assert report.complete
    assert [failed[0] for failed in report.failed_objects] == ['broken']
    assert report.objects['failed'] == 1 and any('could not be opened' in w for w in report.warnings)
    assert report.skips['bad_image'] == 1 and report.skips['pair_bad_image'] > 0
    names = pq.read_table(out / 'data', columns=['object_id', 'image_1_name', 'image_2_name']).to_pydict()
    corrupt_rows = [k for k, obj in enumerate(names['object_id']) if obj == 'corrupt']
    assert corrupt_rows
    assert all('DSC_0020.JPG' not in (names['image_1_name'][k], names['image_2_name'][k]) for k in corrupt_rows)
    card = (out / 'README.md').read_text()
    assert '| bad_image | 1 |' in card
    # A single explicit source that cannot be read is an error, not a skip; so is a build without any pair.
    with pytest.raises(CaptureError, match='poses_bounds'):
        build(config(tmp_path / 'single', sources=(f'llff:{root / "broken"}',)))
    with pytest.raises(CaptureError, match=r'no pair with 0 <= \|yaw\| <= 1\.5 deg'):  # the closest views: 1.8 deg
        build(config(tmp_path / 'none', pairs=PairConfig(min_yaw_deg=0.0, max_yaw_deg=1.5)))


def test_cli_builds_from_a_bag_with_the_capture_labels(capture: LlffPosedCapture, tmp_path: Path) -> None:
    stamps = write_capture_bag(capture, tmp_path / 'robot_bag', rate_hz=5.0)
    names = {str(stamp): view.name for stamp, view in zip(stamps, capture.views, strict=True)}
    out = tmp_path / 'ds'
    code = train_main(
        [
            'build-viewpoint',
            '--source',
            f'rosbag:{tmp_path / "robot_bag"}',
            '--out',
            str(out),
            '--seed',
            '3',
            '--test-size',
            '0',
            '--max-pairs-per-object',
            '30',
            '--workers',
            '1',
            '--no-progress',
            '--translation-threshold-m',
            '0.05',
        ]
    )
    assert code == 0
    table = pq.read_table(out / 'data').to_pylist()
    assert len(table) == 90
    views = {view.name: view for view in capture.views}
    for row in table:
        first, second = views[names[row['image_1_name']]], views[names[row['image_2_name']]]
        expected = relative_pose(first.t_world_camera, second.t_world_camera)
        assert row['yaw_deg'] == pytest.approx(expected.yaw_deg, abs=1e-7)
        thresholds = LabelThresholds(translation_m=0.05, yaw_deg=2.0)  # the bag is metric: absolute threshold
        assert row['answer_label'] == viewpoint_label(QuestionType(row['question_type']), expected, thresholds).value
        assert row['object_id'] == 'robot_bag' and row['source'].startswith('rosbag:')
    # Bad flags exit with 2 and a message, not a traceback.
    assert train_main(['build-viewpoint', '--source', 'zip:/x', '--out', str(tmp_path / 'x')]) == 2
    assert train_main(['build-viewpoint', '--source', SOURCE, '--out', str(tmp_path / 'x'), '--cot', 'teacher']) == 2
    # --stop-after-shards: exit 3, resumable.
    assert (
        train_main(
            [
                'build-viewpoint',
                '--source',
                SOURCE,
                '--out',
                str(tmp_path / 'y'),
                '--test-size',
                '0',
                '--rows-per-shard',
                '10',
                '--stop-after-shards',
                '1',
                '--no-progress',
                '--workers',
                '1',
                '--no-images',
            ]
        )
        == 3
    )


def test_cli_builds_from_what_a_cut_bag_still_holds(capture: LlffPosedCapture, tmp_path: Path) -> None:
    """A recorder that lost power (no metadata.yaml, the mcap cut at half): build-viewpoint builds from every
    image of the complete chunks, with the capture's labels, and its report counts the salvage."""
    from actial_ros.bags.reading import open_part

    bag = tmp_path / 'robot_bag'
    stamps = write_capture_bag(capture, bag, rate_hz=5.0)
    names = {str(stamp): view.name for stamp, view in zip(stamps, capture.views, strict=True)}
    (bag / 'metadata.yaml').unlink()
    mcap = next(bag.glob('*.mcap'))
    mcap.write_bytes(mcap.read_bytes()[: mcap.stat().st_size // 2])
    with open_part(mcap, warn=False) as part:
        assert part.salvage is not None
        salvaged = part.salvage.counters()
        kept = {
            str(int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec))
            for connection, _, raw in part.messages()
            if connection.topic.endswith('/compressed')
            for msg in [part.deserialize(raw, connection.msgtype)]
        }
    assert 0 < len(kept) < len(stamps)
    out = tmp_path / 'ds'
    args = ['build-viewpoint', '--source', f'rosbag:{bag}', '--out', str(out), '--seed', '3', '--test-size', '0']
    args += ['--workers', '1', '--no-progress', '--translation-threshold-m', '0.05', '--no-images']
    assert train_main(args) == 0
    table = pq.read_table(out / 'data').to_pylist()
    assert table
    views = {view.name: view for view in capture.views}
    for row in table:
        assert {row['image_1_name'], row['image_2_name']} <= kept  # only images the cut bag still holds
        first, second = views[names[row['image_1_name']]], views[names[row['image_2_name']]]
        expected = relative_pose(first.t_world_camera, second.t_world_camera)
        thresholds = LabelThresholds(translation_m=0.05, yaw_deg=2.0)
        assert row['answer_label'] == viewpoint_label(QuestionType(row['question_type']), expected, thresholds).value
    skips = json.loads((out / 'build_report.json').read_text())['skips']
    assert {key: skips.get(f'view_{key}') for key in salvaged} == salvaged


def test_teacher_cots_are_checked_against_the_truth(tmp_path: Path) -> None:
    def reply(body: dict[str, Any]) -> str:
        text = body['messages'][1]['content'][2]['text']
        truth = re.search(r'Ground truth: option ([A-L])', text)
        assert truth is not None
        letter = truth.group(1)
        if len(reply_log) % 3 == 1:  # every third answer is wrong
            letter = 'A' if letter != 'A' else 'B'
        reply_log.append(letter)
        return f'<think> Step 1 ... Step 5. </think> <answer>{letter}</answer>'

    reply_log: list[str] = []
    with FakeOpenAIServer(model='teacher') as server:
        server.reply = reply
        os.environ['TEST_BUILD_TEACHER_KEY'] = server.api_key
        teacher = TeacherConfig(
            base_url=server.base_url,
            model='teacher',
            api_key_env='TEST_BUILD_TEACHER_KEY',
            max_retries=0,
            concurrency=2,
        )
        report = build(
            config(tmp_path / 'ds', cot='teacher', cot_fraction=0.25, teacher=teacher, question_types=('rotation',))
        )
    asked = len(server.requests)
    assert asked > 0 and report.teacher['accepted'] + report.teacher['rejected_wrong_answer'] == asked
    assert report.teacher['rejected_wrong_answer'] >= asked // 3 - 1
    rows = pq.read_table(tmp_path / 'ds' / 'data').to_pylist()
    cots = [row for row in rows if row['cot'] is not None]
    assert len(cots) == report.teacher['accepted'] == report.cot['teacher']
    assert all(parse_answer(row['cot']).letter == row['answer'] for row in cots)
    first_image = server.requests[0]['messages'][1]['content'][0]['image_url']['url']
    assert first_image.startswith('data:image/jpeg;base64,')  # the images went to the teacher


# ----------------------------------------------------------------------------------------------------
# The image stage: pass-through and reduced-scale decoding (actial_ros.sources.base.fit_image_file)
# ----------------------------------------------------------------------------------------------------

PHOTO = SHARED_CAPTURE / 'images' / 'DSC_0007.JPG'


def full_decode_path(path: Path) -> bytes:
    """What the builder stored before: full decode, resize to fit 960x540, JPEG quality 90."""
    return encode_jpeg(resize_max(read_image_file(path)), 90)


def write_jpeg(path: Path, width: int, height: int, *, orientation: int | None = None, mode: str = 'RGB') -> Path:
    """The shared photo resized (cubic) to ``width`` x ``height``, as JPEG quality 95 (EXIF orientation tag)."""
    image = PIL_Image.fromarray(read_image_file(PHOTO)).resize((width, height), PIL_Image.Resampling.BICUBIC)
    exif = PIL_Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    image.convert(mode).save(path, 'JPEG', quality=95, exif=exif.tobytes())
    return path


def test_a_jpeg_within_the_limits_is_stored_as_its_file() -> None:
    assert fit_image_file(PHOTO, expected_size=(512, 512)) == PHOTO.read_bytes()
    assert fit_image_file(PHOTO, max_width=512, max_height=512) == PHOTO.read_bytes()  # exactly at the limits


@pytest.mark.parametrize('size', [(2048, 1536), (1923, 1081), (4033, 3025), (1600, 1600)])
def test_a_larger_jpeg_is_decoded_at_reduced_scale_to_the_same_size(tmp_path: Path, size: tuple[int, int]) -> None:
    path = write_jpeg(tmp_path / 'big.jpg', *size)
    assert jpeg_reduction(*size, *fit_size(*size)) > 1  # the reduced path is taken
    mine = decode_jpeg(fit_image_file(path, expected_size=size)).astype(np.int16)
    before = decode_jpeg(full_decode_path(path)).astype(np.int16)
    assert mine.shape == before.shape == (*fit_size(*size)[::-1], 3)
    assert np.abs(mine - before).mean() < 1.5  # measured 0.5 to 0.8 grey levels
    assert np.percentile(np.abs(mine - before), 99) < 12


@pytest.mark.parametrize(
    ('name', 'size', 'orientation', 'mode'),
    [
        ('png', (640, 480), None, 'RGB'),  # PNG: always decoded and encoded
        ('less_than_twice', (1000, 600), None, 'RGB'),  # over the limits, but no reduction keeps 900x540
        ('oriented', (512, 384), 6, 'RGB'),  # an EXIF rotation would turn the stored file for some readers
        ('grey', (512, 384), None, 'L'),  # one component: stored as a 3-channel JPEG as before
    ],
)
def test_other_images_get_the_bytes_of_the_full_decode_path(
    tmp_path: Path, name: str, size: tuple[int, int], orientation: int | None, mode: str
) -> None:
    path = tmp_path / f'{name}.jpg'
    if name == 'png':
        path = tmp_path / 'image.png'
        PIL_Image.fromarray(read_image_file(PHOTO)).resize(size).save(path)
    else:
        write_jpeg(path, *size, orientation=orientation, mode=mode)
    stored = fit_image_file(path, expected_size=size)
    assert stored != path.read_bytes() and stored == full_decode_path(path)


def test_a_large_oriented_jpeg_stays_on_its_stored_grid(tmp_path: Path) -> None:
    path = write_jpeg(tmp_path / 'oriented.jpg', 1600, 1200, orientation=6)
    image = decode_jpeg(fit_image_file(path))
    assert image.shape == (540, 720, 3)  # not turned to 405x540
    assert np.abs(image.astype(np.int16) - decode_jpeg(full_decode_path(path))).mean() < 1.5


def test_the_checks_of_a_full_decode_are_kept(tmp_path: Path) -> None:
    # The size the intrinsics expect, from the header, before decoding (small and large files alike).
    with pytest.raises(ImageError, match=r'is 512x512, expected 256x256'):
        fit_image_file(PHOTO, expected_size=(256, 256))
    big = write_jpeg(tmp_path / 'big.jpg', 2048, 1536)
    with pytest.raises(ImageError, match=r'is 2048x1536, expected 1024x768'):
        fit_image_file(big, expected_size=(1024, 768))
    # Truncated, empty, missing and undecodable files are refused, within the limits too.
    data = PHOTO.read_bytes()
    (tmp_path / 'truncated.jpg').write_bytes(data[:3000])
    (tmp_path / 'empty.jpg').write_bytes(b'')
    sos = data.index(b'\xff\xda')
    (tmp_path / 'bad_scan.jpg').write_bytes(data[: sos + 5] + b'\x7f' + data[sos + 6 :])  # unknown component id
    for name, message in [
        ('truncated.jpg', 'truncated JPEG'),
        ('empty.jpg', 'is empty'),
        ('missing.jpg', 'cannot read'),
        ('bad_scan.jpg', 'cannot be decoded'),
    ]:
        with pytest.raises(ImageError, match=message):
            read_image_file(tmp_path / name)  # the full decode refuses it ...
        with pytest.raises(ImageError, match=message):
            fit_image_file(tmp_path / name)  # ... and so does the builder's image stage
    with pytest.raises(ImageError, match='quality'):
        fit_image_file(PHOTO, quality=0)


def test_settings_come_from_yaml_then_flags(tmp_path: Path) -> None:
    """``build-viewpoint --config FILE``: dataclass defaults < YAML < flags given; repeatable flags collect;
    the defaults are those of the pair policy, the bag options and the build (their one home each)."""
    import argparse

    from actial_ros.training.dataset.build import configure_parser
    from actial_ros.training.dataset.build_config import config_from_args

    from actial_ros.pairing import DEFAULT_MAX_YAW_DEG, DEFAULT_MIN_YAW_DEG
    from actial_ros.sources.base import SourceOptions

    settings = tmp_path / 'build.yaml'
    settings.write_text(
        'source: [llff:a, llff:b]\nout: data/vp\nseed: 7\nmax_yaw: 80\nquestion_types: [rotation]\nimages: false\n'
    )
    parser = argparse.ArgumentParser()
    configure_parser(parser)
    config = config_from_args(
        parser.parse_args(
            ['--config', str(settings), '--seed', '3', '--camera', 'a:/a/image', '--camera', 'b:/b/image']
        )
    )
    assert config.sources == ('llff:a', 'llff:b') and config.out == Path('data/vp')
    assert config.seed == 3 and config.pairs.max_yaw_deg == 80.0 and config.question_types == ('rotation',)
    assert not config.images and [c.name for c in config.source_options.cameras] == ['a', 'b']

    defaults = config_from_args(
        parser.parse_args(['--source', 'llff:x', '--out', 'o', '--question-types', 'rotation,ego_translation'])
    )
    assert (defaults.pairs.min_yaw_deg, defaults.pairs.max_yaw_deg) == (DEFAULT_MIN_YAW_DEG, DEFAULT_MAX_YAW_DEG)
    assert defaults.question_types == ('rotation', 'ego_translation') and defaults.images
    assert defaults.source_options.max_interpolation_gap_s == SourceOptions().max_interpolation_gap_s
    assert defaults.test_size == BuildConfig(sources=('x',), out=Path('o')).test_size

    settings.write_text('sources: [llff:a]\n')  # a typo of a key is an error, not a silent default
    with pytest.raises(ConfigError, match='unknown setting'):
        config_from_args(parser.parse_args(['--config', str(settings), '--out', 'o']))
    with pytest.raises(ConfigError, match='source'):
        config_from_args(parser.parse_args(['--out', 'o']))  # no source at all
