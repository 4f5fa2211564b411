"""The spatial_reasoner node against a hostile publisher, over real DDS on loopback (issue 11's table):
fuzzed messages and ask payloads, one bogus stamp in a valid stream, a mismatched CameraInfo, a burst
that overflows the reader's queue. The node must never die, and every loss must be counted.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actial_ros.imaging import IMAGE_ENCODINGS

rclpy = pytest.importorskip('rclpy')
from nav_msgs.msg import Odometry  # noqa: E402
from ros_harness import Checker, start, stop  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Image  # noqa: E402
from std_msgs.msg import String  # noqa: E402

pytestmark = pytest.mark.ros

NODE = 'actial_ros.nodes.spatial_reasoner'
NODE_PARAMS = {
    'backend': 'geometry',
    'diagnostics_period_s': 0.2,
    'min_pair_interval_s': 0.0,
    'image_qos': 'reliable',
    'qos_depth': 1000,
    'json_interface': True,  # the JSON ask topic (~/ask_json) is what the hostile payloads target
}


@pytest.fixture
def checker(rclpy_context: Any) -> Iterator[Checker]:
    check = Checker(rclpy_context)
    yield check
    check.close()


class Publishers:
    def __init__(self, checker: Checker, *, compressed: bool = False) -> None:
        node = checker.node
        self.image = node.create_publisher(Image, '/camera/image_raw', 1000)
        self.compressed = node.create_publisher(CompressedImage, '/camera/image_raw/compressed', 1000)
        self.info = node.create_publisher(CameraInfo, '/camera/camera_info', 100)
        self.odom = node.create_publisher(Odometry, '/odom', 1000)
        self.ask = node.create_publisher(String, '/spatial_reasoner/ask_json', 100)
        image_pub = self.compressed if compressed else self.image
        checker.spin_until(
            lambda: all(p.get_subscription_count() > 0 for p in (image_pub, self.info, self.odom, self.ask)),
            30,
            'subscriptions',
        )
        checker.spin_until(lambda: 'spatial_reasoner: ingest' in checker.diagnostics, 30, 'diagnostics')


def set_stamp(msg: Any, stamp_s: float) -> Any:
    msg.header.stamp.sec, msg.header.stamp.nanosec = int(stamp_s), round((stamp_s % 1) * 1e9) % 1_000_000_000
    return msg


def image(stamp_s: float, *, width: int = 32, height: int = 24, value: int = 0) -> Image:
    msg = set_stamp(Image(), stamp_s)
    msg.height, msg.width, msg.encoding, msg.step = height, width, 'rgb8', width * 3
    msg.data = bytes([value % 256]) * (width * 3 * height)
    return msg


def odom(stamp_s: float, yaw_deg: float = 0.0) -> Odometry:
    msg = set_stamp(Odometry(), stamp_s)
    half = math.radians(yaw_deg) / 2
    msg.pose.pose.orientation.z, msg.pose.pose.orientation.w = math.sin(half), math.cos(half)
    return msg


def camera_info(width: int, height: int) -> CameraInfo:
    msg = CameraInfo()
    msg.width, msg.height = width, height
    msg.k = [float(width), 0.0, width / 2, 0.0, float(width), height / 2, 0.0, 0.0, 1.0]
    return msg


# -- fuzz -----------------------------------------------------------------------------------------

TEXT = st.text(alphabet=st.characters(exclude_categories=['Cs']), max_size=40)
UINT32 = st.integers(0, 2**32 - 1)


def _jpeg(value: int) -> bytes:
    ok, encoded = cv2.imencode('.jpg', np.full((24, 32, 3), value % 256, dtype=np.uint8))
    assert ok
    return bytes(encoded)


@st.composite
def fuzzed(draw: st.DrawFn, compressed: bool = False) -> tuple[str, Any]:
    """One real ROS message with arbitrary field values of the right types; the images raw, or compressed
    (any format string; bytes that are random, a valid JPEG, or a valid JPEG cut or with bytes flipped)."""
    kind = draw(st.sampled_from(['image', 'camera_info', 'odometry', 'ask']))
    stamp = draw(st.one_of(st.floats(99.0, 102.0), st.floats(0.0, 2e9)))
    if kind == 'image' and compressed:
        msg = set_stamp(CompressedImage(), stamp)
        msg.format = draw(st.one_of(st.sampled_from(['jpeg', 'png', 'rgb8; jpeg compressed bgr8', '']), TEXT))
        jpeg = _jpeg(draw(st.integers(0, 255)))
        data = draw(
            st.one_of(
                st.binary(max_size=400),
                st.just(jpeg),
                st.integers(1, len(jpeg) - 1).map(lambda n: jpeg[:n]),
                st.integers(0, len(jpeg) - 1).map(lambda i: jpeg[:i] + bytes([jpeg[i] ^ 0xFF]) + jpeg[i + 1 :]),
            )
        )
        msg.data = data
        return 'image', msg
    if kind == 'image':
        msg = set_stamp(Image(), stamp)
        msg.height, msg.width = draw(st.one_of(st.integers(0, 8), UINT32)), draw(st.integers(0, 8))
        msg.encoding = draw(st.one_of(st.sampled_from(IMAGE_ENCODINGS), TEXT))
        msg.is_bigendian = draw(st.integers(0, 255))
        msg.step = draw(st.one_of(st.integers(0, 64), UINT32))
        msg.data = draw(st.binary(max_size=400))
        return 'image', msg
    if kind == 'camera_info':
        msg = set_stamp(CameraInfo(), stamp)
        msg.width, msg.height = draw(UINT32), draw(UINT32)
        msg.k = draw(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=9, max_size=9))
        return 'camera_info', msg
    if kind == 'odometry':
        msg = set_stamp(Odometry(), stamp)
        values = draw(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=7, max_size=7))
        pose = msg.pose.pose
        pose.position.x, pose.position.y, pose.position.z = values[:3]
        pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w = values[3:]
        return 'odometry', msg
    payload = draw(
        st.one_of(
            TEXT,
            st.integers(0, 30_000).map(lambda n: '[' * n + '{"question": "q"}' + ']' * n),
            st.integers(0, 30_000).map(lambda n: '{"a": ' * n + '1' + '}' * n),
        )
    )
    return 'ask', String(data=payload)


@pytest.mark.parametrize('transport', ['raw', 'compressed'])
def test_fuzzed_messages_over_dds_never_end_the_node(
    transport: str, ros_env: dict[str, str], checker: Checker, tmp_path: Path
) -> None:
    log = tmp_path / 'node.log'
    compressed = transport == 'compressed'
    params = {**NODE_PARAMS, 'image_transport': transport}
    if compressed:
        params['image_topic'] = '/camera/image_raw/compressed'
    node = start(NODE, params, ros_env, log)
    try:
        pubs = Publishers(checker, compressed=compressed)
        mirrored: list[dict[str, Any]] = []  # the JSON mirror of ~/answers (json_interface:=true)
        checker.node.create_subscription(
            String, '/spatial_reasoner/answers_json', lambda msg: mirrored.append(json.loads(msg.data)), 100
        )
        checker.spin_until(
            lambda: checker.node.count_publishers('/spatial_reasoner/answers_json') == 1, 30, 'the JSON mirror'
        )
        # The exact payload that ended the node before asks were parsed within bounds.
        pubs.ask.publish(String(data='[' * 20_000 + ']' * 20_000))
        sent = {'image': 0, 'camera_info': 0, 'odometry': 0, 'ask': 1}

        @settings(max_examples=60 if not compressed else 40)
        @given(st.lists(fuzzed(compressed), min_size=1, max_size=8))
        def publish(messages: list[tuple[str, Any]]) -> None:
            for kind, msg in messages:
                {
                    'image': pubs.compressed if compressed else pubs.image,
                    'camera_info': pubs.info,
                    'odometry': pubs.odom,
                    'ask': pubs.ask,
                }[kind].publish(msg)
                sent[kind] += 1
            checker.spin_for(0.02)

        publish()
        # Still alive and answering: a valid ask gets its reply.
        pubs.ask.publish(String(data=json.dumps({'id': 'after-fuzz', 'question': 'What is ahead?'})))
        checker.spin_until(
            lambda: any(r.get('id') == 'after-fuzz' for r in checker.records), 30, 'the reply after the fuzz', log
        )
        checker.spin_until(lambda: any(r.get('id') == 'after-fuzz' for r in mirrored), 10, 'the JSON mirror', log)
        typed = next(r for r in checker.records if r.get('id') == 'after-fuzz')
        assert next(r for r in mirrored if r.get('id') == 'after-fuzz')['raw_text'] == typed['raw_text']
        checker.spin_for(0.5)
        ingest = checker.ingest()
        assert node.poll() is None, log.read_text()[-3000:]
        assert 'drop_internal_error' not in ingest, log.read_text()[-3000:]
        # Every image that arrived is accounted for (all were sent reliably with a deep queue).
        assert int(ingest['images_received']) == sent['image']
        bad_asks = [r for r in checker.records if r.get('kind') == 'ask' and r['status'] == 'error']
        assert any('deeper than' in r['reason'] for r in bad_asks)
    finally:
        assert stop(node) == 0, log.read_text()[-3000:]


# -- the table's rows -----------------------------------------------------------------------------


def test_one_bogus_odometry_stamp_loses_no_valid_frame(
    ros_env: dict[str, str], checker: Checker, tmp_path: Path
) -> None:
    """Before the timeline guard, one odometry message stamped 5 s in the past reset the timeline and cost
    20 of 40 valid frames (dropped as old_timeline); ``time_jump_confirmations:=1`` still shows that."""
    log = tmp_path / 'node.log'
    node = start(NODE, {**NODE_PARAMS, 'odometry_qos': 'reliable'}, ros_env, log)
    try:
        pubs = Publishers(checker)
        pubs.info.publish(camera_info(32, 24))
        for k in range(41):
            stamp = 100.0 + 0.1 * k
            # The 20th odometry sample carries a stamp 5 s in the past; the others are valid.
            pubs.odom.publish(odom(stamp - 5.0 if k == 20 else stamp, yaw_deg=3.0 * k))
            if k < 40:
                pubs.image.publish(image(stamp, value=k))
            checker.spin_for(0.01)
        pubs.odom.publish(odom(104.1, yaw_deg=123.0))
        checker.spin_until(lambda: int(checker.ingest().get('frames_posed', 0)) >= 40, 30, '40 posed frames', log)
        checker.spin_for(0.5)
        ingest = checker.ingest()
        assert int(ingest['frames_posed']) == 40
        assert int(ingest['drop_time_outlier']) == 1
        assert 'drop_time_reset' not in ingest and 'drop_old_timeline' not in ingest, ingest
    finally:
        assert stop(node) == 0, log.read_text()[-3000:]


@pytest.mark.parametrize(
    ('policy', 'info_size', 'posed', 'counter'),
    [
        ('rescale', (1920, 1080), 0, 'drop_camera_info_size_mismatch'),  # 16:9 calibration, 4:3 images
        ('rescale', (64, 48), 6, 'warn_camera_info_rescaled'),  # same aspect: rescaled, counted
        ('refuse', (64, 48), 0, 'drop_camera_info_size_mismatch'),
    ],
)
def test_camera_info_of_another_size_is_counted_and_handled_per_policy(
    policy: str,
    info_size: tuple[int, int],
    posed: int,
    counter: str,
    ros_env: dict[str, str],
    checker: Checker,
    tmp_path: Path,
) -> None:
    """Before camera_info_size_policy, 1920x1080 CameraInfo with 512x512 images rescaled silently."""
    log = tmp_path / 'node.log'
    node = start(NODE, {**NODE_PARAMS, 'camera_info_size_policy': policy}, ros_env, log)
    try:
        pubs = Publishers(checker)
        pubs.info.publish(camera_info(*info_size))
        checker.spin_until(
            lambda: checker.diagnostics.get('spatial_reasoner: camera camera', {}).get('has_camera_info') == 'True',
            30,
            'the CameraInfo',
            log,
        )
        for k in range(7):
            pubs.odom.publish(odom(100.0 + 0.1 * k))
            if k < 6:
                pubs.image.publish(image(100.0 + 0.1 * k))  # 32x24 (4:3)
        checker.spin_until(lambda: int(checker.ingest().get(counter, 0)) == 6, 30, f'{counter} = 6', log)
        checker.spin_for(0.5)
        assert int(checker.ingest().get('frames_posed', 0)) == posed
    finally:
        assert stop(node) == 0, log.read_text()[-3000:]


def test_a_burst_lost_inside_dds_is_counted(ros_env: dict[str, str], checker: Checker, tmp_path: Path) -> None:
    """Before sequence gaps were counted, ~830 of 2,000 burst images vanished inside DDS, in no counter."""
    log = tmp_path / 'node.log'
    node = start(NODE, {**NODE_PARAMS, 'qos_depth': 10}, ros_env, log)
    try:
        pubs = Publishers(checker)
        burst = 2000
        first = image(100.0, width=320, height=240)
        pubs.image.publish(first)  # the baseline: losses before a writer's first delivered message are unknowable
        checker.spin_until(lambda: checker.images() >= 1, 30, 'the first image', log)
        for k in range(1, burst):
            pubs.image.publish(image(100.0 + 0.001 * k, width=320, height=240))
        checker.spin_for(3.0)
        checker.spin_until(
            lambda: checker.images() + int(checker.ingest().get('drop_dds_lost', 0)) == burst,
            30,
            'every image received or counted as lost',
            log,
        )
        lost = int(checker.ingest().get('drop_dds_lost', 0))
        assert lost > 0, 'the burst was expected to overflow the depth-10 queues'
        camera = checker.diagnostics['spatial_reasoner: camera camera']
        assert int(camera['drop_dds_lost']) == lost
    finally:
        assert stop(node) == 0, log.read_text()[-3000:]


def test_a_publisher_with_incompatible_qos_is_counted(
    ros_env: dict[str, str], checker: Checker, tmp_path: Path
) -> None:
    """A best-effort camera driver against the node's reliable image subscription: DDS never matches them, so
    no image arrives; the QoS event handler counts it (``warn_incompatible_qos``) and logs the policy."""
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    log = tmp_path / 'node.log'
    node = start(NODE, NODE_PARAMS, ros_env, log)
    try:
        Publishers(checker)  # the node is up and subscribed
        best_effort = checker.node.create_publisher(
            Image, '/camera/image_raw', QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)
        )
        for k in range(5):
            best_effort.publish(image(100.0 + 0.1 * k))
        checker.spin_until(
            lambda: int(checker.ingest().get('warn_incompatible_qos', 0)) >= 1, 30, 'warn_incompatible_qos', log
        )
        assert checker.images() == 0
    finally:
        assert stop(node) == 0, log.read_text()[-3000:]
    assert 'has an incompatible QoS (policy RMW_QOS_POLICY_RELIABILITY)' in log.read_text()
