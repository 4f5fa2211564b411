"""A REAL `vllm serve` (vLLM's CPU build, tiny random Qwen2.5-VL) in the loop: the backend and the
spatial_reasoner node over ROS 2 against it, and load spreading / failover across endpoints.

The server is the session fixture of conftest.py, started with the command ``actial-ros serve`` builds.
Random weights answer garbage: such replies must be recorded as ``unparsed`` (never a crash).
"""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any

import pytest
from ros_harness import Checker, start, stop
from serving_support import API_KEY, API_KEY_ENV, SERVED_NAME, VllmServer, free_port, node_environment

from actial_ros.backends import VllmBackend, create_backend
from actial_ros.enums import QuestionType
from actial_ros.errors import BackendError
from actial_ros.frame import Pair
from actial_ros.geometry import relative_pose, viewpoint_label
from actial_ros.questions import make_question
from actial_ros.sources.llff import LlffCapture

MAX_TOKENS = 24


@pytest.fixture
def key_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(API_KEY_ENV, API_KEY)
    return API_KEY_ENV


@pytest.fixture(scope='module')
def capture_pair(sample_capture: Path) -> Pair:
    """Two real views of the bundled capture, about 30 degrees apart, with their relative pose."""
    capture = LlffCapture.open(sample_capture)
    first, second = capture.load_frame(0, 1), capture.load_frame(3, 2)
    assert first.t_world_camera is not None and second.t_world_camera is not None
    return Pair(first, second, relative_pose(first.t_world_camera, second.t_world_camera), pair_id=1)


def _backend(base_url: str | list[str], **options: Any) -> VllmBackend:
    settings: dict[str, Any] = {
        'base_url': base_url,
        'model': SERVED_NAME,
        'api_key_env': API_KEY_ENV,
        'timeout_s': 30.0,
        'max_tokens': MAX_TOKENS,
        'retry_backoff_s': 0.05,
    }
    settings.update(options)
    backend = create_backend('vllm', **settings)
    assert isinstance(backend, VllmBackend)
    return backend


def test_backend_answers_two_image_questions(live_server: VllmServer, key_env: str, capture_pair: Pair) -> None:
    backend = _backend(live_server.base_url)
    try:
        assert backend.probe() == [SERVED_NAME]
        for kind in QuestionType:
            assert capture_pair.relative is not None
            question = make_question(kind, viewpoint_label(kind, capture_pair.relative), random.Random(1))
            answer = backend.answer(capture_pair, question)
            assert answer.backend == 'vllm' and not answer.abstained
            assert answer.raw_text  # random weights: text, usually garbage
            assert (answer.letter is None) == (answer.reason == 'unparsed')
            assert answer.letter is None or answer.letter in 'ABC'
            usage = answer.usage
            assert usage['prompt_tokens'] > 50 and 1 <= usage['completion_tokens'] <= MAX_TOKENS
            assert usage['total_tokens'] == usage['prompt_tokens'] + usage['completion_tokens']
            assert answer.latency_s > 0
        timings = backend.recent_timings()
        assert len(timings) == 3
        for timing in timings:
            assert timing.endpoint == live_server.base_url
            assert timing.server_s > 0 and timing.prepare_s > 0 and timing.parse_s >= 0
            assert timing.total_s >= timing.server_s + timing.prepare_s
        assert backend.health().ok
    finally:
        backend.close()


def test_both_images_reach_the_model(live_server: VllmServer, key_env: str, capture_pair: Pair) -> None:
    """Each image adds its tokens to the prompt; a third image is refused (the server allows two)."""
    backend = _backend(live_server.base_url)
    try:
        one = backend.ask([capture_pair.frame_1], 'Where is the head?')
        two = backend.ask([capture_pair.frame_1, capture_pair.frame_2], 'Where is the head?')
        per_image = two.usage['prompt_tokens'] - one.usage['prompt_tokens']
        assert per_image >= 4 + 2  # at least 4 image tokens plus the vision start/end markers
        with pytest.raises(BackendError, match='HTTP 400'):
            backend.ask([capture_pair.frame_1] * 3, 'Three images?')
        assert backend.ask([capture_pair.frame_2], 'Still fine?').raw_text
    finally:
        backend.close()


def test_load_spreads_over_endpoints_and_fails_over(live_server: VllmServer, key_env: str, capture_pair: Pair) -> None:
    """Two names of the same server (127.0.0.1 and localhost) plus a dead port: the dead one is skipped after
    its first refusal and every call succeeds, concurrently; one call at a time (in-flight counts tie), the
    calls alternate over the live endpoints.

    Under concurrency the policy sends each request to the endpoint with the fewest requests in flight, so the
    split there follows the server's timing (a CI run saw 7/2): the alternation is checked sequentially."""
    dead = f'http://127.0.0.1:{free_port()}/v1'
    alias = f'http://localhost:{live_server.port}/v1'
    backend = _backend([dead, live_server.base_url, alias], max_in_flight=2, retry_backoff_s=1.0)
    assert capture_pair.relative is not None
    question = make_question(QuestionType.ROTATION, None, random.Random(2))
    errors: list[BaseException] = []

    def worker() -> None:
        for _ in range(3):
            try:
                backend.answer(capture_pair, question)
            except BaseException as exc:  # reported below
                errors.append(exc)

    try:
        threads = [threading.Thread(target=worker) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not errors
        endpoints = {e.url: e for e in backend.endpoints()}
        assert endpoints[dead].ok is False and endpoints[dead].successes == 0
        assert endpoints[dead].requests <= 2  # cooled down after its refusals, not retried per call
        assert 'cannot reach' in (endpoints[dead].last_error or '')
        live = [endpoints[live_server.base_url], endpoints[alias]]
        assert sum(e.successes for e in live) == 9
        assert all(e.successes >= 1 for e in live), [(e.url, e.successes) for e in live]
        health = backend.health()
        assert health.ok and '2/3 endpoints up' in health.message and dead in health.message
        assert {t.endpoint for t in backend.recent_timings()} == {live_server.base_url, alias}

        # One call at a time: ties in flight, so round robin: 3 of 6 calls on each live endpoint.
        before = [e.successes for e in live]
        for _ in range(6):
            backend.answer(capture_pair, question)
        endpoints = {e.url: e for e in backend.endpoints()}
        after = [endpoints[live_server.base_url].successes, endpoints[alias].successes]
        assert [a - b for a, b in zip(after, before, strict=True)] == [3, 3]
    finally:
        backend.close()


def test_node_end_to_end_over_ros(
    live_server: VllmServer, sample_capture: Path, ros_env: dict[str, str], rclpy_context: Any, tmp_path: Path
) -> None:
    """Replay -> node (vllm backend, real server) -> answers: every pair asked with two images, every
    reply parsed or recorded as unparsed, token usage and latency in every answer, backend healthy."""
    checker = Checker(rclpy_context)
    env = node_environment(ros_env)
    log = tmp_path / 'node.log'
    node = start(
        'actial_ros.nodes.spatial_reasoner',
        {
            'backend': 'vllm',
            'vllm_base_url': live_server.base_url,
            'vllm_model': SERVED_NAME,
            'vllm_api_key_env': API_KEY_ENV,
            'vllm_probe_interval_s': 1.0,
            'max_tokens': MAX_TOKENS,
            'max_in_flight': 2,
            'diagnostics_period_s': 0.2,
            'max_frame_uses': 2,
            'min_pair_interval_s': 0.0,
        },
        env,
        log,
    )
    capture = LlffCapture.open(sample_capture)
    try:
        checker.spin_until(lambda: checker.node.count_publishers('/spatial_reasoner/answers') > 0, 30, 'the node')
        replay = start(
            'actial_ros.nodes.capture_replay',
            {'capture': sample_capture, 'rate_hz': 8.0},
            env,
            tmp_path / 'replay.log',
        )
        checker.spin_until(lambda: replay.poll() is not None, 60, 'the replay to finish')
        assert replay.returncode == 0, (tmp_path / 'replay.log').read_text()

        def done() -> bool:
            backend = checker.backend()
            return checker.images() >= len(capture) and backend.get('idle') == 'True'

        checker.spin_until(done, 120, 'all answers', log)
        checker.spin_for(0.5)
        assert node.poll() is None
    finally:
        assert stop(node) == 0, log.read_text()
        checker.close()

    ingest = checker.ingest()
    pairs = int(ingest['pairs_made'])
    assert pairs >= 5
    records = checker.viewpoint()
    assert len(records) == 3 * pairs
    statuses = {record['status'] for record in records}
    assert statuses <= {'answered', 'unparsed'}, [r['reason'] for r in records if r['status'] == 'error'][:3]
    for record in records:
        assert record['backend'] == 'vllm'
        assert record['raw_text']
        assert record['usage']['prompt_tokens'] > 50
        assert 1 <= record['usage']['completion_tokens'] <= MAX_TOKENS
        assert record['latency_s'] > 0
        assert record['truth'] in ('left', 'right', 'none')
        if record['status'] == 'unparsed':  # scored as wrong, never dropped
            assert record['answer'] is None and record['reason'] == 'unparsed' and record['correct'] is False
    assert not [key for key in ingest if key.startswith('drop_')], ingest
    backend = checker.backend()
    assert backend['healthy'] == 'True' and checker.backend_level() == 0, backend
    assert int(backend['requests_done']) == len(records)
    assert f'ok ({SERVED_NAME} at {live_server.base_url})' in backend['message']
    accuracy = checker.diagnostics['spatial_reasoner: accuracy']
    assert float(accuracy['latency_p50_s']) > 0
    asked = sum(int(accuracy[f'{kind.value}.asked']) for kind in QuestionType)
    assert asked == len(records)


def test_node_with_a_dead_endpoint_fails_over(
    live_server: VllmServer, sample_capture: Path, ros_env: dict[str, str], rclpy_context: Any, tmp_path: Path
) -> None:
    """Two endpoints in the node's vllm_base_url, the first dead: every question is still answered, and
    /diagnostics stays healthy while naming the dead endpoint."""
    checker = Checker(rclpy_context)
    env = node_environment(ros_env)
    dead = f'http://127.0.0.1:{free_port()}/v1'
    log = tmp_path / 'node.log'
    node = start(
        'actial_ros.nodes.spatial_reasoner',
        {
            'backend': 'vllm',
            'vllm_base_url': f'"{dead}, {live_server.base_url}"',
            'vllm_model': SERVED_NAME,
            'vllm_api_key_env': API_KEY_ENV,
            'vllm_probe_interval_s': 0.5,
            'max_tokens': 8,
            'max_in_flight': 2,
            'diagnostics_period_s': 0.2,
            'max_frame_uses': 1,
            'min_pair_interval_s': 0.0,
        },
        env,
        log,
    )
    try:
        checker.spin_until(lambda: checker.node.count_publishers('/spatial_reasoner/answers') > 0, 30, 'the node')
        checker.spin_until(lambda: '1/2 endpoints up' in checker.backend().get('message', ''), 20, 'the probe', log)
        replay = start(
            'actial_ros.nodes.capture_replay', {'capture': sample_capture, 'rate_hz': 10.0}, env, tmp_path / 'r.log'
        )
        checker.spin_until(lambda: replay.poll() is not None, 60, 'the replay to finish')
        checker.spin_until(
            lambda: checker.images() >= 24 and checker.backend().get('idle') == 'True', 120, 'all answers', log
        )
        checker.spin_for(0.3)
    finally:
        assert stop(node) == 0, log.read_text()
        checker.close()
    records = checker.viewpoint()
    assert records and {r['status'] for r in records} <= {'answered', 'unparsed'}
    backend = checker.backend()
    assert backend['healthy'] == 'True' and checker.backend_level() == 0
    assert dead in backend['message'] and 'cannot reach' in backend['message']
