"""The in-process transformers backend with the tiny random Qwen2.5-VL (built locally), directly, through
the node's parameters, over ROS 2, and against the real vLLM server for prompt parity."""

from __future__ import annotations

import random
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip('torch')
pytest.importorskip('transformers')

from ros_harness import Checker, start, stop
from serving_support import API_KEY, API_KEY_ENV, SERVED_NAME, VllmServer

from actial_ros.backends import TransformersBackend, VllmBackend, create_backend
from actial_ros.backends.base import BackendAnswer
from actial_ros.enums import QuestionType
from actial_ros.errors import BackendError, ConfigError
from actial_ros.frame import Frame, Pair
from actial_ros.questions import make_question
from actial_ros.sources.llff import LlffCapture

MAX_TOKENS = 12


@pytest.fixture(scope='module')
def backend(tiny_checkpoint: Path) -> Any:
    created = create_backend('transformers', model=str(tiny_checkpoint), max_tokens=MAX_TOKENS)
    assert isinstance(created, TransformersBackend)
    yield created
    created.close()


@pytest.fixture(scope='module')
def pair(sample_capture: Path) -> Pair:
    capture = LlffCapture.open(sample_capture)
    return Pair(capture.load_frame(0, 1), capture.load_frame(3, 2), None, pair_id=7)


def test_loads_on_the_cpu_without_a_gpu(backend: TransformersBackend) -> None:
    import torch

    assert backend.device == ('cuda' if torch.cuda.is_available() else 'cpu')
    assert backend.dtype == (torch.float32 if backend.device == 'cpu' else backend.dtype)
    health = backend.health()
    assert health.ok and 'loaded' in health.message


def test_answers_are_greedy_parsed_and_counted(backend: TransformersBackend, pair: Pair) -> None:
    question = make_question(QuestionType.ROTATION, None, random.Random(3))
    first = backend.answer(pair, question)
    second = backend.answer(pair, question)
    assert first.backend == 'transformers' and first.raw_text == second.raw_text  # greedy: deterministic
    assert (first.letter is None) == (first.reason == 'unparsed')
    assert first.usage['prompt_tokens'] > 50 and 1 <= first.usage['completion_tokens'] <= MAX_TOKENS
    assert first.usage['total_tokens'] == first.usage['prompt_tokens'] + first.usage['completion_tokens']
    assert first.latency_s > 0
    free = backend.ask([pair.frame_1], 'What is in front of the camera?')
    assert free.letter is None and free.reason is None
    assert free.usage['prompt_tokens'] < first.usage['prompt_tokens']  # one image fewer
    assert backend.health().ok and 'ok (' in backend.health().message


def test_concurrent_callers_are_serialised(backend: TransformersBackend, pair: Pair) -> None:
    question = make_question(QuestionType.EGO_TRANSLATION, None, random.Random(4))
    results: list[BackendAnswer] = []
    errors: list[BaseException] = []

    def call() -> None:
        try:
            results.append(backend.answer(pair, question))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors and len(results) == 4
    assert len({r.raw_text for r in results}) == 1  # the same greedy answer, whatever the interleaving


def test_images_of_any_size_and_channels(backend: TransformersBackend) -> None:
    rng = np.random.default_rng(0)
    frames = [
        Frame(image=rng.integers(0, 256, (1080, 1920, 3), dtype=np.uint8), stamp_ns=1),
        Frame(image=rng.integers(0, 256, (31, 57, 3), dtype=np.uint8), stamp_ns=2),
    ]
    answer = backend.ask(frames, 'Compare the two views.')
    assert answer.usage['completion_tokens'] >= 1


def test_errors_are_clear(tiny_checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(BackendError, match=r'cannot load a Qwen2\.5-VL checkpoint'):
        TransformersBackend(model=str(tmp_path / 'missing'))
    with pytest.raises(ConfigError, match='non-empty'):
        TransformersBackend(model=' ')
    with pytest.raises(ConfigError, match='dtype must be one of'):
        TransformersBackend(model=str(tiny_checkpoint), dtype='int3')
    with pytest.raises(ConfigError, match='invalid options'):
        create_backend('transformers', model=str(tiny_checkpoint), no_such_option=1)
    closing = TransformersBackend(model=str(tiny_checkpoint), max_tokens=2)
    closing.close()
    closing.close()
    with pytest.raises(BackendError, match='closed'):
        closing.ask([Frame(image=np.zeros((28, 28, 3), np.uint8), stamp_ns=1)], 'x')
    assert not closing.health().ok


def test_core_stays_torch_free() -> None:
    """Importing the package, the backends and the node's backend factory does not import torch."""
    code = (
        'import sys\n'
        'import actial_ros.backends, actial_ros.backends.transformers_backend, actial_ros.serving\n'
        'from actial_ros.backends import create_backend\n'
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'torch imported'\n"
    )
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_node_parameters_select_it(tiny_checkpoint: Path) -> None:
    pytest.importorskip('rclpy')
    from actial_ros.nodes.spatial_reasoner_parameters import PARAMETERS, SpatialReasonerSettings

    values = {param.name: param.default for param in PARAMETERS}
    values.update(backend='transformers', transformers_model=str(tiny_checkpoint), max_tokens=4)
    created = SpatialReasonerSettings.from_values(values).create_backend()
    try:
        assert isinstance(created, TransformersBackend) and created.model_source == str(tiny_checkpoint)
    finally:
        created.close()
    values['transformers_model'] = ''
    with pytest.raises(ConfigError, match='transformers_model'):
        SpatialReasonerSettings.from_values(values).create_backend()
    values['transformers_model'] = '/nonexistent/checkpoint'
    with pytest.raises(ConfigError, match='cannot load'):
        SpatialReasonerSettings.from_values(values).create_backend()


def test_node_end_to_end_with_the_in_process_model(
    tiny_checkpoint: Path, sample_capture: Path, ros_env: dict[str, str], rclpy_context: Any, tmp_path: Path
) -> None:
    """A robot without a vLLM server: the node loads the checkpoint itself and answers over ROS 2."""
    checker = Checker(rclpy_context)
    log = tmp_path / 'node.log'
    node = start(
        'actial_ros.nodes.spatial_reasoner',
        {
            'backend': 'transformers',
            'transformers_model': tiny_checkpoint,
            'max_tokens': 6,
            'max_in_flight': 1,
            'diagnostics_period_s': 0.2,
            'max_frame_uses': 1,
            'min_pair_interval_s': 0.0,
        },
        ros_env,
        log,
    )
    try:
        checker.spin_until(lambda: checker.node.count_publishers('/spatial_reasoner/answers') > 0, 60, 'the node', log)
        replay = start(
            'actial_ros.nodes.capture_replay', {'capture': sample_capture, 'rate_hz': 10.0}, ros_env, tmp_path / 'r.log'
        )
        checker.spin_until(lambda: replay.poll() is not None, 60, 'the replay to finish')
        checker.spin_until(
            lambda: checker.images() >= 24 and checker.backend().get('idle') == 'True', 180, 'all answers', log
        )
        checker.spin_for(0.3)
    finally:
        assert stop(node) == 0, log.read_text()[-3000:]
        checker.close()
    records = checker.viewpoint()
    assert len(records) == 3 * int(checker.ingest()['pairs_made']) > 0
    assert {r['status'] for r in records} <= {'answered', 'unparsed'}
    assert all(r['backend'] == 'transformers' and r['usage']['completion_tokens'] >= 1 for r in records)
    assert checker.backend()['healthy'] == 'True'


def test_same_prompt_as_the_vllm_server(
    backend: TransformersBackend, live_server: VllmServer, pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The in-process backend renders the same prompt as vLLM does for the vLLM backend's request: the
    same system prompt, two images and question give the same prompt token count."""
    monkeypatch.setenv(API_KEY_ENV, API_KEY)
    served = create_backend(
        'vllm', base_url=live_server.base_url, model=SERVED_NAME, api_key_env=API_KEY_ENV, max_tokens=4
    )
    assert isinstance(served, VllmBackend)
    try:
        question = make_question(QuestionType.OBJECT_TRANSLATION, None, random.Random(5))
        local = backend.answer(pair, question)
        remote = served.answer(pair, question)
        assert local.usage['prompt_tokens'] == remote.usage['prompt_tokens']
        one_local = backend.ask([pair.frame_2], 'Describe the view.')
        one_remote = served.ask([pair.frame_2], 'Describe the view.')
        assert one_local.usage['prompt_tokens'] == one_remote.usage['prompt_tokens']
    finally:
        served.close()
