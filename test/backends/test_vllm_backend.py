"""VllmBackend against a FAKE OpenAI-compatible server (test/fake_openai_server.py), not a real vLLM.

The fake checks the bearer key and the model name like vLLM and records every request body.
"""

from __future__ import annotations

import base64
import logging
import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fake_openai_server import FakeOpenAIServer

from actial_ros.backends import VllmBackend, create_backend
from actial_ros.backends.base import BackendAnswer
from actial_ros.backends.vllm import parse_base_urls
from actial_ros.enums import QuestionType, ViewpointLabel
from actial_ros.errors import BackendError, ConfigError
from actial_ros.frame import Frame, Pair
from actial_ros.imaging import decode_jpeg
from actial_ros.questions import DEFAULT_SYSTEM_PROMPT, Question, make_question

KEY = 'sk-test-4f9c2e-secret'
ENV = 'ACTIAL_TEST_VLLM_KEY'
MODEL = 'actial-7b-test'


@pytest.fixture
def fake() -> Iterator[FakeOpenAIServer]:
    """A started fake server; stopped after the test."""
    server = FakeOpenAIServer(api_key=KEY, model=MODEL).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def key_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(ENV, KEY)
    return ENV


def _backend(fake: FakeOpenAIServer, **options: Any) -> VllmBackend:
    settings: dict[str, Any] = {
        'base_url': fake.base_url,
        'model': MODEL,
        'api_key_env': ENV,
        'timeout_s': 2.0,
        'max_retries': 2,
        'retry_backoff_s': 0.01,
    }
    settings.update(options)
    backend = create_backend('vllm', **settings)
    assert isinstance(backend, VllmBackend)
    return backend


def _frame(width: int, height: int, stamp_ns: int = 1) -> Frame:
    rng = np.random.default_rng(width + height)
    image = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    return Frame(image=image, stamp_ns=stamp_ns)


def _question(kind: QuestionType = QuestionType.ROTATION, truth: ViewpointLabel = ViewpointLabel.LEFT) -> Question:
    return make_question(kind, truth, random.Random(4))


PAIR = Pair(_frame(1920, 1080), _frame(640, 480, stamp_ns=2), None, pair_id=1)


def _decode_data_url(url: str) -> np.ndarray[Any, Any]:
    prefix = 'data:image/jpeg;base64,'
    assert url.startswith(prefix)
    data = base64.b64decode(url[len(prefix) :])
    assert data[:2] == b'\xff\xd8'
    return decode_jpeg(data)


def test_request_carries_system_prompt_two_jpegs_and_the_question(fake: FakeOpenAIServer, key_env: str) -> None:
    backend = _backend(fake)
    question = _question()
    answer = backend.answer(PAIR, question)
    assert len(fake.requests) == 1
    body = fake.requests[0]
    assert body['model'] == MODEL
    assert body['temperature'] == 0
    assert body['top_p'] == 1.0
    assert body['max_tokens'] == 1024
    system, user = body['messages']
    assert system == {'role': 'system', 'content': DEFAULT_SYSTEM_PROMPT}
    assert user['role'] == 'user'
    parts = user['content']
    assert [p['type'] for p in parts] == ['image_url', 'image_url', 'text']
    first = _decode_data_url(parts[0]['image_url']['url'])
    second = _decode_data_url(parts[1]['image_url']['url'])
    assert first.shape == (540, 960, 3)  # 1920x1080 downscaled to fit 960x540
    assert second.shape == (480, 640, 3)  # already fits: not resized
    assert parts[2]['text'] == question.text
    assert answer.backend == 'vllm' and answer.letter == 'A' and not answer.abstained
    assert answer.usage == {'prompt_tokens': 100, 'completion_tokens': 7, 'total_tokens': 107}
    assert answer.latency_s > 0


def test_options_reach_the_request(fake: FakeOpenAIServer, key_env: str) -> None:
    backend = _backend(
        fake,
        system_prompt='',
        top_p=0.95,
        max_tokens=64,
        max_image_width=320,
        max_image_height=320,
        jpeg_quality=50,
    )
    backend.answer(PAIR, _question())
    body = fake.requests[0]
    assert body['top_p'] == 0.95 and body['max_tokens'] == 64
    assert [m['role'] for m in body['messages']] == ['user']  # '' sends no system message
    images = [_decode_data_url(p['image_url']['url']) for p in body['messages'][0]['content'][:2]]
    assert images[0].shape == (180, 320, 3) and images[1].shape == (240, 320, 3)


@pytest.mark.parametrize(
    ('reply', 'letter'),
    [
        ('<think>the view turned</think> <answer>B</answer>', 'B'),
        ('<answer> c </answer>', 'C'),
        ('B', 'B'),
        ('<think>unsure</think> <answer>the camera turned left</answer>', None),
        ('I cannot tell from these images.', None),
        ('<answer>D</answer>', None),  # not one of the three options
        ('', None),
    ],
)
def test_reply_parsing(fake: FakeOpenAIServer, key_env: str, reply: str, letter: str | None) -> None:
    fake.reply = reply
    answer = _backend(fake).answer(PAIR, _question())
    assert answer.raw_text == reply
    assert answer.letter == letter
    assert not answer.abstained
    assert answer.reason == (None if letter is not None else 'unparsed')


def test_letter_maps_to_the_label(fake: FakeOpenAIServer, key_env: str) -> None:
    question = _question(QuestionType.EGO_TRANSLATION, ViewpointLabel.RIGHT)
    fake.reply = f'<think>x</think><answer>{question.answer_letter}</answer>'
    answer = _backend(fake).answer(PAIR, question)
    assert question.label_for_letter(answer.letter) is ViewpointLabel.RIGHT


def test_free_form_ask_sends_every_frame(fake: FakeOpenAIServer, key_env: str) -> None:
    fake.reply = 'The mug is left of the laptop.'
    frames = [_frame(320, 240, stamp_ns=s) for s in range(3)]
    answer = _backend(fake).ask(frames, 'Where is the mug?')
    parts = fake.requests[0]['messages'][1]['content']
    assert [p['type'] for p in parts] == ['image_url'] * 3 + ['text']
    assert parts[3]['text'] == 'Where is the mug?'
    assert answer.letter is None and answer.raw_text == 'The mug is left of the laptop.' and answer.reason is None


def test_ask_jpegs_sends_the_bytes_as_they_are(fake: FakeOpenAIServer, key_env: str) -> None:
    """Already encoded JPEGs (a dataset's images, the teacher's) are neither resized nor re-encoded."""
    fake.reply = 'Both show a mug.'
    jpegs = [b'\xff\xd8first\xff\xd9', b'\xff\xd8second\xff\xd9']
    answer = _backend(fake, max_image_width=8, max_image_height=8).ask_jpegs(jpegs, 'What do they show?')
    parts = fake.requests[0]['messages'][1]['content']
    urls = [part['image_url']['url'] for part in parts[:2]]
    assert [base64.b64decode(url.split(',', 1)[1]) for url in urls] == jpegs
    assert all(url.startswith('data:image/jpeg;base64,') for url in urls)
    assert parts[2]['text'] == 'What do they show?' and answer.raw_text == fake.reply and answer.letter is None


def test_free_form_ask_streams_the_reply_as_it_comes(fake: FakeOpenAIServer, key_env: str) -> None:
    """With on_text the request is streamed (server-sent events); the reply so far arrives chunk by chunk."""
    fake.reply = 'The mug is left of the laptop.'
    backend = _backend(fake)
    seen: list[str] = []
    try:
        frame = Frame(image=np.zeros((32, 32, 3), np.uint8), stamp_ns=1)
        answer = backend.ask([frame], 'Where is the mug?', on_text=seen.append)
    finally:
        backend.close()
    assert fake.requests[-1]['stream'] is True and fake.requests[-1]['stream_options'] == {'include_usage': True}
    assert answer.raw_text == fake.reply and answer.letter is None
    assert len(seen) == 8 and seen[-1] == fake.reply and all(fake.reply.startswith(text) for text in seen)
    assert answer.usage.get('completion_tokens') == 8  # the usage chunk of the stream


def test_an_unexpected_error_gives_the_in_flight_slot_back() -> None:
    """A failure inside a request that is no HTTP or client error (a bug, an interrupt) reaches the caller,
    and its in-flight slot is free again: with max_in_flight=1 the next request still runs (without the
    release it waited for a slot that never came back and failed with 'no in-flight slot free')."""
    from actial_ros.backends.attempts import AttemptRunner
    from actial_ros.backends.endpoint_pool import EndpointPool
    from actial_ros.backends.retry_policy import RetryPolicy

    policy = RetryPolicy(timeout_s=0.5, max_retries=0)
    pool = EndpointPool(urls=['http://127.0.0.1:9/v1'], api_key=KEY, policy=policy, max_in_flight=1)
    runner = AttemptRunner(pool=pool, policy=policy, model=MODEL, api_key_env=ENV, secret=KEY)

    def broken(client: Any) -> int:
        raise ValueError('a bug in building the request')

    with pytest.raises(ValueError, match='a bug in building the request'):
        runner.call(broken, 'POST /chat/completions')
    result, url, _ = runner.call(lambda client: 42, 'POST /chat/completions')
    assert result == 42 and url == 'http://127.0.0.1:9/v1'


def test_server_errors_are_retried_then_succeed(fake: FakeOpenAIServer, key_env: str) -> None:
    backend = _backend(fake, max_retries=2)
    fake.fail_next(2, status=500)
    assert backend.answer(PAIR, _question()).letter == 'A'
    assert len(fake.requests) == 3
    assert backend.health().ok


def test_retries_are_bounded(fake: FakeOpenAIServer, key_env: str) -> None:
    backend = _backend(fake, max_retries=2, retry_backoff_s=0.05)
    fake.fail_next(10, status=503)
    start = time.monotonic()
    with pytest.raises(BackendError, match=r'after 3 attempt\(s\).*HTTP 503'):
        backend.answer(PAIR, _question())
    assert len(fake.requests) == 3
    assert time.monotonic() - start < backend.worst_case_s
    health = backend.health()
    assert not health.ok and health.consecutive_failures == 1 and '503' in health.message


def test_client_errors_are_not_retried(fake: FakeOpenAIServer, key_env: str) -> None:
    backend = _backend(fake, max_retries=3)
    fake.fail_next(1, status=400)
    with pytest.raises(BackendError, match='HTTP 400'):
        backend.answer(PAIR, _question())
    assert len(fake.requests) == 1


def test_timeout_raises_without_retry(fake: FakeOpenAIServer, key_env: str) -> None:
    backend = _backend(fake, timeout_s=0.3, max_retries=2)
    fake.delay_s = 1.5
    start = time.monotonic()
    with pytest.raises(BackendError, match='timeout'):
        backend.answer(PAIR, _question())
    assert time.monotonic() - start < 1.2
    assert len(fake.requests) == 1
    assert not backend.health().ok


def test_timeout_retried_when_asked(fake: FakeOpenAIServer, key_env: str) -> None:
    backend = _backend(fake, timeout_s=0.2, max_retries=1, retry_on_timeout=True)
    fake.delay_s = 1.0
    with pytest.raises(BackendError, match=r'after 2 attempt\(s\).*timeout'):
        backend.answer(PAIR, _question())
    assert len(fake.requests) == 2


def test_server_down_then_restarted(fake: FakeOpenAIServer, key_env: str) -> None:
    backend = _backend(fake, max_retries=2, retry_backoff_s=0.02)
    assert backend.answer(PAIR, _question()).letter == 'A'
    fake.stop()
    start = time.monotonic()
    for expected_failures in (1, 2):
        with pytest.raises(BackendError, match='cannot reach'):
            backend.answer(PAIR, _question())
        health = backend.health()
        assert not health.ok and health.consecutive_failures == expected_failures
    assert time.monotonic() - start < 2 * backend.worst_case_s
    with pytest.raises(BackendError):
        backend.probe()
    fake.start()  # same port
    assert backend.answer(PAIR, _question()).letter == 'A'
    health = backend.health()
    assert health.ok and health.consecutive_failures == 0
    assert backend.last_error is not None and 'cannot reach' in backend.last_error


def test_wrong_key_is_refused_without_leaking_it(
    fake: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = 'sk-wrong-77aa-secret'
    monkeypatch.setenv(ENV, wrong)
    caplog.set_level(logging.DEBUG)
    backend = _backend(fake)
    with pytest.raises(BackendError) as info:
        backend.answer(PAIR, _question())
    message = str(info.value)
    assert '401' in message and 'API key' in message and ENV in message
    assert len(fake.requests) == 0  # refused before the body was recorded, and not retried
    for text in (message, repr(backend), backend.health().message, caplog.text):
        assert wrong not in text and KEY not in text
    assert info.value.__cause__ is None


def test_key_never_logged_on_success(fake: FakeOpenAIServer, key_env: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    backend = _backend(fake)
    backend.answer(PAIR, _question())
    fake.fail_next(1)
    backend.answer(PAIR, _question())
    assert 'chat/completions' in caplog.text  # the client's debug records were captured
    assert KEY not in caplog.text and KEY not in repr(backend)


def test_unset_key_sends_empty(fake: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    fake.api_key = 'EMPTY'  # vLLM without --api-key accepts anything; here only 'EMPTY'
    assert _backend(fake).answer(PAIR, _question()).letter == 'A'


def test_wrong_model_name(fake: FakeOpenAIServer, key_env: str) -> None:
    backend = _backend(fake, model='Actial-7B')
    with pytest.raises(BackendError, match=r"404.*model name 'Actial-7B' is probably wrong"):
        backend.answer(PAIR, _question())
    assert len(fake.requests) == 1  # not retried
    with pytest.raises(BackendError, match=f"does not serve model 'Actial-7B'; it serves: {MODEL}"):
        backend.probe()


def test_probe(fake: FakeOpenAIServer, key_env: str) -> None:
    backend = _backend(fake)
    assert backend.health().ok  # nothing sent yet
    assert backend.probe() == [MODEL]
    assert fake.models_requests == 1 and backend.health().ok
    misplaced = _backend(fake, base_url=f'http://127.0.0.1:{fake.port}/api')
    with pytest.raises(BackendError, match='base URL is probably wrong'):
        misplaced.probe()
    assert not misplaced.health().ok


def test_in_flight_bound(fake: FakeOpenAIServer, key_env: str) -> None:
    backend = _backend(fake, max_in_flight=2, timeout_s=5.0)
    fake.delay_s = 0.15
    answers: list[BackendAnswer] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    small = Pair(_frame(64, 48), _frame(64, 48, stamp_ns=2), None)

    def worker() -> None:
        try:
            result = backend.answer(small, _question())
            with lock:
                answers.append(result)
        except BaseException as exc:  # reported below
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert not errors and len(answers) == 8
    assert fake.max_concurrent == 2  # never more than max_in_flight, and the bound was reached


def test_close_is_idempotent_and_final(fake: FakeOpenAIServer, key_env: str) -> None:
    backend = _backend(fake)
    backend.close()
    backend.close()
    assert not backend.health().ok
    with pytest.raises(BackendError, match='closed'):
        backend.answer(PAIR, _question())


def test_base_url_gets_the_api_path(fake: FakeOpenAIServer, key_env: str) -> None:
    backend = _backend(fake, base_url=f'http://127.0.0.1:{fake.port}/')
    assert backend.base_url == fake.base_url
    assert backend.answer(PAIR, _question()).letter == 'A'


@pytest.mark.parametrize(
    'options',
    [
        {'base_url': 'ftp://host/v1'},
        {'base_url': 'http://user:pw@host:8000/v1'},
        {'model': ' '},
        {'max_in_flight': 0},
        {'timeout_s': 0},
        {'max_retries': -1},
        {'top_p': 0.0},
        {'jpeg_quality': 0},
        {'api_key_env': 'not a name'},
        {'no_such_option': 1},
    ],
)
def test_config_errors(options: dict[str, Any]) -> None:
    settings: dict[str, Any] = {'base_url': 'http://127.0.0.1:9/v1', 'model': MODEL}
    settings.update(options)
    with pytest.raises(ConfigError):
        create_backend('vllm', **settings)


def test_factory_requires_a_model_and_knows_the_names() -> None:
    with pytest.raises(ConfigError, match='invalid options'):
        create_backend('vllm')
    with pytest.raises(ConfigError, match='known: geometry, transformers, vllm'):
        create_backend('openai')
    backend = create_backend(' VLLM ', model=MODEL)
    assert isinstance(backend, VllmBackend) and backend.base_url == 'http://127.0.0.1:8000/v1'
    backend.close()


# ---------------------------------------------------------------------------------------------------
# Several endpoints: load spreading, failover, cool-down, probing, health per endpoint


@pytest.fixture
def fakes() -> Iterator[list[FakeOpenAIServer]]:
    """Two started fake servers serving the same model; stopped after the test."""
    servers = [FakeOpenAIServer(api_key=KEY, model=MODEL).start() for _ in range(2)]
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()


def _dead_url() -> str:
    server = FakeOpenAIServer().start()
    url = str(server.base_url)
    server.stop()  # the port is now closed: connection refused
    return url


def test_base_url_lists() -> None:
    assert parse_base_urls('http://a:8000/v1') == ['http://a:8000/v1']
    assert parse_base_urls(' http://a:8000/v1, http://b:8000 ,http://a:8000/v1/ ') == [
        'http://a:8000/v1',
        'http://b:8000/v1',
    ]
    assert parse_base_urls(['http://a:1/v1', 'http://b:2/v1 http://c:3']) == [
        'http://a:1/v1',
        'http://b:2/v1',
        'http://c:3/v1',
    ]
    for bad in ('', ' , ', ['http://a:1/v1', 'ftp://b/v1'], [3]):
        with pytest.raises(ConfigError):
            parse_base_urls(bad)  # type: ignore[arg-type]
    backend = create_backend('vllm', base_url='http://a:1/v1,http://b:2/v1', model=MODEL)
    assert isinstance(backend, VllmBackend)
    assert backend.base_urls == ('http://a:1/v1', 'http://b:2/v1') and backend.base_url == 'http://a:1/v1'
    assert 'base_urls=' in repr(backend)
    backend.close()


def test_sequential_requests_alternate_between_endpoints(fakes: list[FakeOpenAIServer], key_env: str) -> None:
    backend = _backend(fakes[0], base_url=[f.base_url for f in fakes])
    for _ in range(6):
        assert backend.answer(PAIR, _question()).letter == 'A'
    assert [len(f.requests) for f in fakes] == [3, 3]
    assert [e.successes for e in backend.endpoints()] == [3, 3]
    assert {t.endpoint for t in backend.recent_timings()} == {f.base_url for f in fakes}
    health = backend.health()
    assert health.ok and health.message == f'2/2 endpoints up ({MODEL})'


def test_concurrent_requests_go_to_the_least_busy_endpoint(fakes: list[FakeOpenAIServer], key_env: str) -> None:
    fakes[0].delay_s = 0.6  # a slow endpoint keeps its request; the others go to the free one
    backend = _backend(fakes[0], base_url=[f.base_url for f in fakes], max_in_flight=2)
    small = Pair(_frame(64, 48), _frame(64, 48, stamp_ns=2), None)
    slow = threading.Thread(target=backend.answer, args=(small, _question()))
    slow.start()
    time.sleep(0.2)  # the slow request is on the wire to endpoint 0
    for _ in range(4):
        backend.answer(small, _question())
    slow.join(5)
    assert len(fakes[0].requests) == 1 and len(fakes[1].requests) == 4


def test_failover_skips_a_dead_endpoint(fakes: list[FakeOpenAIServer], key_env: str) -> None:
    dead = _dead_url()
    backend = _backend(fakes[0], base_url=[dead, fakes[0].base_url], max_retries=1, retry_backoff_s=5.0)
    start = time.monotonic()
    for _ in range(5):
        assert backend.answer(PAIR, _question()).letter == 'A'
    assert time.monotonic() - start < 2.0  # no backoff sleep: the live endpoint is used at once
    assert len(fakes[0].requests) == 5
    dead_health, live_health = backend.endpoints()
    assert dead_health.requests == 1 and dead_health.ok is False and dead_health.cooldown_s > 1.0
    assert 'cannot reach' in (dead_health.last_error or '')
    assert live_health.ok and live_health.successes == 5
    health = backend.health()
    assert health.ok and health.consecutive_failures == 0
    assert health.message.startswith(f'1/2 endpoints up ({MODEL}); {dead} down (1 failure(s): cannot reach')


def test_an_endpoint_dying_mid_run_fails_over(fakes: list[FakeOpenAIServer], key_env: str) -> None:
    backend = _backend(fakes[0], base_url=[f.base_url for f in fakes], max_retries=1, retry_backoff_s=2.0)
    for _ in range(2):
        backend.answer(PAIR, _question())
    fakes[0].stop()
    for _ in range(4):
        assert backend.answer(PAIR, _question()).letter == 'A'  # never an error for the caller
    assert len(fakes[1].requests) == 1 + 4
    fakes[0].start()  # back on the same port: used again once its cool-down ends or a probe succeeds
    assert backend.probe() == [MODEL]
    for _ in range(2):
        backend.answer(PAIR, _question())
    assert len(fakes[0].requests) == 2
    assert all(e.ok for e in backend.endpoints())


def test_server_errors_fail_over_too(fakes: list[FakeOpenAIServer], key_env: str) -> None:
    fakes[0].fail_next(1, status=503)
    backend = _backend(fakes[0], base_url=[f.base_url for f in fakes], max_retries=1, retry_backoff_s=5.0)
    start = time.monotonic()
    assert backend.answer(PAIR, _question()).letter == 'A'
    assert time.monotonic() - start < 1.0
    assert [len(f.requests) for f in fakes] == [1, 1]


def test_every_endpoint_down_is_an_error_after_bounded_backoff(key_env: str) -> None:
    urls = [_dead_url(), _dead_url()]
    backend = create_backend(
        'vllm', base_url=urls, model=MODEL, api_key_env=ENV, timeout_s=1.0, max_retries=3, retry_backoff_s=0.05
    )
    assert isinstance(backend, VllmBackend)
    start = time.monotonic()
    with pytest.raises(BackendError, match=r'failed after 4 attempt\(s\): cannot reach'):
        backend.answer(PAIR, _question())
    assert time.monotonic() - start < backend.worst_case_s
    assert [e.requests for e in backend.endpoints()] == [2, 2]  # alternated
    health = backend.health()
    assert not health.ok and health.message.startswith(f'0/2 endpoints up ({MODEL})')
    backend.close()


def test_cool_down_spares_a_dead_server_across_calls(fake: FakeOpenAIServer, key_env: str) -> None:
    """Workers calling in a loop against a dead server wait for its cool-down instead of hammering it."""
    backend = _backend(fake, max_retries=0, retry_backoff_s=0.4, max_backoff_s=0.4, timeout_s=5.0)
    fake.stop()
    failures = 0
    lock = threading.Lock()
    end = time.monotonic() + 1.0

    def loop() -> None:
        nonlocal failures
        while time.monotonic() < end:
            with pytest.raises(BackendError, match='cannot reach'):
                backend.answer(PAIR, _question())
            with lock:
                failures += 1

    threads = [threading.Thread(target=loop) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    attempts = backend.endpoints()[0].requests
    # Cool-downs of 0.2 to 0.4 s: a handful of rounds in 1 s (all four callers try at each expiry),
    # where a loop without them would make hundreds of attempts.
    assert attempts == failures
    assert 4 <= attempts <= 4 * 7, attempts


def test_probe_thread_reports_a_wrong_model_and_a_recovery(
    fake: FakeOpenAIServer, key_env: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger='actial_ros.backends.vllm')
    backend = _backend(fake, model='nope', probe_interval_s=0.1)
    try:
        deadline = time.monotonic() + 5
        while backend.health().ok and time.monotonic() < deadline:
            time.sleep(0.02)
        health = backend.health()
        assert not health.ok and f"does not serve model 'nope'; it serves: {MODEL}" in health.message
        assert fake.models_requests >= 1 and not fake.requests  # found without any question asked
        time.sleep(0.5)
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1 and 'misconfigured' in errors[0].getMessage()  # logged once, not per probe
    finally:
        backend.close()

    backend = _backend(fake, probe_interval_s=0.1)
    try:
        fake.stop()
        deadline = time.monotonic() + 5
        while backend.health().ok and time.monotonic() < deadline:
            time.sleep(0.02)
        assert 'cannot reach' in backend.health().message  # noticed while idle
        fake.start()
        deadline = time.monotonic() + 5
        while not backend.health().ok and time.monotonic() < deadline:
            time.sleep(0.02)
        assert backend.health().ok and backend.endpoints()[0].cooldown_s == 0
        assert any('is back' in r.getMessage() for r in caplog.records)
    finally:
        backend.close()


def test_probe_does_not_hide_server_errors(fake: FakeOpenAIServer, key_env: str) -> None:
    """A server whose model list works but whose completions fail stays unhealthy until one succeeds."""
    backend = _backend(fake, max_retries=0, probe_interval_s=0.05)
    try:
        fake.fail_next(1, status=500)
        with pytest.raises(BackendError, match='HTTP 500'):
            backend.answer(PAIR, _question())
        time.sleep(0.3)  # several probes succeed meanwhile
        assert not backend.health().ok
        assert backend.answer(PAIR, _question()).letter == 'A'
        assert backend.health().ok
    finally:
        backend.close()


def test_close_stops_the_probe_thread(fake: FakeOpenAIServer, key_env: str) -> None:
    backend = _backend(fake, probe_interval_s=0.05)
    time.sleep(0.2)
    backend.close()
    count = fake.models_requests
    time.sleep(0.3)
    assert fake.models_requests == count
    assert not [t for t in threading.enumerate() if t.name == 'actial-vllm-probe']


def test_timings_separate_node_and_server_time(fake: FakeOpenAIServer, key_env: str) -> None:
    fake.delay_s = 0.2
    backend = _backend(fake)
    answer = backend.answer(PAIR, _question())
    (timing,) = backend.recent_timings()
    assert timing.server_s >= 0.2 and timing.prepare_s > 0 and timing.parse_s >= 0
    assert timing.node_overhead_s == timing.prepare_s + timing.parse_s
    assert timing.total_s == pytest.approx(answer.latency_s, abs=1e-3)
    assert timing.prompt_tokens == 100 and timing.completion_tokens == 7


def test_an_attempt_still_waiting_after_twice_the_timeout_is_abandoned(fake: FakeOpenAIServer, key_env: str) -> None:
    """Guard against an HTTP client that overruns its read timeout: the caller gets a timeout after
    ``2 * timeout_s`` while the client still waits, and the abandoned request keeps its in-flight slot."""
    backend = _backend(fake, timeout_s=0.1, max_retries=2)
    client = backend._pool.endpoints[0].client
    original = client.chat.completions.create
    release = threading.Event()

    def late(*args: Any, **kwargs: Any) -> Any:
        release.wait(30)  # the client "forgot" its 0.1 s read timeout until the test lets it go on
        return original(*args, **kwargs)

    client.chat.completions.create = late  # type: ignore[method-assign]
    try:
        with pytest.raises(BackendError, match=r'within 0\.1 s \(timeout; still waiting after 0\.2 s, abandoned\)'):
            backend.answer(PAIR, _question())
        assert not backend.health().ok
        (endpoint,) = backend.endpoints()
        assert endpoint.in_flight == 1 and fake.requests == []  # still on the wire, slot kept
    finally:
        release.set()
    deadline = time.monotonic() + 10
    while backend.endpoints()[0].in_flight:
        assert time.monotonic() < deadline, 'the abandoned attempt never gave its slot back'
        time.sleep(0.01)
    assert len(fake.requests) == 1  # not retried, like any timeout
