"""Helpers of the real-vLLM test tier: a handle on a `vllm serve` process and the node's environment (the node
process and the in-test subscriber come from test/ros_harness.py).

The server is started with :func:`actial_ros.serving.start_server`, so the command line ``actial-ros serve``
prints is the one that is tested against real vLLM.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from actial_ros.serving import ServeOptions, start_server, wait_for_health

REPO = Path(__file__).resolve().parents[2]
VLLM_VENV = Path(os.environ.get('ACTIAL_VLLM_VENV', REPO / '.venv-vllm'))
VLLM_EXECUTABLE = VLLM_VENV / 'bin' / 'vllm'
SERVED_NAME = 'tiny'
API_KEY = 'sk-actial-tier-7c1d'
API_KEY_ENV = 'ACTIAL_TEST_VLLM_KEY'
HEALTH_TIMEOUT_S = 240.0


def free_port() -> int:
    """A TCP port that is free on loopback now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return int(sock.getsockname()[1])


def server_environment() -> dict[str, str]:
    """The environment of `vllm serve` in the tier: offline, no usage statistics, the test key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(('ROS_', 'FASTDDS_', 'RMW_'))}
    env.update(
        {
            API_KEY_ENV: API_KEY,
            'HF_HUB_OFFLINE': '1',
            'TRANSFORMERS_OFFLINE': '1',
            'VLLM_NO_USAGE_STATS': '1',
            'DO_NOT_TRACK': '1',
            'TOKENIZERS_PARALLELISM': 'false',
        }
    )
    return env


def _lower_priority() -> None:
    """Run the server (and the engine processes it spawns) at nice 10.

    On the 2-core CI machine the server shares the CPUs with the test process and the node, and vLLM's CPU
    build keeps its scheduler process busy-waiting (its own TODO) besides the OMP workers: at equal priority
    a client waiting 0.6 s for a timeout was seen to get the CPU back only after a 3 s generation ended.
    """
    os.nice(10)


class VllmServer:
    """A real `vllm serve` of the tiny model on loopback; :meth:`kill` and :meth:`start` keep the port."""

    def __init__(self, model: Path, log_dir: Path, port: int | None = None) -> None:
        self.options = ServeOptions(
            model=str(model),
            served_model_name=SERVED_NAME,
            host='127.0.0.1',
            port=port or free_port(),
            api_key_env=API_KEY_ENV,
            max_model_len=2048,
            dtype='float32',
            enforce_eager=True,
            cpu_kv_cache_gib=1,
            executable=str(VLLM_EXECUTABLE),
        )
        self.log_dir = log_dir
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.startup_s: list[float] = []

    @property
    def base_url(self) -> str:
        return self.options.base_url

    @property
    def port(self) -> int:
        return self.options.port

    @property
    def log_path(self) -> Path:
        return self.log_dir / f'vllm_{self.port}_{self.starts}.log'

    def start(self) -> float:
        """Start the server and wait for /health; returns the start-up seconds."""
        assert self.process is None or self.process.poll() is not None, 'already running'
        self.starts += 1
        log = self.log_path.open('wb')
        self.process = start_server(
            self.options,
            env=server_environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_lower_priority,
        )
        log.close()
        try:
            waited = wait_for_health(self.base_url, HEALTH_TIMEOUT_S, process=self.process)
        except Exception:
            self.kill()
            tail = self.log_path.read_text(errors='replace')[-4000:]
            pytest.fail(f'vllm serve did not become healthy:\n{tail}')
        self.startup_s.append(waited)
        return waited

    def kill(self) -> None:
        """SIGKILL the server and its engine processes (a crash, not a clean shutdown)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)
        _wait_port_closed(self.port)

    def stop(self) -> None:
        """Clean shutdown (SIGTERM, then SIGKILL after 20 s)."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.kill()
        except ProcessLookupError:
            pass

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def ensure_running(self) -> None:
        if not self.alive():
            self.start()

    def metric(self, name: str) -> float:
        """A gauge or counter from /metrics (summed over label sets)."""
        with urllib.request.urlopen(f'http://127.0.0.1:{self.port}/metrics', timeout=5) as response:
            text = response.read().decode()
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name) and (line[len(name)] in ' {'):
                total += float(line.rsplit(' ', 1)[1])
        return total


def _wait_port_closed(port: int, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            if sock.connect_ex(('127.0.0.1', port)) != 0:
                return
        time.sleep(0.1)


def node_environment(ros_env: dict[str, str]) -> dict[str, str]:
    """The node's environment: the session's ROS environment plus the API key variable."""
    return {**ros_env, API_KEY_ENV: API_KEY, 'RCUTILS_COLORIZED_OUTPUT': '0'}
