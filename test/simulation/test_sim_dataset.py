"""The rig as a dataset source: a simulated run recorded to rosbag2 becomes a viewpoint dataset whose
labels, angles and images match the rig's own pose record.

Two routes: over ROS 2 (rig -> real DDS -> the ``bag_recorder`` node -> bag; the builder takes the
extrinsic from the recorder's ``recording.json``), and offline (``actial-ros sim --bag``, no ROS).
"""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from actial_ros.errors import ConfigError
from actial_ros.geometry import LabelThresholds, relative_pose, viewpoint_label
from actial_ros.imaging import decode_jpeg, encode_jpeg
from actial_ros.simulation.mount import camera_mount, mount_parameters
from actial_ros.simulation.parameters import rig_config_from_values
from actial_ros.simulation.record import PoseRecord, read_pose_record

pytest.importorskip('pybullet')
pq = pytest.importorskip('pyarrow.parquet')
pytest.importorskip('datasets')

PITCH_DEG = 30.0
MOUNT = mount_parameters(camera_mount((0.0, 0.0, 0.1), pitch_down_deg=PITCH_DEG))
# The run, as rig parameters (the same values drive the CLI and the re-rendering check).
RUN: dict[str, Any] = {
    'duration_s': 8.0,
    'camera_rate_hz': 5.0,
    'width': 160,
    'height': 120,
    'height_m': 0.8,
    'radius_m': 1.5,
    'speed_deg_s': 30.0,
    'seed': 5,
    **MOUNT,
}


def _sim_args(values: dict[str, Any]) -> list[str]:
    args: list[str] = []
    for name, value in values.items():
        args += ['-p', f'{name}:={json.dumps(value)}']
    return args


def _build(source: Path, out: Path, env: dict[str, str] | None, *extra: str) -> str:
    """Run ``build-viewpoint`` on the bag ``source``; returns its stderr (the log)."""
    result = subprocess.run(
        [
            sys.executable,
            '-m',
            'actial_ros.training.cli',
            'build-viewpoint',
            '--source',
            f'rosbag:{source}',
            '--out',
            str(out),
            '--no-progress',
            '--workers',
            '1',
            '--max-pairs-per-object',
            '0',
            '--test-size',
            '0',
            *extra,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stderr


def _complete(path: Path) -> bool:
    try:
        return read_pose_record(path).complete
    except ConfigError:  # not created yet, or its meta line is still being written
        return False


def _check_dataset(out: Path, record: PoseRecord, *, rerender: bool = True) -> int:
    """Every row's angles, t12 and label agree with the pose record; some images are the rig's frames."""
    table = pq.read_table(sorted((out / 'data').glob('*.parquet'))).to_pylist()
    assert table, 'the dataset is empty'
    frames = record.by_stamp()
    thresholds = LabelThresholds(translation_m=0.01, yaw_deg=2.0)  # the builder's defaults for bags
    pairs = set()
    for row in table:
        first, second = frames[int(row['image_1_name'])], frames[int(row['image_2_name'])]
        expected = relative_pose(first.t_world_camera, second.t_world_camera)
        assert math.isclose(row['yaw_deg'], expected.yaw_deg, abs_tol=1e-6), row['id']
        assert math.isclose(row['pitch_deg'], expected.pitch_deg, abs_tol=1e-6), row['id']
        np.testing.assert_allclose(row['t12'], expected.translation, atol=1e-6)
        assert row['answer_label'] == viewpoint_label(row['question_type'], expected, thresholds).value, row['id']
        assert row['option_labels'][ord(row['answer']) - ord('A')] == row['answer_label']
        assert 20.0 <= abs(row['yaw_deg']) <= 100.0
        pairs.add((first.stamp_ns, second.stamp_ns))
    if rerender:
        # The dataset's images are the rig's renders at those stamps (up to JPEG loss).
        from actial_ros.simulation.rig import SimRig

        config = rig_config_from_values(RUN)
        row = table[0]
        with SimRig(config) as rig:
            for column in ('image_1', 'image_2'):
                stamp = int(row[f'{column}_name'])
                step = (stamp - config.timing.start_ns) // config.timing.step_ns
                rendered = rig.render(step).rgb
                stored = decode_jpeg(row[column]['bytes']).astype(float)
                assert stored.shape == rendered.shape
                same = np.abs(stored - decode_jpeg(encode_jpeg(rendered, 90)).astype(float)).mean()
                neighbour = rig.render(step + config.timing.camera_every).rgb
                other = np.abs(stored - decode_jpeg(encode_jpeg(neighbour, 90)).astype(float)).mean()
                assert same < 1.0 and other > 5.0 * max(same, 0.5), (same, other)
    return len(pairs)


@pytest.mark.ros
def test_recorded_sim_run_builds_a_dataset_matching_the_record(ros_env: dict[str, str], tmp_path: Path) -> None:
    pytest.importorskip('rclpy')
    record_path, recordings = tmp_path / 'record.jsonl', tmp_path / 'recordings'
    recorder_log, rig_log = tmp_path / 'recorder.log', tmp_path / 'rig.log'
    recorder = subprocess.Popen(
        [
            sys.executable,
            '-m',
            'actial_ros.nodes.bag_recorder',
            '--ros-args',
            *_sim_args(
                {'output_dir': str(recordings), 'session': 'sim', 'use_sim_time': True, 'stats_period_s': 0.2, **MOUNT}
            ),
        ],
        env=ros_env,
        stdout=recorder_log.open('w'),
        stderr=subprocess.STDOUT,
    )
    rig: subprocess.Popen[bytes] | None = None
    try:
        # The rig waits for the recorder's image subscription (then settles) before its first step. It holds
        # at the end: the clock goes on, so the recorder's timers (on simulated time) keep running.
        rig = subprocess.Popen(
            [
                sys.executable,
                '-m',
                'actial_ros.cli',
                'sim',
                '--record',
                str(record_path),
                '--on-end',
                'hold',
                '--realtime-factor',
                '4',
                *_sim_args({**RUN, 'wait_for_subscribers_s': 30.0, 'qos_depth': 50}),
            ],
            env=ros_env,
            stdout=rig_log.open('w'),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 120  # generous: the machine may be shared
        while not _complete(record_path):
            assert rig.poll() is None, rig_log.read_text()
            assert time.monotonic() < deadline, rig_log.read_text()
            time.sleep(0.2)
        record = read_pose_record(record_path)
        assert len(record) == 41
        status_file = recordings / 'sim' / 'recording.json'
        deadline = time.monotonic() + 60
        while True:  # every image has reached the recorder's writer
            status = json.loads(status_file.read_text()) if status_file.is_file() else {}
            if status.get('stats', {}).get('images_received', 0) >= 41:
                break
            assert time.monotonic() < deadline, f'recorder missed messages: {status}\n{recorder_log.read_text()}'
            time.sleep(0.2)
    finally:
        for proc in (rig, recorder):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                proc.wait(30)
    assert rig is not None and rig.returncode == 0, rig_log.read_text()
    assert recorder.returncode == 0, recorder_log.read_text()

    out = tmp_path / 'dataset'
    _build(recordings / 'sim', out, ros_env)  # the extrinsic comes from recording.json
    pairs = _check_dataset(out, record)
    assert pairs >= 10


def test_offline_sim_bag_builds_a_dataset_matching_the_record(tmp_path: Path) -> None:
    bag, record_path = tmp_path / 'bag', tmp_path / 'record.jsonl'
    from actial_ros.cli import main

    assert main(['sim', '--bag', str(bag), '--record', str(record_path), *_sim_args(RUN)]) == 0
    record = read_pose_record(record_path)
    out = tmp_path / 'dataset'
    # The bag carries its camera mount in recording.json: no flag is needed, and no mount is assumed.
    log = _build(bag, out, None)
    assert 'ASSUMING' not in log
    assert _check_dataset(out, record, rerender=False) >= 10


def test_bag_without_a_recorded_mount_builds_with_a_loud_warning(tmp_path: Path) -> None:
    bag = tmp_path / 'bag'
    from actial_ros.cli import main

    assert main(['sim', '--bag', str(bag), *_sim_args(RUN)]) == 0
    mount = json.loads((bag / 'recording.json').read_text())['cameras'][0]
    assert mount['extrinsic_translation'] == pytest.approx(MOUNT['extrinsic_translation'])
    (bag / 'recording.json').unlink()
    log = _build(bag, tmp_path / 'dataset', None)
    assert 'has no recorded extrinsic' in log and 'ASSUMING the default forward-looking mount' in log
    # The flags still override, per build, and silence the warning.
    log = _build(
        bag,
        tmp_path / 'flagged',
        None,
        '--extrinsic-translation',
        *map(str, MOUNT['extrinsic_translation']),
        '--extrinsic-rotation-xyzw',
        *map(str, MOUNT['extrinsic_rotation_xyzw']),
    )
    assert 'ASSUMING' not in log
