"""The spatial_reasoner node over real DDS on loopback: replay + node + checker in separate processes,
bad input injected over real topics, parameters validated on change, and the demo (the main job).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from browser import CHROMIUM, Dom, chromium

from actial_ros.geometry import relative_pose, viewpoint_label
from actial_ros.sources.llff import LlffCapture

rclpy = pytest.importorskip('rclpy')
from nav_msgs.msg import Odometry  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from ros_harness import Checker, start, stop  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from std_msgs.msg import String  # noqa: E402

pytestmark = pytest.mark.ros


@pytest.fixture
def checker(rclpy_context: Any) -> Iterator[Checker]:
    check = Checker(rclpy_context)
    yield check
    check.close()


NODE_PARAMS = {'backend': 'geometry', 'diagnostics_period_s': 0.2, 'max_frame_uses': 2, 'min_pair_interval_s': 0.0}


@pytest.mark.parametrize('transport', ['raw', 'compressed'])
def test_replay_node_and_checker_over_dds(
    transport: str, sample_capture: Path, ros_env: dict[str, str], checker: Checker, tmp_path: Path
) -> None:
    topic = '/camera/image_raw/compressed' if transport == 'compressed' else '/camera/image_raw'
    node = start(
        'actial_ros.nodes.spatial_reasoner',
        {**NODE_PARAMS, 'image_transport': transport, 'image_topic': topic},
        ros_env,
        tmp_path / 'node.log',
    )
    manifest = tmp_path / 'manifest.jsonl'
    try:
        checker.spin_until(lambda: checker.node.count_publishers('/spatial_reasoner/answers') > 0, 30, 'the node')
        replay = start(
            'actial_ros.nodes.capture_replay',
            {
                'capture': sample_capture,
                'rate_hz': 10.0,
                'image_transport': transport,
                'image_topic': topic,
                'manifest': manifest,
            },
            ros_env,
            tmp_path / 'replay.log',
        )
        checker.spin_until(lambda: replay.poll() is not None, 60, 'the replay to finish')
        assert replay.returncode == 0, (tmp_path / 'replay.log').read_text()
        capture = LlffCapture.open(sample_capture)
        checker.spin_until(lambda: checker.idle_after(len(capture)), 60, 'all answers')
        checker.spin_until(lambda: checker.idle_after(len(capture)), 2, 'settling')
    finally:
        assert stop(node) == 0, (tmp_path / 'node.log').read_text()

    # Every frame reached the node and was posed from odometry; none dropped.
    ingest = checker.ingest()
    assert int(ingest['frames_posed']) == len(capture)
    assert not [k for k in ingest if k.startswith('drop_')], ingest
    assert int(ingest['pairs_made']) >= 5

    # The ground truth the node derived from odometry equals the capture's own poses.
    names = {json.loads(line)['stamp_ns']: json.loads(line)['name'] for line in manifest.read_text().splitlines()}
    views = {view.name: view for view in capture.views}
    viewpoint = [r for r in checker.records if r['kind'] == 'viewpoint']
    assert len(viewpoint) == 3 * int(ingest['pairs_made'])
    for record in viewpoint:
        first, second = views[names[record['stamp_1']]], views[names[record['stamp_2']]]
        expected = relative_pose(first.t_world_camera, second.t_world_camera)
        assert math.isclose(record['yaw_deg'], expected.yaw_deg, abs_tol=1e-6)
        np.testing.assert_allclose(record['t12'], expected.translation, atol=1e-6)
        assert record['truth'] == viewpoint_label(record['question_type'], expected).value
        assert record['backend'] == 'geometry'
        assert record['status'] in ('answered', 'abstained', 'unparsed')
        assert len(record['options']) == 3 and record['question'].startswith('The two images')
    accuracy = checker.diagnostics['spatial_reasoner: accuracy']
    assert int(accuracy['rotation.asked']) == int(ingest['pairs_made'])


def test_bad_input_is_counted_and_the_node_keeps_going(
    ros_env: dict[str, str], checker: Checker, tmp_path: Path
) -> None:
    # Reliable image QoS: a best-effort reader may miss the first samples of a writer it has not
    # finished matching yet, and this test must see every one of its messages.
    node = start(
        'actial_ros.nodes.spatial_reasoner',
        {**NODE_PARAMS, 'image_qos': 'reliable', 'json_interface': True},
        ros_env,
        tmp_path / 'node.log',
    )
    pub = checker.node
    image_pub = pub.create_publisher(Image, '/camera/image_raw', 10)
    info_pub = pub.create_publisher(CameraInfo, '/camera/camera_info', 10)
    odom_pub = pub.create_publisher(Odometry, '/odom', 10)
    ask_pub = pub.create_publisher(String, '/spatial_reasoner/ask_json', 10)
    try:
        checker.spin_until(
            lambda: (
                image_pub.get_subscription_count() > 0
                and odom_pub.get_subscription_count() > 0
                and ask_pub.get_subscription_count() > 0
                and info_pub.get_subscription_count() > 0
            ),
            30,
            'subscriptions',
        )
        checker.spin_until(lambda: 'spatial_reasoner: ingest' in checker.diagnostics, 30, 'diagnostics')

        def image(stamp_s: float, *, step_delta: int = 0, encoding: str = 'rgb8', size: int = 0) -> Image:
            msg = Image()
            msg.header.stamp.sec, msg.header.stamp.nanosec = int(stamp_s), int((stamp_s % 1) * 1e9)
            msg.height, msg.width, msg.encoding = 4, 4, encoding
            msg.step = 12 + step_delta
            msg.data = bytes(size or 48)
            return msg

        def odom(stamp_s: float, x: float) -> Odometry:
            msg = Odometry()
            msg.header.stamp.sec, msg.header.stamp.nanosec = int(stamp_s), int((stamp_s % 1) * 1e9)
            msg.pose.pose.position.x = x
            msg.pose.pose.orientation.w = 1.0
            return msg

        # No camera_info yet: kept (the vLLM backend does not need intrinsics) and warned about.
        odom_pub.publish(odom(100.0, 0.0))
        odom_pub.publish(odom(100.2, 0.0))
        image_pub.publish(image(100.1))
        image_pub.publish(image(100.15, step_delta=-3))  # step smaller than a row
        image_pub.publish(image(100.16, size=10))  # data shorter than step * height
        image_pub.publish(image(100.17, encoding='yuv444_weird'))  # unknown encoding
        odom_pub.publish(odom(100.3, math.nan))  # NaN pose
        info = CameraInfo()
        info_pub.publish(info)  # k all zeros: an uncalibrated camera
        image_pub.publish(image(103.0))  # odometry has a gap: waits, then times out
        odom_pub.publish(odom(101.0, 0.0))
        odom_pub.publish(odom(100.9, 0.0))  # slightly out of order: inserted
        image_pub.publish(image(105.0))
        odom_pub.publish(odom(5.0, 0.0))  # time jumped back (simulation reset) ...
        odom_pub.publish(odom(5.1, 0.0))
        odom_pub.publish(odom(5.2, 0.0))  # ... confirmed by the third sample on the new timeline
        image_pub.publish(image(5.05))  # posed on the new timeline
        ask_pub.publish(String(data='not json'))
        ask_pub.publish(String(data=json.dumps({'id': 'x1', 'question': 'What is in front of the robot?'})))

        def counted() -> bool:
            ingest = checker.ingest()
            keys = (
                'drop_bad_image',
                'drop_bad_odometry',
                'drop_bad_camera_info',
                'drop_time_reset',
                'warn_no_camera_info',
            )
            return all(int(ingest.get(k, 0)) > 0 for k in keys) and int(ingest.get('frames_posed', 0)) >= 2

        checker.spin_until(counted, 30, 'every bad input to be counted')
        checker.spin_until(lambda: {r.get('id') for r in checker.records} >= {'', 'x1'}, 30, 'ask replies')
        ingest = checker.ingest()
        assert int(ingest['drop_bad_image']) == 3
        assert int(ingest['drop_bad_odometry']) == 1
        assert int(ingest['drop_bad_camera_info']) == 1
        assert int(ingest['drop_time_reset']) >= 1
        assert checker.levels['spatial_reasoner: ingest'] in (0, 1)
        asks = {r['id']: r for r in checker.records if r.get('kind') == 'ask'}
        assert asks['']['status'] == 'error' and 'bad request' in asks['']['reason']
        # The geometry backend cannot answer free-form questions: it abstains, with a reason.
        assert asks['x1']['status'] == 'abstained' and asks['x1']['reason']
        assert node.poll() is None, 'the node died on bad input'
    finally:
        assert stop(node) == 0, (tmp_path / 'node.log').read_text()
    log = (tmp_path / 'node.log').read_text()
    assert 'dropped since last report' in log


def test_parameters_are_validated_on_change(rclpy_context: Any) -> None:
    from actial_ros.nodes.spatial_reasoner import SpatialReasonerNode

    node = SpatialReasonerNode(context=rclpy_context)
    try:
        result = node.set_parameters([Parameter('min_yaw_deg', value=120.0)])  # above max_yaw_deg (100)
        assert not result[0].successful and 'yaw range' in result[0].reason
        result = node.set_parameters([Parameter('question_types', value=['rotation', 'pitch'])])
        assert not result[0].successful and 'pitch' in result[0].reason
        result = node.set_parameters([Parameter('min_yaw_deg', value=200.0)])  # outside the descriptor range
        assert not result[0].successful
        result = node.set_parameters([Parameter('image_topic', value='/other')])  # read-only
        assert not result[0].successful
        result = node.set_parameters([Parameter('min_yaw_deg', value=30.0), Parameter('max_yaw_deg', value=60.0)])
        assert all(r.successful for r in result)
        assert node.engine.config.pair_policy.min_yaw_deg == 30.0
        assert node.engine.config.pair_policy.max_yaw_deg == 60.0
    finally:
        node.destroy_node()


def test_demo_command_writes_scored_rows(sample_capture: Path, ros_env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / 'answers.jsonl'
    result = subprocess.run(
        [
            sys.executable,
            '-m',
            'actial_ros.cli',
            'demo',
            '--capture',
            str(sample_capture),
            '--backend',
            'geometry',
            '--out',
            str(out),
            '--rate',
            '10',
            '--no-progress',
            '--domain-id',
            str(int(ros_env['ROS_DOMAIN_ID']) + 1),
            '--report',
            str(tmp_path / 'report.html'),
        ],
        env=ros_env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows
    # The HTML report (opened in a browser by test/test_demo_report.py): a card and two frames per pair.
    report = (tmp_path / 'report.html').read_text()
    pairs = {row['pair_id'] for row in rows}
    assert all(f'id="pair-{pair_id}"' in report for pair_id in pairs)
    assert report.count('src="data:image/jpeg;base64,') == 2 * len(pairs)
    capture = LlffCapture.open(sample_capture)
    views = {view.name: view for view in capture.views}
    for row in rows:
        for key in (
            'image_1',
            'image_2',
            'stamp_1',
            'stamp_2',
            'question_type',
            'truth',
            'answer',
            'correct',
            'yaw_deg',
            'latency_s',
            'backend',
        ):
            assert key in row
        expected = relative_pose(views[row['image_1']].t_world_camera, views[row['image_2']].t_world_camera)
        assert row['truth'] == viewpoint_label(row['question_type'], expected).value
        if row['answer'] is not None:
            assert row['correct'] == (row['answer'] == row['truth'])
    for heading in ('question type', 'accuracy', 'ego_translation', 'rotation', 'latency p50'):
        assert heading in result.stdout
    if CHROMIUM is not None:  # make test installs it (as root); test/test_demo_report.py skips, saying so, where not
        _report_in_the_browser_matches_the_rows(tmp_path / 'report.html', rows)


def _report_in_the_browser_matches_the_rows(report: Path, rows: list[dict[str, Any]]) -> None:
    """The demo's real report as headless Chromium builds it: one card and two displayed frames per pair,
    one verdict per question, and each question type's accuracy as the rows give it."""
    dom = chromium('--dump-dom', report.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    parsed = Dom()
    parsed.feed(dom.stdout)
    pairs = {row['pair_id'] for row in rows}
    assert all(f'pair-{pair_id}' in parsed.texts for pair_id in pairs)
    assert parsed.images == 2 * len(pairs) and len(parsed.verdicts) == len(rows)
    expected = {'correct': 0, 'wrong': 0, 'unscored': 0}
    for row in rows:
        expected['unscored' if row['correct'] is None else 'correct' if row['correct'] else 'wrong'] += 1
    assert {v: parsed.verdicts.count(v) for v in expected} == expected
    accuracy = ' '.join(parsed.texts['accuracy'])
    for kind in {row['question_type'] for row in rows}:
        scored = [row['correct'] for row in rows if row['question_type'] == kind and row['correct'] is not None]
        if scored:
            assert f'{100 * sum(scored) / len(scored):.1f} % ({sum(scored)}/{len(scored)})' in accuracy, accuracy


def test_vllm_backend_end_to_end_against_a_fake_server(
    sample_capture: Path, ros_env: dict[str, str], checker: Checker, tmp_path: Path
) -> None:
    """The node's vllm backend over ROS 2, against the stdlib FAKE OpenAI-compatible server (it answers
    'A' to everything; the real vLLM tier is test/serving/). Checks the requests and the records."""
    from fake_openai_server import FakeOpenAIServer

    server = FakeOpenAIServer(api_key='secret-test-key', model='fake-actial').start()
    env = {**ros_env, 'ACTIAL_API_KEY': 'secret-test-key'}
    node = start(
        'actial_ros.nodes.spatial_reasoner',
        {**NODE_PARAMS, 'backend': 'vllm', 'vllm_base_url': server.base_url, 'vllm_model': 'fake-actial'},
        env,
        tmp_path / 'node.log',
    )
    try:
        checker.spin_until(lambda: checker.node.count_publishers('/spatial_reasoner/answers') > 0, 30, 'the node')
        replay = start(
            'actial_ros.nodes.capture_replay', {'capture': sample_capture, 'rate_hz': 10.0}, env, tmp_path / 'r.log'
        )
        checker.spin_until(lambda: replay.poll() is not None, 60, 'the replay to finish')
        checker.spin_until(lambda: checker.idle_after(24), 60, 'all answers')
    finally:
        assert stop(node) == 0, (tmp_path / 'node.log').read_text()
        server.stop()
    records = [r for r in checker.records if r['kind'] == 'viewpoint']
    assert records and len(server.requests) == len(records)
    for record in records:
        assert record['status'] == 'answered' and record['answer_letter'] == 'A'
        assert record['answer'] == record['option_labels'][0]
        assert record['correct'] == (record['answer'] == record['truth'])
        assert record['backend'] == 'vllm' and record['latency_s'] > 0
        assert record['usage'].get('completion_tokens', 0) > 0
        assert record['raw_text'] == '<think>fake</think> <answer>A</answer>'
    for body in server.requests:
        assert body['model'] == 'fake-actial' and body['temperature'] == 0
        parts = body['messages'][-1]['content']
        images = [p for p in parts if p['type'] == 'image_url']
        assert len(images) == 2 and all(p['image_url']['url'].startswith('data:image/jpeg;base64,') for p in images)
    assert 'secret-test-key' not in (tmp_path / 'node.log').read_text()
