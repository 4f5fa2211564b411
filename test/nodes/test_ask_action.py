"""The ~/ask action (actial_ros_msgs/action/AskSpatial) over real DDS: a round trip with feedback, a cancel,
an invalid goal, fuzzed goals, and the typed answers on ~/answers, against the node's vllm backend and the stdlib FAKE
OpenAI-compatible server (it replies scripted text; the real vLLM tier is test/serving/)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actial_ros.ask import ASK_TARGETS, MAX_QUESTION_CHARS

rclpy = pytest.importorskip('rclpy')
from fake_openai_server import FakeOpenAIServer  # noqa: E402
from nav_msgs.msg import Odometry  # noqa: E402
from rclpy.action.client import ActionClient  # noqa: E402
from ros_harness import Checker, goal_result, publish_turn, send_goal, start, stop  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from actial_ros_msgs.action import AskSpatial  # noqa: E402
from actial_ros_msgs.msg import ViewpointAnswer  # noqa: E402

pytestmark = pytest.mark.ros


@pytest.fixture
def checker(rclpy_context: Any) -> Iterator[Checker]:
    check = Checker(rclpy_context)
    yield check
    check.close()


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    fake = FakeOpenAIServer(api_key='k', model='fake-actial').start()
    fake.reply = 'A red door, to the left.'
    yield fake
    fake.stop()


def publish_a_turn(checker: Checker) -> None:
    """The harness's turning robot, once the node subscribes; returns when the node has made a pair."""
    image_pub = checker.node.create_publisher(Image, '/camera/image_raw', 100)
    odom_pub = checker.node.create_publisher(Odometry, '/odom', 100)
    checker.spin_until(
        lambda: image_pub.get_subscription_count() > 0 and odom_pub.get_subscription_count() > 0, 30, 'subscriptions'
    )
    publish_turn(checker, image_pub, odom_pub)
    checker.spin_until(lambda: int(checker.ingest().get('pairs_made', 0)) > 0, 30, 'a pair')


NODE_PARAMS = {
    'backend': 'vllm',
    'vllm_model': 'fake-actial',
    'vllm_api_key_env': 'TEST_KEY',
    'image_qos': 'reliable',
    'min_pair_interval_s': 0.0,
    'question_types': '[rotation]',
    'diagnostics_period_s': 0.2,
}


def start_node(server: FakeOpenAIServer, ros_env: dict[str, str], log: Path) -> Any:
    """The node with the vllm backend against the fake server."""
    params = {**NODE_PARAMS, 'vllm_base_url': server.base_url}
    return start('actial_ros.nodes.spatial_reasoner', params, {**ros_env, 'TEST_KEY': 'k'}, log)


def test_ask_action_round_trip_cancel_and_invalid_goal(
    ros_env: dict[str, str], checker: Checker, server: FakeOpenAIServer, tmp_path: Path
) -> None:
    log = tmp_path / 'node.log'
    node = start_node(server, ros_env, log)
    client: ActionClient[Any, Any, Any] = ActionClient(checker.node, AskSpatial, '/spatial_reasoner/ask')
    try:
        checker.spin_until(lambda: client.server_is_ready(), 30, 'the ask action server', log)
        publish_a_turn(checker)
        # Typed answers only: the JSON mirror exists only with json_interface:=true (test_spatial_reasoner_hostile).
        assert checker.node.count_publishers('/spatial_reasoner/answers') == 1
        assert checker.node.count_publishers('/spatial_reasoner/answers_json') == 0

        # A round trip: feedback 'queued', 'asking', then the reply as the server streams it (4 characters a
        # chunk), the whole reply as the result, also on ~/answers.
        feedback: list[tuple[str, str]] = []
        handle = send_goal(checker, client, AskSpatial.Goal(question='What is left of the robot?'), feedback)
        assert handle.accepted
        response = goal_result(checker, handle, 'the result', log)
        result = response.result
        assert response.status == 4  # GoalStatus.STATUS_SUCCEEDED
        assert result.status == ViewpointAnswer.STATUS_ANSWERED and result.answer.raw_text == 'A red door, to the left.'
        assert result.answer.kind == ViewpointAnswer.KIND_ASK and result.answer.frame_count == 2
        assert result.answer.camera_1 == 'camera' and result.answer.backend == 'vllm'
        reply = 'A red door, to the left.'
        checker.spin_until(lambda: (feedback or [('', '')])[-1][1] == reply, 10, 'the streamed feedback')
        assert feedback[:2] == [('queued', ''), ('asking', '')]
        streamed = [text for _, text in feedback[2:]]
        assert len(streamed) >= 3 and all(reply.startswith(text) for text in streamed)
        assert streamed == sorted(streamed, key=len)  # the reply grows chunk by chunk
        goal_id = bytes(handle.goal_id.uuid).hex()
        checker.spin_until(lambda: any(r.get('id') == goal_id for r in checker.records), 10, 'the ask on ~/answers')
        mirrored = next(r for r in checker.records if r.get('id') == goal_id)
        assert mirrored['raw_text'] == result.answer.raw_text and mirrored['stamps'][0] > 0
        # The server received both images of the latest pair.
        parts = server.requests[-1]['messages'][-1]['content']
        assert sum(part['type'] == 'image_url' for part in parts) == 2

        # One frame of one camera.
        one = send_goal(checker, client, AskSpatial.Goal(question='Describe it.', target='frame', camera='camera'))
        assert goal_result(checker, one, 'the one-frame result', log).result.answer.frame_count == 1

        # A cancel while the model is slow: the goal ends canceled, with the reason.
        server.delay_s = 5.0
        slow = send_goal(checker, client, AskSpatial.Goal(question='Take your time.'))
        checker.spin_for(0.5)
        cancel = slow.cancel_goal_async()
        checker.spin_until(cancel.done, 10, 'the cancel response', log)
        slow_result = slow.get_result_async()
        checker.spin_until(slow_result.done, 10, 'the canceled result', log)
        assert slow_result.result().status == 5  # GoalStatus.STATUS_CANCELED
        assert slow_result.result().result.reason == 'canceled'
        server.delay_s = 0.0

        # An invalid goal is aborted with the reason.
        bad = send_goal(checker, client, AskSpatial.Goal(question='Where?', target='world'))
        bad_result = bad.get_result_async()
        checker.spin_until(bad_result.done, 10, 'the aborted result', log)
        assert bad_result.result().status == 6  # GoalStatus.STATUS_ABORTED
        assert bad_result.result().result.status == ViewpointAnswer.STATUS_ERROR
        assert 'target must be one of' in bad_result.result().result.reason

        # The viewpoint answers are typed too, scored against odometry.
        viewpoint = checker.viewpoint()
        assert viewpoint and all(
            r['question_type'] == 'rotation' and r['truth'] in ('left', 'right') for r in viewpoint
        )
        # Nobody subscribes to the visuals here: nothing was rendered (test_pair_visuals.py: they are, once
        # someone does).
        assert int(checker.ingest()['pairs_made']) > 0
        assert checker.ingest()['pair_images_published'] == checker.ingest()['marker_arrays_published'] == '0'

        # ~/reset_scores (std_srvs/Trigger) clears the running accuracy.
        checker.spin_until(
            lambda: int(checker.diagnostics['spatial_reasoner: accuracy'].get('rotation.asked', 0)) > 0, 10, 'scores'
        )
        reset: Any = checker.node.create_client(Trigger, '/spatial_reasoner/reset_scores')
        checker.spin_until(reset.service_is_ready, 10, 'the reset_scores service')
        reply = reset.call_async(Trigger.Request())
        checker.spin_until(reply.done, 10, 'the reset_scores reply')
        cleared: Any = reply.result()
        assert cleared.success and cleared.message.startswith('scores of ')
        checker.spin_until(
            lambda: 'rotation.asked' not in checker.diagnostics['spatial_reasoner: accuracy'], 10, 'cleared scores'
        )
        assert node.poll() is None
    finally:
        client.destroy()
        assert stop(node) == 0, log.read_text()[-3000:]


TEXT = st.text(alphabet=st.characters(exclude_categories=['Cs']), max_size=40)


@st.composite
def goals(draw: st.DrawFn) -> AskSpatial.Goal:
    """An AskSpatial goal with arbitrary field values of the right types: empty, blank, over-long and odd
    questions, unknown targets and cameras, timeouts that are negative, zero, tiny, huge, NaN or infinite."""
    goal = AskSpatial.Goal()
    goal.question = draw(
        st.one_of(TEXT, st.just(''), st.just('   '), st.integers(1, 3).map(lambda k: 'x' * (MAX_QUESTION_CHARS + k)))
    )
    goal.target = draw(st.one_of(st.sampled_from(['', *ASK_TARGETS]), TEXT))
    goal.camera = draw(st.one_of(st.just(''), st.just('camera'), TEXT))
    goal.timeout_s = draw(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(1e-9, 1e-3)))
    return goal


def test_fuzzed_goals_are_each_answered_and_never_end_the_node(
    ros_env: dict[str, str], checker: Checker, server: FakeOpenAIServer, tmp_path: Path
) -> None:
    """Every goal ends (succeeded, or aborted with the reason), invalid ones are counted as ``bad_ask``,
    nothing reaches the node's last-resort guard, and the node goes on answering."""
    log = tmp_path / 'node.log'
    node = start_node(server, ros_env, log)
    client: ActionClient[Any, Any, Any] = ActionClient(checker.node, AskSpatial, '/spatial_reasoner/ask')
    bad = [0]
    try:
        checker.spin_until(lambda: client.server_is_ready(), 30, 'the ask action server', log)
        publish_a_turn(checker)

        @settings(max_examples=25)
        @given(goals())
        def ask(goal: AskSpatial.Goal) -> None:
            handle = send_goal(checker, client, goal)
            assert handle.accepted
            response = goal_result(checker, handle, 'the result', log)
            status, result = response.status, response.result
            assert status in (4, 6), status  # GoalStatus SUCCEEDED or ABORTED
            assert result.status == result.answer.status and result.reason == result.answer.reason
            if status == 6:
                assert result.status == ViewpointAnswer.STATUS_ERROR and result.reason, result
            invalid = (
                not goal.question.strip()
                or len(goal.question) > MAX_QUESTION_CHARS
                or (goal.target or 'pair') not in ASK_TARGETS
            )
            if invalid:
                bad[0] += 1
                assert status == 6 and result.reason.startswith('bad request: '), result.reason
            assert not result.reason.startswith('internal error'), result.reason

        ask()
        answered = send_goal(checker, client, AskSpatial.Goal(question='Still there?'))
        after = goal_result(checker, answered, 'the answer after the fuzz', log)
        assert after.result.answer.raw_text == 'A red door, to the left.'
        assert bad[0] > 0
        checker.spin_until(lambda: int(checker.ingest().get('warn_bad_ask', 0)) >= bad[0], 10, 'warn_bad_ask', log)
        assert int(checker.ingest()['warn_bad_ask']) == bad[0]
        assert 'drop_internal_error' not in checker.ingest(), log.read_text()[-3000:]
        assert node.poll() is None
    finally:
        client.destroy()
        assert stop(node) == 0, log.read_text()[-3000:]
