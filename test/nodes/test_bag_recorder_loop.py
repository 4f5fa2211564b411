"""The flywheel loop over real DDS: replay a capture, record it with bag_recorder, build the dataset from
the bag; its labels, poses and images equal those built from the capture's own poses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from actial_ros.training.dataset.build import build
from actial_ros.training.dataset.build_config import BuildConfig
from actial_ros.training.dataset.pair_selection import PairConfig, object_scale
from captures import SHARED_CAPTURE, needs_shared_capture

from actial_ros.geometry import relative_pose
from actial_ros.imaging import encode_jpeg, resize_max
from actial_ros.sources.llff import LlffPosedCapture
from actial_ros.sources.rosbag import RosbagCapture

pytest.importorskip('rclpy')
pq = pytest.importorskip('pyarrow.parquet')
from ros_harness import read_recording, start, stop, wait_for  # noqa: E402

pytestmark = pytest.mark.ros


@needs_shared_capture
def test_replay_record_build_gives_the_capture_labels(ros_env: dict[str, str], tmp_path: Path) -> None:
    capture = LlffPosedCapture.open(SHARED_CAPTURE)
    session = tmp_path / 'recordings' / 'run1'
    recorder = start(
        'actial_ros.nodes.bag_recorder',
        {
            'output_dir': tmp_path / 'recordings',
            'session': 'run1',
            'max_bag_size_mb': 4.0,
            'stats_period_s': 0.2,
            # The capture is in SfM units, not metres: keep frames by rotation only (consecutive views turn 2-18 deg).
            'keyframe_min_rotation_deg': 6.0,
            'keyframe_min_translation_m': 1000.0,
        },
        ros_env,
        tmp_path / 'recorder.log',
    )
    manifest = tmp_path / 'manifest.jsonl'
    try:
        wait_for(lambda: 'stats' in read_recording(session), 30, 'the recorder')
        replay = start(
            'actial_ros.nodes.capture_replay',
            {
                'capture': SHARED_CAPTURE,
                'rate_hz': 20.0,
                'manifest': manifest,
                'image_qos': 'reliable',
            },
            ros_env,
            tmp_path / 'replay.log',
        )
        assert replay.wait(90) == 0, (tmp_path / 'replay.log').read_text()
        wait_for(
            lambda: (
                read_recording(session)['stats'].get('images_received', 0) == len(capture)
                and read_recording(session)['stats'].get('queue') == 0
            ),
            30,
            'every image at the recorder',
        )
    finally:
        assert stop(recorder) == 0, (tmp_path / 'recorder.log').read_text()
    final = read_recording(session)
    stats = final['stats']
    assert final['closed'] is True
    kept = sum(v for k, v in stats.items() if k.startswith('images_kept_'))
    assert stats['images_written'] == kept and 10 < kept < len(capture)  # the keyframe policy dropped some
    assert stats['images_dropped_unchanged'] == len(capture) - kept
    assert stats['odometry_written'] == len(capture) and stats['camera_info_written'] >= 1
    assert len(stats['parts']) >= 3  # 4 MB parts of 786 KB rgb8 images
    assert all((session / part / 'metadata.yaml').is_file() for part in stats['parts'])

    # The bag, read back: every kept image posed exactly as in the capture.
    names = {row['stamp_ns']: row['name'] for row in map(json.loads, manifest.read_text().splitlines())}
    views = {view.name: view for view in capture.views}
    bag = RosbagCapture.open(session)
    assert len(bag.views) == kept and not bag.skips
    for view in bag.views:
        assert abs(view.t_world_camera - views[names[view.stamp_ns]].t_world_camera).max() < 1e-9

    # Build from the bag, and from the capture (every pair, no images) with the same thresholds: each bag row has
    # the label of the capture row of the same pair (mirrored when the capture holds it in the other order), the
    # capture's exact pose, and the capture's image re-encoded byte for byte (rgb8 over DDS is lossless).
    threshold = 0.02 * object_scale(capture.poses)
    from_bag = build(
        BuildConfig(
            sources=(f'rosbag:{session}',),
            out=tmp_path / 'from_bag',
            test_size=0,
            pairs=PairConfig(max_pairs=60, translation_threshold_m=threshold),
        )
    )
    from_capture = build(
        BuildConfig(
            sources=(f'llff:{SHARED_CAPTURE}',),
            out=tmp_path / 'from_capture',
            pairs=PairConfig(max_pairs=None),
            test_size=0,
            images=False,
            rows_per_shard=100000,
        )
    )
    assert from_bag.complete and from_capture.complete
    bag_rows = pq.read_table(tmp_path / 'from_bag' / 'data').to_pylist()
    capture_rows = {
        (r['image_1_name'], r['image_2_name'], r['question_type']): r
        for r in pq.read_table(tmp_path / 'from_capture' / 'data').to_pylist()
    }
    assert len(bag_rows) == 180
    mirror = {'left': 'right', 'right': 'left', 'none': 'none'}
    jpeg = {}
    for row in bag_rows:
        first, second = names[int(row['image_1_name'])], names[int(row['image_2_name'])]
        expected = relative_pose(views[first].t_world_camera, views[second].t_world_camera)
        assert abs(row['yaw_deg'] - expected.yaw_deg) < 1e-7
        assert row['t12'] == pytest.approx(list(expected.translation), abs=1e-9)
        same = capture_rows.get((first, second, row['question_type']))
        reverse = capture_rows.get((second, first, row['question_type']))
        assert (same is None) != (reverse is None)
        if same is not None:
            assert row['answer_label'] == same['answer_label']
        else:
            assert reverse is not None and row['answer_label'] == mirror[reverse['answer_label']]
        if first not in jpeg:
            jpeg[first] = encode_jpeg(resize_max(capture.load_image(capture.views.index(views[first]))), 90)
        assert row['image_1']['bytes'] == jpeg[first]
