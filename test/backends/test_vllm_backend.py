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


def _question(
    kind: QuestionType = QuestionType.ROTATION, truth: ViewpointLabel = ViewpointLabel.LEFT
) -> Question:
    return make_question(kind, truth, random.Random(4))


PAIR = Pair(_frame(1920, 1080), _frame(640, 480, stamp_ns=2), None, pair_id=1)


def _decode_data_url(url: str) -> np.ndarray[Any, Any]:
    prefix = 'data:image/jpeg;base64,'
    assert url.startswith(prefix)
    data = base64.b64decode(url[len(prefix) :])
    assert data[:2] == b'\xff\xd8'
    return decode_jpeg(data)


def test_request_carries_system_prompt_two_jpegs_and_the_question(
    fake: FakeOpenAIServer, key_env: str
) -> None:
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
    assert (
        answer.letter is None
        and answer.raw_text == 'The mug is left of the laptop.'
        and answer.reason is None
    )


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


def test_key_never_logged_on_success(
    fake: FakeOpenAIServer, key_env: str, caplog: pytest.LogCaptureFixture
) -> None:
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
    with pytest.raises(ConfigError, match='known: geometry, vllm'):
        create_backend('openai')
    backend = create_backend(' VLLM ', model=MODEL)
    assert isinstance(backend, VllmBackend) and backend.base_url == 'http://127.0.0.1:8000/v1'
    backend.close()
