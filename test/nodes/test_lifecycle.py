"""spatial_reasoner as a managed (lifecycle) node over real DDS, driven through its lifecycle_msgs services:
configure, activate, deactivate, cleanup and shutdown (from unconfigured and from active), each with what it
creates or removes; a configure that fails for an unreachable model server (require_model_server), one that
configures degraded, one refused for an invalid parameter; the end of the process on SIGINT and SIGTERM."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

rclpy = pytest.importorskip('rclpy')
from lifecycle_msgs.msg import Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState, GetState  # noqa: E402
from nav_msgs.msg import Odometry  # noqa: E402
from rclpy.action.client import ActionClient  # noqa: E402
from ros_harness import Checker, publish_turn, start, stop  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from actial_ros_msgs.action import AskSpatial  # noqa: E402

pytestmark = pytest.mark.ros

NODE = 'actial_ros.nodes.spatial_reasoner'


@pytest.fixture
def namespace() -> str:
    """A namespace of the test's own for the node: a lifecycle service of a node that an earlier test stopped
    can linger in the DDS graph, and a request sent on that stale match alone is lost (seen as a configure
    that never answered when this file ran right after test_spatial_reasoner.py)."""
    return f'/lifecycle_{uuid.uuid4().hex[:8]}'


@pytest.fixture
def checker(rclpy_context: Any, namespace: str) -> Iterator[Checker]:
    check = Checker(rclpy_context, reasoner=f'{namespace}/spatial_reasoner')
    yield check
    check.close()


class Lifecycle:
    """A lifecycle_msgs client of ``<namespace>/spatial_reasoner``."""

    def __init__(self, checker: Checker, namespace: str) -> None:
        self.checker = checker
        node = f'{namespace}/spatial_reasoner'
        self.get: Any = checker.node.create_client(GetState, f'{node}/get_state')
        self.change: Any = checker.node.create_client(ChangeState, f'{node}/change_state')
        checker.spin_until(lambda: self.get.service_is_ready() and self.change.service_is_ready(), 30, 'services')

    def state(self) -> str:
        """The node's state label. get_state changes nothing, so a request that got no reply within 5 s is
        sent again (twice at most): on a loaded machine the first one can go out before the server's side of
        the match exists and be lost (seen once in a full run)."""
        for _ in range(3):
            future = self.get.call_async(GetState.Request())
            deadline = time.monotonic() + 5.0
            while not future.done() and time.monotonic() < deadline:
                self.checker.spin_for(0.05)
            if future.done():
                response: Any = future.result()
                return str(response.current_state.label)
            self.get.remove_pending_request(future)
        pytest.fail('get_state got no reply to three requests')

    def transition(self, transition_id: int) -> bool:
        request = ChangeState.Request()
        request.transition.id = transition_id
        future = self.change.call_async(request)
        self.checker.spin_until(future.done, 30, f'transition {transition_id}')
        response: Any = future.result()
        return bool(response.success)


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return int(sock.getsockname()[1])


def test_transitions_create_and_remove_what_they_should(
    ros_env: dict[str, str], checker: Checker, namespace: str, tmp_path: Path
) -> None:
    log = tmp_path / 'node.log'
    params = {
        'autostart': False,
        'backend': 'geometry',
        'image_qos': 'reliable',
        'min_pair_interval_s': 0.0,
        'diagnostics_period_s': 0.2,
    }
    node = start(NODE, params, ros_env, log, ros_args=['-r', f'__ns:={namespace}'])
    image_pub = checker.node.create_publisher(Image, '/camera/image_raw', 100)
    odom_pub = checker.node.create_publisher(Odometry, '/odom', 100)
    client: ActionClient[Any, Any, Any] = ActionClient(checker.node, AskSpatial, f'{namespace}/spatial_reasoner/ask')
    try:
        life = Lifecycle(checker, namespace)
        answers = f'{namespace}/spatial_reasoner/answers'
        assert life.state() == 'unconfigured'
        assert checker.node.count_publishers(answers) == 0 and image_pub.get_subscription_count() == 0

        assert life.transition(Transition.TRANSITION_CONFIGURE) and life.state() == 'inactive'
        checker.spin_until(lambda: checker.node.count_publishers(answers) == 1, 10, 'the answers publisher')
        checker.spin_until(client.server_is_ready, 10, 'the ask action server')
        checker.spin_for(0.5)
        assert image_pub.get_subscription_count() == 0  # inactive: nothing ingested yet
        assert 'spatial_reasoner: ingest' not in checker.diagnostics  # and no diagnostics

        assert life.transition(Transition.TRANSITION_ACTIVATE) and life.state() == 'active'
        checker.spin_until(
            lambda: image_pub.get_subscription_count() == 1 and odom_pub.get_subscription_count() == 1, 10, 'subs'
        )
        checker.spin_for(1.0)  # the reader's side of the match may lag the writer's (ENVIRONMENT.md)
        publish_turn(checker, image_pub, odom_pub, start_s=100.0)
        checker.spin_until(lambda: bool(checker.viewpoint()), 30, 'answers while active', log)
        checker.spin_until(lambda: int(checker.ingest().get('frames_posed', 0)) == 11, 10, 'every frame posed', log)

        assert life.transition(Transition.TRANSITION_DEACTIVATE) and life.state() == 'inactive'
        checker.spin_until(lambda: image_pub.get_subscription_count() == 0, 10, 'the subscriptions to go')
        goal = client.send_goal_async(AskSpatial.Goal(question='What is ahead?'))
        checker.spin_until(goal.done, 10, 'the goal response')
        handle: Any = goal.result()
        assert not handle.accepted  # inactive: goals are rejected

        # Reactivated, the buffers and scores are still there.
        assert life.transition(Transition.TRANSITION_ACTIVATE) and life.state() == 'active'
        checker.spin_until(lambda: image_pub.get_subscription_count() == 1, 10, 'the subscriptions back')
        checker.spin_until(lambda: int(checker.ingest().get('frames_posed', 0)) == 11, 10, 'the kept counters')

        assert life.transition(Transition.TRANSITION_DEACTIVATE)
        assert life.transition(Transition.TRANSITION_CLEANUP) and life.state() == 'unconfigured'
        checker.spin_until(lambda: checker.node.count_publishers(answers) == 0, 10, 'the publishers to go')
        assert life.transition(Transition.TRANSITION_UNCONFIGURED_SHUTDOWN) and life.state() == 'finalized'
        assert node.poll() is None
    finally:
        client.destroy()
        assert stop(node) == 0, log.read_text()[-3000:]
    text = log.read_text()
    assert 'Traceback' not in text and 'configured: asking' in text


@pytest.mark.parametrize('required', [True, False])
def test_configure_against_an_unreachable_model_server(
    required: bool, ros_env: dict[str, str], checker: Checker, namespace: str, tmp_path: Path
) -> None:
    log = tmp_path / 'node.log'
    url = f'http://127.0.0.1:{unused_port()}/v1'  # nothing listens there
    params = {
        'autostart': False,
        'backend': 'vllm',
        'vllm_base_url': url,
        'vllm_probe_interval_s': 0.0,
        'vllm_timeout_s': 2.0,
        'require_model_server': required,
    }
    node = start(NODE, params, ros_env, log, ros_args=['-r', f'__ns:={namespace}'])
    try:
        life = Lifecycle(checker, namespace)
        configured = life.transition(Transition.TRANSITION_CONFIGURE)
        if required:
            assert not configured and life.state() == 'unconfigured'
            checker.spin_for(0.3)
            assert 'configure failed: the vllm backend is not usable' in log.read_text()
        else:
            assert configured and life.state() == 'inactive'
            assert life.transition(Transition.TRANSITION_ACTIVATE) and life.state() == 'active'
            assert 'configured DEGRADED' in log.read_text()
            # Shut down from active: everything released, the process goes on until stopped.
            assert life.transition(Transition.TRANSITION_ACTIVE_SHUTDOWN) and life.state() == 'finalized'
            answers = f'{namespace}/spatial_reasoner/answers'
            checker.spin_until(lambda: checker.node.count_publishers(answers) == 0, 10, 'the publishers to go')
        assert node.poll() is None
    finally:
        assert stop(node) == 0, log.read_text()[-3000:]


def test_autostart_exits_with_the_configure_reason(ros_env: dict[str, str], tmp_path: Path) -> None:
    url = f'http://127.0.0.1:{unused_port()}/v1'
    result = subprocess.run(
        [
            sys.executable,
            '-m',
            NODE,
            '--ros-args',
            '-p',
            'backend:=vllm',
            '-p',
            f'vllm_base_url:={url}',
            '-p',
            'require_model_server:=true',
            '-p',
            'vllm_probe_interval_s:=0.0',
            '-p',
            'vllm_timeout_s:=2.0',
        ],
        env=ros_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert 'spatial_reasoner: the vllm backend is not usable' in result.stderr


@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM])
def test_a_signal_ends_the_node_cleanly(
    signum: signal.Signals, ros_env: dict[str, str], checker: Checker, namespace: str, tmp_path: Path
) -> None:
    """Ctrl-C and SIGTERM (what ros2 launch sends) end an active node with status 0 and no traceback: the
    signals are handled in Python (actial_ros/nodes/entry.py says why not by rclpy)."""
    log = tmp_path / 'node.log'
    node = start(NODE, {'backend': 'geometry'}, ros_env, log, ros_args=['-r', f'__ns:={namespace}'])
    try:
        life = Lifecycle(checker, namespace)
        checker.spin_until(lambda: 'active' in log.read_text(), 30, 'the node to be active', log)
        assert life.state() == 'active'  # answered over DDS: the node spins
        node.send_signal(signum)
        code = node.wait(30)
    finally:
        if node.poll() is None:
            node.kill()
            node.wait()
    text = log.read_text()
    assert code == 0, text[-3000:]
    assert 'Traceback' not in text and 'Fatal Python error' not in text


def test_configure_refuses_invalid_parameters_with_the_reason(
    ros_env: dict[str, str], checker: Checker, namespace: str, tmp_path: Path
) -> None:
    """A configure that fails validation says why and leaves the node unconfigured (no publisher), alive, and
    able to try again and to shut down. (``image_transport`` is read-only, as every topic setting is: a
    mistake there is mended by a restart with the right value.)"""
    log = tmp_path / 'node.log'
    params = {'autostart': False, 'backend': 'geometry', 'image_transport': 'theora'}
    node = start(NODE, params, ros_env, log, ros_args=['-r', f'__ns:={namespace}'])
    answers = f'{namespace}/spatial_reasoner/answers'
    try:
        life = Lifecycle(checker, namespace)
        for _ in range(2):
            assert not life.transition(Transition.TRANSITION_CONFIGURE) and life.state() == 'unconfigured'
        checker.spin_for(0.3)
        reason = "configure failed: image_transport must be 'raw' or 'compressed', got 'theora'"
        assert log.read_text().count(reason) == 2
        assert checker.node.count_publishers(answers) == 0
        assert life.transition(Transition.TRANSITION_UNCONFIGURED_SHUTDOWN) and life.state() == 'finalized'
        assert node.poll() is None
    finally:
        assert stop(node) == 0, log.read_text()[-3000:]
    assert 'Traceback' not in log.read_text()
