"""Helpers of the tests that run nodes as separate processes over real DDS on loopback.

Processes get the ``ros_env`` fixture's environment (an isolated ``ROS_DOMAIN_ID``,
``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``, the 16 MB shared-memory Fast DDS profile).
"""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

rclpy = pytest.importorskip('rclpy')
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from nav_msgs.msg import Odometry  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from actial_ros.message_fields import stamp_to_ns  # noqa: E402
from actial_ros.nodes.answer_msgs import answer_msg_to_record  # noqa: E402
from actial_ros_msgs.msg import ViewpointAnswer  # noqa: E402

__all__ = ['Checker', 'goal_result', 'publish_turn', 'read_recording', 'send_goal', 'start', 'stop', 'wait_for']


def start(
    module: str, params: dict[str, Any], env: dict[str, str], log: Path, *, ros_args: Sequence[str] = ()
) -> subprocess.Popen[bytes]:
    """``python -m module --ros-args -p name:=value ... [ros_args]`` with its output to ``log``
    (``ros_args``: e.g. ``['-r', '__ns:=/test_1']``)."""
    args = [sys.executable, '-m', module, '--ros-args']
    for name, value in params.items():
        args += ['-p', f'{name}:={value}']
    args += list(ros_args)
    return subprocess.Popen(args, env=env, stdout=log.open('w'), stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen[bytes], timeout_s: float = 30.0) -> int:
    """SIGINT, then wait; SIGKILL and fail the test if it does not stop within ``timeout_s``."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            return proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail(f'process {proc.args!r} did not stop on SIGINT')
    return int(proc.returncode)


class Checker:
    """In-test subscriber (a third process's view) to the node's answers, diagnostics and optionally /clock.

    Attributes:
        records: every answer published on ``<reasoner>/answers`` (actial_ros_msgs/ViewpointAnswer; ``reasoner``
            is the node's fully qualified name, ``/spatial_reasoner`` by default),
            as the JSON form of the record it carries (:func:`actial_ros.nodes.answer_msgs.answer_msg_to_record`,
            then ``to_json_dict``: what a consumer of ``~/answers_json`` reads), in arrival order.
        diagnostics: the latest key/value pairs per diagnostic status name; levels: its latest level;
            messages: its latest message.
        history: ``(monotonic time, diagnostics, levels)`` copies after every DiagnosticArray received.
        diagnostic_stamps: header stamps (ns) of every DiagnosticArray received.
        clock: every ``/clock`` stamp (ns) received, when ``clock=True``.
    """

    def __init__(
        self,
        context: Any,
        *,
        name: str = 'actial_test_checker',
        clock: bool = False,
        reasoner: str = '/spatial_reasoner',
    ) -> None:
        self.node = Node(name, context=context)
        self.records: list[dict[str, Any]] = []
        self.diagnostics: dict[str, dict[str, str]] = {}
        self.levels: dict[str, int] = {}
        self.messages: dict[str, str] = {}
        self.history: list[tuple[float, dict[str, dict[str, str]], dict[str, int]]] = []
        self.diagnostic_stamps: list[int] = []
        self.clock: list[int] = []
        self.node.create_subscription(
            ViewpointAnswer,
            f'{reasoner}/answers',
            lambda m: self.records.append(answer_msg_to_record(m).to_json_dict()),
            1000,
        )
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diag, 50)
        if clock:
            self.node.create_subscription(Clock, '/clock', lambda m: self.clock.append(stamp_to_ns(m.clock)), 10)
        self.executor = rclpy.executors.SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)

    def _on_diag(self, msg: DiagnosticArray) -> None:
        self.diagnostic_stamps.append(stamp_to_ns(msg.header.stamp))
        for status in msg.status:
            self.diagnostics[status.name] = {kv.key: kv.value for kv in status.values}
            level = status.level
            self.levels[status.name] = level[0] if isinstance(level, bytes) else int(level)
            self.messages[status.name] = status.message
        self.history.append((time.monotonic(), {k: dict(v) for k, v in self.diagnostics.items()}, dict(self.levels)))

    def spin_until(self, condition: Callable[[], bool], timeout_s: float, what: str, log: Path | None = None) -> None:
        """Spin until ``condition()``; fail after ``timeout_s`` with the diagnostics (and the tail of ``log``)."""
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                extra = '' if log is None or not log.exists() else '\nnode log:\n' + log.read_text()[-3000:]
                pytest.fail(f'timed out waiting for {what}; diagnostics: {self.diagnostics}{extra}')
            self.executor.spin_once(timeout_sec=0.05)

    def spin_for(self, seconds: float) -> None:
        """Spin for ``seconds`` (messages still in flight arrive)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.05)

    def ingest(self) -> dict[str, str]:
        return self.diagnostics.get('spatial_reasoner: ingest', {})

    def backend(self) -> dict[str, str]:
        return self.diagnostics.get('spatial_reasoner: backend', {})

    def backend_level(self) -> int | None:
        return self.levels.get('spatial_reasoner: backend')

    def images(self) -> int:
        return int(self.ingest().get('images_received', 0))

    def drops(self, reason: str) -> int:
        return int(self.ingest().get(f'drop_{reason}', 0))

    def viewpoint(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get('kind') == 'viewpoint']

    def idle_after(self, images: int) -> bool:
        return self.images() >= images and self.backend().get('idle') == 'True'

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()


def publish_turn(checker: Checker, image_pub: Any, odom_pub: Any, *, start_s: float = 100.0) -> None:
    """A robot turning in place, 10 deg per 0.1 s: 12 odometry samples (``T_odom_base``) and, at the first 11
    stamps, a 32x24 rgb8 image of one grey level each (``20 * k``), so that the node has frames and pairs.
    Publishes only; the caller waits for the subscriptions before and for what it needs after."""
    for k in range(12):
        stamp = start_s + 0.1 * k
        odom = Odometry()
        odom.header.stamp.sec, odom.header.stamp.nanosec = int(stamp), round((stamp % 1) * 1e9) % 1_000_000_000
        half = math.radians(10.0 * k) / 2
        odom.pose.pose.orientation.z, odom.pose.pose.orientation.w = math.sin(half), math.cos(half)
        odom_pub.publish(odom)
        if k < 11:
            image = Image()
            image.header.stamp = odom.header.stamp
            image.height, image.width, image.encoding, image.step = 24, 32, 'rgb8', 96
            image.data = bytes([k * 20]) * (24 * 96)
            image_pub.publish(image)
        checker.spin_for(0.01)


def send_goal(
    checker: Checker, client: Any, goal: Any, feedback: list[tuple[str, str]] | None = None, log: Path | None = None
) -> Any:
    """Send an ``AskSpatial`` goal with ``client`` (an rclpy ActionClient of ``checker.node``), spinning ``checker``
    until the server answers it; returns the goal handle (``accepted``, ``goal_id``, cancel and result). With
    ``feedback``, every feedback's ``(stage, partial_text)`` is appended to it as it arrives."""
    on_feedback = None
    if feedback is not None:
        sink = feedback

        def on_feedback(msg: Any) -> None:
            sink.append((msg.feedback.stage, msg.feedback.partial_text))

    future = client.send_goal_async(goal, feedback_callback=on_feedback)
    checker.spin_until(future.done, 30, 'the goal to be accepted', log)
    return future.result()


def goal_result(checker: Checker, handle: Any, what: str = 'the goal result', log: Path | None = None) -> Any:
    """The result response of an accepted goal (``status``: action_msgs/GoalStatus, ``result``), spinning
    ``checker`` until it comes (30 s at most)."""
    future = handle.get_result_async()
    checker.spin_until(future.done, 30, what, log)
    return future.result()


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``condition`` every 0.1 s; fail the test after ``timeout_s`` seconds."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f'timed out waiting for {what}')
        time.sleep(0.1)


def read_recording(session: Path) -> dict[str, Any]:
    """The bag recorder's ``recording.json`` of a session directory (``{}`` while absent or half-written)."""
    try:
        return dict(json.loads((session / 'recording.json').read_text()))
    except (OSError, ValueError):
        return {}
