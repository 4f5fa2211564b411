"""The node's last-resort guards, in process with real rclpy: an exception escaping a callback or the ask
action's handler is counted (``internal_error``), logged with its traceback once, and the node goes on;
the goal it broke is aborted with the reason. The faults are injected through the public seams (a
callback handed to the guard, the action server's ``now_ns``): no input reaches them any more (the fuzz
suites in test_spatial_reasoner_hostile.py, test_ask_action.py and test/test_fuzz_engine.py look for one).
"""

from __future__ import annotations

from typing import Any

import pytest

from actial_ros.enums import DropReason

rclpy = pytest.importorskip('rclpy')
from rclpy.action.client import ActionClient  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from ros_harness import Checker, goal_result, send_goal  # noqa: E402

from actial_ros.backends.two_view_geometry import GeometryBackend  # noqa: E402
from actial_ros.nodes.ask_action import AskActionServer  # noqa: E402
from actial_ros.nodes.spatial_reasoner import SpatialReasonerNode  # noqa: E402
from actial_ros.reasoner import ReasonerConfig, SpatialReasoner  # noqa: E402
from actial_ros.records import Record  # noqa: E402
from actial_ros_msgs.action import AskSpatial  # noqa: E402
from actial_ros_msgs.msg import ViewpointAnswer  # noqa: E402

pytestmark = pytest.mark.ros


def test_a_failing_callback_is_counted_logged_once_and_the_node_goes_on(
    rclpy_context: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    node = SpatialReasonerNode(
        context=rclpy_context,
        parameter_overrides=[Parameter('backend', value='geometry'), Parameter('diagnostics_period_s', value=0.1)],
    )
    calls: list[int] = []

    def broken(value: int) -> None:
        calls.append(value)
        raise ZeroDivisionError(f'call {value}')

    try:
        assert node.active
        guarded = node._guarded('probe', broken)
        for value in range(3):
            guarded(value)  # returns: nothing escapes
        assert calls == [0, 1, 2]
        assert node.engine.stats().drops[DropReason.INTERNAL_ERROR.value] == 3
        # The node goes on: its diagnostics (a guarded timer) still report, with the count.
        report = node._diagnostic_array()
        ingest = next(status for status in report.status if status.name == 'spatial_reasoner: ingest')
        assert {kv.key: kv.value for kv in ingest.values}['drop_internal_error'] == '3'
    finally:
        node.destroy_node()
    err = capfd.readouterr().err
    assert err.count('Traceback (most recent call last)') == 1, err
    assert 'probe callback failed (counted; the node goes on)' in err and 'ZeroDivisionError: call 0' in err
    assert 'probe callback failed again: ZeroDivisionError: call 1' in err


def test_an_exception_in_the_ask_action_aborts_the_goal_with_the_reason(rclpy_context: Any) -> None:
    server_node = rclpy.create_node('guard_probe', context=rclpy_context)
    checker = Checker(rclpy_context, name='guard_client')
    servers: list[AskActionServer] = []

    def on_answer(record: Record) -> None:  # what the node wires
        for each in servers:
            each.deliver(record)

    engine = SpatialReasoner(backend=GeometryBackend(), config=ReasonerConfig(), on_answer=on_answer)
    reported: list[str] = []

    def broken_clock() -> int:
        raise RuntimeError('clock broke')

    engine.start()
    server = AskActionServer(
        node=server_node,
        engine=engine,
        default_timeout_s=5.0,
        now_ns=broken_clock,  # the result is stamped with it: the handler fails after the engine answered
        on_internal_error=reported.append,
    )
    servers.append(server)
    client: ActionClient[Any, Any, Any] = ActionClient(checker.node, AskSpatial, '/guard_probe/ask')
    try:
        checker.spin_until(client.server_is_ready, 30, 'the action server')
        response = goal_result(checker, send_goal(checker, client, AskSpatial.Goal(question='What is ahead?')))
        assert response.status == 6  # GoalStatus.STATUS_ABORTED
        result = response.result
        assert result.status == ViewpointAnswer.STATUS_ERROR == result.answer.status
        assert result.reason == 'internal error: RuntimeError: clock broke'
        assert reported == ['ask action']
        assert server._thread.is_alive()  # the server goes on serving
    finally:
        client.destroy()
        server.destroy()
        engine.stop()
        checker.close()
        server_node.destroy_node()
