"""bag_replay over real DDS: a two-camera bag (the bundled capture split into two virtual cameras with
known mountings) published as raw CDR to the spatial_reasoner node; and ``actial-ros demo --bag``.

The replay must deliver the bag's bytes unchanged (only the stamp when re-stamped, by one offset), honour
ROS remapping, and the node's answers, scored from the replayed odometry through each camera's extrinsic,
must carry the capture's own relative poses and labels.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from actial_ros.bags.cdr import cdr_header_stamp_ns
from actial_ros.bags.export import RigCamera, write_rig_bag
from actial_ros.bags.files import bag_parts
from actial_ros.bags.reading import default_typestore
from actial_ros.geometry import base_to_optical_extrinsic, relative_pose, viewpoint_label
from actial_ros.message_fields import pose_fields
from actial_ros.sources.llff import LlffPosedCapture

rclpy = pytest.importorskip('rclpy')
from nav_msgs.msg import Odometry  # noqa: E402
from rclpy.qos import QoSProfile  # noqa: E402
from ros_harness import Checker, start, stop  # noqa: E402
from sensor_msgs.msg import CompressedImage  # noqa: E402

pytestmark = pytest.mark.ros

LEFT_TOPIC, RIGHT_TOPIC = '/left/image_raw/compressed', '/right/image_raw/compressed'


def mount(yaw_deg: float, y_m: float) -> np.ndarray:
    """``T_base_camera_optical`` of a camera turned ``yaw_deg`` about base z (left positive), at (0, y_m, 0.3)."""
    rotation = Rotation.from_euler('z', yaw_deg, degrees=True).as_matrix() @ base_to_optical_extrinsic()[:3, :3]
    return base_to_optical_extrinsic((0.0, y_m, 0.3), Rotation.from_matrix(rotation).as_quat())


LEFT, RIGHT = mount(30.0, 0.1), mount(-30.0, -0.1)


def rig_bag(path: Path, capture: LlffPosedCapture, *, recording_json: bool, **kwargs: Any) -> dict[int, int]:
    """Even images -> left, odd -> right; returns bag stamp -> capture index."""
    cameras = [
        RigCamera('left', capture, tuple(range(0, len(capture), 2)), LEFT),
        RigCamera('right', capture, tuple(range(1, len(capture), 2)), RIGHT),
    ]
    return {stamp: k for _, k, stamp in write_rig_bag(cameras, path, recording_json=recording_json, **kwargs)}


def bag_messages(path: Path, topic: str) -> list[bytes]:
    from rosbags.highlevel import AnyReader

    messages = []
    for part in bag_parts(path):
        with AnyReader([part], default_typestore=default_typestore()) as reader:
            connections = [c for c in reader.connections if c.topic == topic]
            messages += [bytes(raw) for _, _, raw in reader.messages(connections=connections)]
    return messages


def extrinsic_params(prefix: str, matrix: np.ndarray) -> dict[str, str]:
    translation, rotation = pose_fields(matrix)
    return {
        f'{prefix}extrinsic_translation': str(list(translation)),
        f'{prefix}extrinsic_rotation_xyzw': str(list(rotation)),
    }


def test_bag_replay_feeds_the_reasoner_byte_exact_and_restamped(
    sample_capture: Path, ros_env: dict[str, str], tmp_path: Path, rclpy_context: Any
) -> None:
    capture = LlffPosedCapture.open(sample_capture)
    bag = tmp_path / 'rig'  # a split sqlite3 recording, as bag_recorder writes them
    index_of = rig_bag(bag, capture, recording_json=True, storage='sqlite3', max_part_bytes=400_000)
    assert len(bag_parts(bag)) >= 3
    checker = Checker(rclpy_context)
    received: dict[str, list[bytes]] = {'left': [], 'odom': []}
    checker.node.create_subscription(
        CompressedImage, LEFT_TOPIC, lambda m: received['left'].append(bytes(m)), QoSProfile(depth=1000), raw=True
    )
    checker.node.create_subscription(
        Odometry, '/odom_replayed', lambda m: received['odom'].append(bytes(m)), QoSProfile(depth=1000), raw=True
    )
    # The replay starts once each image and odometry topic has 2 subscriptions: the node's and this test's.
    checker.node.create_subscription(CompressedImage, RIGHT_TOPIC, lambda m: None, QoSProfile(depth=1000), raw=True)
    node = start(
        'actial_ros.nodes.spatial_reasoner',
        {
            'camera_id': 'left',
            'image_topic': LEFT_TOPIC,
            'image_transport': 'compressed',
            'camera_info_topic': '/left/camera_info',
            **extrinsic_params('', LEFT),
            'additional_cameras': '[right]',
            'right.image_topic': RIGHT_TOPIC,
            'right.camera_info_topic': '/right/camera_info',
            **extrinsic_params('right.', RIGHT),
            'odometry_topic': '/odom_replayed',
            'backend': 'geometry',
            'diagnostics_period_s': 0.2,
            'max_frame_uses': 4,
            'min_pair_interval_s': 0.0,
            'image_qos': 'reliable',
        },
        ros_env,
        tmp_path / 'node.log',
    )
    manifest = tmp_path / 'manifest.jsonl'
    replay_log = tmp_path / 'replay.log'
    try:
        checker.spin_until(lambda: checker.node.count_publishers('/spatial_reasoner/answers') > 0, 30, 'the node')
        replay = subprocess.Popen(
            [
                *(sys.executable, '-m', 'actial_ros.nodes.bag_replay', '--ros-args'),
                *('-p', f'bag:={bag}', '-p', 'rate:=2.0', '-p', 'restamp:=true', '-p', f'manifest:={manifest}'),
                *('-p', 'wait_subscriptions:=2', '-p', 'wait_for_subscribers_s:=60.0'),
                *('-r', '/odom:=/odom_replayed'),
            ],
            env=ros_env,
            stdout=replay_log.open('w'),
            stderr=subprocess.STDOUT,
        )
        checker.spin_until(lambda: replay.poll() is not None, 60, 'the replay to finish')
        assert replay.returncode == 0, replay_log.read_text()
        checker.spin_until(lambda: checker.idle_after(len(capture)), 60, 'all answers')
        checker.spin_until(lambda: checker.idle_after(len(capture)), 2, 'settling')
    finally:
        assert stop(node) == 0, (tmp_path / 'node.log').read_text()
        checker.close()

    # Raw CDR out = bag bytes, except the stamp, shifted by one offset for every message.
    offsets = set()
    for topic, got in ((LEFT_TOPIC, received['left']), ('/odom', received['odom'])):
        original = bag_messages(bag, topic)
        assert len(got) == len(original)
        for raw, recorded in zip(got, original, strict=True):
            # (the middleware pads the serialized payload to a multiple of 4 bytes with zeros)
            assert raw[:4] == recorded[:4] and raw[12 : len(recorded)] == recorded[12:]
            assert len(raw) - len(recorded) < 4 and not any(raw[len(recorded) :])
            offsets.add(cdr_header_stamp_ns(raw) - cdr_header_stamp_ns(recorded))
    assert len(offsets) == 1 and offsets.pop() > 0
    entries = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert len(entries) == len(capture) and {e['topic'] for e in entries} == {LEFT_TOPIC, RIGHT_TOPIC}
    assert len({e['published_stamp_ns'] - e['stamp_ns'] for e in entries}) == 1

    # The node's truth (from the replayed odometry through each camera's extrinsic) = the capture's.
    camera_of = {LEFT_TOPIC: 'left', RIGHT_TOPIC: 'right'}
    original_stamp = {(e['published_stamp_ns'], camera_of[e['topic']]): e['stamp_ns'] for e in entries}
    records = [r for r in checker.records if r['kind'] == 'viewpoint']
    assert {r['camera_1'] == r['camera_2'] for r in records} == {True, False}
    for record in records:
        k1 = index_of[original_stamp[(record['stamp_1'], record['camera_1'])]]
        k2 = index_of[original_stamp[(record['stamp_2'], record['camera_2'])]]
        expected = relative_pose(capture.views[k1].t_world_camera, capture.views[k2].t_world_camera)
        assert math.isclose(record['yaw_deg'], expected.yaw_deg, abs_tol=1e-6), record
        np.testing.assert_allclose(record['t12'], expected.translation, atol=1e-6)
        assert record['truth'] == viewpoint_label(record['question_type'], expected).value
    for name in ('left', 'right'):
        assert int(checker.diagnostics[f'spatial_reasoner: camera {name}']['frames_posed']) == len(capture) // 2


def test_bag_replay_plays_what_a_cut_bag_still_holds(
    sample_capture: Path, ros_env: dict[str, str], tmp_path: Path, rclpy_context: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A recorder that lost power (no metadata.yaml, the mcap cut inside its second chunk): the replay plays every
    message of the complete chunk, byte for byte, warns, and counts what it salvaged."""
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.parameter import Parameter

    from actial_ros.bags.reading import open_part
    from actial_ros.nodes.bag_replay import BagReplayNode

    bag = tmp_path / 'rig'
    rig_bag(bag, LlffPosedCapture.open(sample_capture), recording_json=True)  # about 1.7 MB: two chunks
    (bag / 'metadata.yaml').unlink()
    mcap = next(bag.glob('*.mcap'))
    data = mcap.read_bytes()
    mcap.write_bytes(data[: len(data) * 3 // 4])
    expected: dict[str, list[bytes]] = {LEFT_TOPIC: [], RIGHT_TOPIC: [], '/odom': []}
    with open_part(mcap, warn=False) as part:
        report = part.salvage
        for connection, _, raw in part.messages():
            expected.setdefault(connection.topic, []).append(bytes(raw))
    assert report is not None and 0 < report.messages < 72

    received: dict[str, list[bytes]] = {LEFT_TOPIC: [], RIGHT_TOPIC: [], '/odom': []}
    listener = Node('salvage_listener', context=rclpy_context)
    for topic, cls in ((LEFT_TOPIC, CompressedImage), (RIGHT_TOPIC, CompressedImage), ('/odom', Odometry)):
        listener.create_subscription(
            cls, topic, lambda m, t=topic: received[t].append(bytes(m)), QoSProfile(depth=1000), raw=True
        )
    with caplog.at_level('WARNING', logger='actial_ros.bags.reading'):
        replay = BagReplayNode(
            context=rclpy_context,
            parameter_overrides=[Parameter('bag', value=str(bag)), Parameter('rate', value=5.0)],
        )
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(listener)
    executor.add_node(replay)
    try:
        deadline = time.monotonic() + 60.0
        while time.monotonic() < deadline and not (
            replay.done and all(len(received[t]) == len(expected[t]) for t in received)
        ):
            executor.spin_once(timeout_sec=0.05)
    finally:
        executor.shutdown()
        replay.destroy_node()
        listener.destroy_node()
    assert 'cut short' in caplog.text
    assert replay.salvage == Counter(report.counters()) and replay.salvage['salvaged_bag'] == 1
    assert not replay.errors and sum(replay.published.values()) == report.messages
    for topic, got in received.items():
        recorded_messages = expected[topic]
        assert 0 < len(got) == len(recorded_messages), topic
        for raw, recorded in zip(got, recorded_messages, strict=True):  # the middleware pads to 4 bytes
            assert raw[: len(recorded)] == recorded and not any(raw[len(recorded) :])


def demo_bag(bag: Path, out: Path, ros_env: dict[str, str], *flags: str) -> subprocess.CompletedProcess[str]:
    """``actial-ros demo --bag BAG`` with the geometry backend, at twice the recorded speed."""
    return subprocess.run(
        [
            *(sys.executable, '-m', 'actial_ros.cli', 'demo', '--bag', str(bag), '--backend', 'geometry', *flags),
            *('--out', str(out), '--speed', '2', '--no-progress', '-p', 'min_pair_interval_s:=0.0'),
            *('--domain-id', str(int(ros_env['ROS_DOMAIN_ID']) + 1)),
        ],
        env=ros_env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_demo_bag_writes_rows_named_camera_at_stamp(
    sample_capture: Path, ros_env: dict[str, str], tmp_path: Path
) -> None:
    """``actial-ros demo --bag`` with the cameras given by flags (the bag has no recording.json)."""
    capture = LlffPosedCapture.open(sample_capture)
    bag = tmp_path / 'rig'
    index_of = rig_bag(bag, capture, recording_json=False)
    out = tmp_path / 'answers.jsonl'
    extrinsics = []
    for name, matrix in (('left', LEFT), ('right', RIGHT)):
        translation, rotation = pose_fields(matrix)
        extrinsics += ['--extrinsic', f'{name}:' + ','.join(repr(v) for v in (*translation, *rotation))]
    cameras = ['--camera', f'left:{LEFT_TOPIC}', '--camera', f'right:{RIGHT_TOPIC}', *extrinsics]
    result = demo_bag(bag, out, ros_env, *cameras)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'frames published 24' in ' '.join(result.stdout.split())
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows
    pairs = set()
    for row in rows:
        (c1, s1), (c2, s2) = (row[key].split('@') for key in ('image_1', 'image_2'))
        assert (int(s1), int(s2)) == (row['stamp_1'], row['stamp_2'])  # original stamps, not re-stamped
        assert (c1, c2) == (row['camera_1'], row['camera_2'])
        k1, k2 = index_of[int(s1)], index_of[int(s2)]
        assert {c1: k1 % 2, c2: k2 % 2} == {c1: 0 if c1 == 'left' else 1, c2: 0 if c2 == 'left' else 1}
        expected = relative_pose(capture.views[k1].t_world_camera, capture.views[k2].t_world_camera)
        assert math.isclose(row['yaw_deg'], expected.yaw_deg, abs_tol=1e-6)
        assert row['truth'] == viewpoint_label(row['question_type'], expected).value
        assert row['backend'] == 'geometry'
        pairs.add('same' if c1 == c2 else 'cross')
    assert pairs == {'same', 'cross'}


def test_demo_bag_answers_from_what_a_cut_bag_still_holds(
    sample_capture: Path, ros_env: dict[str, str], tmp_path: Path
) -> None:
    """``actial-ros demo --bag`` on a recording cut by power loss (no metadata.yaml, the mcap cut inside its
    second chunk): it plays and answers about the images the complete chunk holds, and says it salvaged."""
    from actial_ros.bags.reading import open_part

    capture = LlffPosedCapture.open(sample_capture)
    bag = tmp_path / 'rig'
    index_of = rig_bag(bag, capture, recording_json=True)
    (bag / 'metadata.yaml').unlink()
    mcap = next(bag.glob('*.mcap'))
    mcap.write_bytes(mcap.read_bytes()[: mcap.stat().st_size * 3 // 4])
    with open_part(mcap, warn=False) as part:
        images = sum(1 for connection, _, _ in part.messages() if connection.topic in (LEFT_TOPIC, RIGHT_TOPIC))
    assert 0 < images < len(index_of)
    out = tmp_path / 'answers.jsonl'
    result = demo_bag(bag, out, ros_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f'frames published {images}' in ' '.join(result.stdout.split()), result.stdout
    assert 'cut short' in result.stdout + result.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows and all(row['truth'] in ('left', 'right', 'none') for row in rows)


def test_demo_bag_report_shows_every_pairs_frames(ros_env: dict[str, str], tmp_path: Path) -> None:
    """``actial-ros demo --bag --report`` on a one-camera recording (``actial-ros sim --bag``: views named by their
    bare stamps, frames by the node as ``camera@STAMP``): every pair card embeds both frames (issue 22: it said
    "no image" for every frame of a bag), frames are named by camera and time in seconds, and the question keeps its
    line breaks; headless Chromium shows two images per card and one verdict per question."""
    pytest.importorskip('pybullet')
    import re

    from browser import report_dom

    bag = tmp_path / 'orbit'
    sim = ('sim', '--bag', str(bag), '--duration', '4', '--rate', '4', '--size', '160x120')
    rendered = subprocess.run(
        [sys.executable, '-m', 'actial_ros.cli', *sim],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert rendered.returncode == 0, rendered.stdout + rendered.stderr
    out, report = tmp_path / 'answers.jsonl', tmp_path / 'report.html'
    result = demo_bag(bag, out, ros_env, '--report', str(report))
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    pairs = {row['pair_id'] for row in rows}
    assert rows and all(row['image_1'].startswith('camera@') for row in rows)
    page = report.read_text()
    assert 'no image' not in page
    assert page.count('src="data:image/jpeg;base64,') == 2 * len(pairs)
    first = rows[0]
    assert f'camera at {first["stamp_2"] / 1e9:.3f} s' in page
    assert re.search(r'\.question-text \{ white-space: pre-line; \}', page) and '\n' in first['question']
    parsed = report_dom(report)
    assert parsed.pair_images == {f'pair-{pair}': 2 for pair in pairs} and len(parsed.verdicts) == len(rows)
    assert len(parsed.polygons['camera-2']) == len(pairs) and parsed.external == []
    # The same report made again later from the answers file and the bag (actial-ros report).
    from actial_ros.cli import main

    again = tmp_path / 'again.html'
    assert main(['report', str(out), '--bag', str(bag), '--out', str(again), '--title', 'actial_ros demo']) == 0
    assert again.read_text() == page
    assert main(['report', str(tmp_path / 'missing.jsonl'), '--bag', str(bag), '--out', str(again)]) == 2
