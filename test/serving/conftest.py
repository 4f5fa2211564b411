"""Fixtures of the real-vLLM tier: the tiny Qwen2.5-VL built locally and one `vllm serve` per session.

The vLLM tests need the virtual environment that ``test/serving/setup_vllm_env.sh`` creates
(``.venv-vllm/``; ``make test`` runs the script first). Without it they are skipped, saying so; nothing
else skips them. The transformers backend tests need only torch and transformers (the ``train`` extra).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from serving_support import VLLM_EXECUTABLE, VLLM_VENV, VllmServer

os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')


def _require_vllm() -> None:
    if not VLLM_EXECUTABLE.exists():
        pytest.skip(
            f'no vLLM test environment at {VLLM_VENV}: run test/serving/setup_vllm_env.sh (make test does) '
            'to run the real-vLLM tier'
        )


@pytest.fixture(scope='session')
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random Qwen2.5-VL of training/fine_tuning/tiny_model.py, built once per session (about 2 s)."""
    pytest.importorskip('transformers')
    from actial_ros.training.fine_tuning.tiny_model import build_tiny_qwen25vl

    return Path(build_tiny_qwen25vl(tmp_path_factory.mktemp('serving_tiny') / 'model', seed=0))


@pytest.fixture(scope='session')
def vllm_server(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmServer]:
    """A real `vllm serve` of the tiny model on a free loopback port, started once per session.

    Tests that kill it restart it before they end; :meth:`VllmServer.ensure_running` is called by
    :func:`live_server` for the others.
    """
    _require_vllm()
    server = VllmServer(tiny_checkpoint, tmp_path_factory.mktemp('vllm_logs'))
    server.start()
    try:
        yield server
    finally:
        server.stop()
        server.kill()


@pytest.fixture
def live_server(vllm_server: VllmServer) -> VllmServer:
    """The session's server, (re)started if an earlier test left it down."""
    vllm_server.ensure_running()
    return vllm_server
