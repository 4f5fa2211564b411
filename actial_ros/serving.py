"""The ``vllm serve`` command for Qwen2.5-VL checkpoints, as the node expects it (``actial-ros serve``).

The node sends one chat completion per question with two images (the pair) and reads the model by its
served name, optionally with an API key. :func:`serve_command` builds the matching command line:

* ``--served-model-name`` (the node's ``vllm_model``; default ``actial-7b``),
* ``--limit-mm-per-prompt '{"image": 2, "video": 0}'`` (two images per prompt; no video, so vLLM does
  not reserve memory for video inputs),
* ``--max-model-len`` (context length: two 960x540 images are about 1,300 tokens; the default 8192
  leaves room for the system prompt, the question and a long ``<think>`` block),
* ``--host``/``--port``, ``--dtype``, and for GPUs ``--gpu-memory-utilization`` and
  ``--tensor-parallel-size``; ``--enforce-eager`` (no graph capture: faster start, needed on CPU).

The API key is never put on the command line (where ``ps`` shows it): :func:`serve_environment` copies it
from the variable named by ``api_key_env`` into ``VLLM_API_KEY``, which ``vllm serve`` reads, and the
printed command shows ``VLLM_API_KEY="$ACTIAL_API_KEY" vllm serve ...`` instead of the value.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from actial_ros.backends.defaults import DEFAULT_MODEL
from actial_ros.errors import ActialError, ConfigError

__all__ = [
    'DEFAULT_SERVED_MODEL_NAME',
    'ServeOptions',
    'exec_server',
    'format_serve_command',
    'options_from_args',
    'parse_mm_limit',
    'serve_command',
    'serve_environment',
    'start_server',
    'wait_for_health',
]

DEFAULT_SERVED_MODEL_NAME = DEFAULT_MODEL
"""The node's default ``vllm_model`` (:data:`actial_ros.backends.defaults.DEFAULT_MODEL`)."""

_DTYPES = ('auto', 'bfloat16', 'float16', 'float32', 'half', 'float')


@dataclass(frozen=True, slots=True)
class ServeOptions:
    """What :func:`serve_command` puts on the ``vllm serve`` command line.

    Attributes:
        model: checkpoint directory or hub id of a Qwen2.5-VL model (Actial-7B, Qwen2.5-VL-3B/7B-Instruct...).
        served_model_name: the name clients use (the node's ``vllm_model``).
        host: interface to listen on (``0.0.0.0`` for all; the default, loopback, only serves this machine).
        port: TCP port.
        api_key_env: environment variable holding the API key (copied into ``VLLM_API_KEY``), or ``None``.
        max_model_len: context length (prompt + completion tokens).
        mm_limits: most items per prompt for each modality (default two images, no video).
        dtype: ``auto``, ``bfloat16``, ``float16`` or ``float32``.
        gpu_memory_utilization: share of GPU memory vLLM may take (``None``: vLLM's default, 0.9).
        tensor_parallel_size: GPUs to split the model over (``None``: 1).
        max_num_seqs: most sequences batched at once (``None``: vLLM's default).
        enforce_eager: no CUDA graph capture / torch.compile (faster start; needed on CPU).
        cpu_kv_cache_gib: CPU builds only: key-value cache size (sets ``VLLM_CPU_KVCACHE_SPACE``).
        extra_args: more ``vllm serve`` arguments, appended as given.
        executable: the ``vllm`` command (a path, e.g. ``.venv-vllm/bin/vllm``).
    """

    model: str
    served_model_name: str = DEFAULT_SERVED_MODEL_NAME
    host: str = '127.0.0.1'
    port: int = 8000
    api_key_env: str | None = None
    max_model_len: int = 8192
    mm_limits: Mapping[str, int] = field(default_factory=lambda: {'image': 2, 'video': 0})
    dtype: str = 'auto'
    gpu_memory_utilization: float | None = None
    tensor_parallel_size: int | None = None
    max_num_seqs: int | None = None
    enforce_eager: bool = False
    cpu_kv_cache_gib: int | None = None
    extra_args: tuple[str, ...] = ()
    executable: str = 'vllm'

    def __post_init__(self) -> None:
        if not self.model.strip():
            raise ConfigError('the model (checkpoint directory or hub id) must not be empty')
        if not self.served_model_name.strip():
            raise ConfigError('the served model name must not be empty')
        if not 0 < self.port < 65536:
            raise ConfigError(f'port must be in 1..65535, got {self.port}')
        if self.max_model_len < 256:
            raise ConfigError(
                f'max_model_len must be >= 256 (two images alone take hundreds), got {self.max_model_len}'
            )
        if self.mm_limits.get('image', 0) < 2:
            raise ConfigError('the node sends two images per prompt: the image limit must be >= 2')
        if self.dtype not in _DTYPES:
            raise ConfigError(f'dtype must be one of {", ".join(_DTYPES)}, got {self.dtype!r}')
        if self.gpu_memory_utilization is not None and not 0.0 < self.gpu_memory_utilization <= 1.0:
            raise ConfigError(f'gpu_memory_utilization must be in (0, 1], got {self.gpu_memory_utilization}')
        if self.tensor_parallel_size is not None and self.tensor_parallel_size < 1:
            raise ConfigError(f'tensor_parallel_size must be >= 1, got {self.tensor_parallel_size}')
        if self.max_num_seqs is not None and self.max_num_seqs < 1:
            raise ConfigError(f'max_num_seqs must be >= 1, got {self.max_num_seqs}')
        if self.cpu_kv_cache_gib is not None and self.cpu_kv_cache_gib < 1:
            raise ConfigError(f'cpu_kv_cache_gib must be >= 1, got {self.cpu_kv_cache_gib}')
        if self.api_key_env is not None and not self.api_key_env.replace('_', '').isalnum():
            raise ConfigError(f'api_key_env must be an environment variable name, got {self.api_key_env!r}')
        if '--api-key' in self.extra_args:
            raise ConfigError('pass the API key through api_key_env, never on the command line')

    @property
    def base_url(self) -> str:
        """The node's ``vllm_base_url`` for this server (loopback when listening on all interfaces)."""
        host = '127.0.0.1' if self.host in ('0.0.0.0', '::', '') else self.host
        return f'http://{host}:{self.port}/v1'


def parse_mm_limit(text: str) -> dict[str, int]:
    """``'image=2'``, ``'image=2,video=0'`` or JSON ``'{"image": 2}'`` -> ``{'image': 2, ...}``.

    Raises:
        ConfigError: unparsable, or a count that is not a non-negative integer.
    """
    text = text.strip()
    try:
        if text.startswith('{'):
            loaded = json.loads(text)
            if not isinstance(loaded, dict):
                raise ValueError('not an object')
            items = list(loaded.items())
        else:
            parts = [part.split('=', 1) for part in text.split(',') if part.strip()]
            if any(len(part) != 2 for part in parts):
                raise ValueError('expected MODALITY=COUNT')
            items = [(part[0], part[1]) for part in parts]
        limits = {str(key).strip(): int(value) for key, value in items}
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f'--limit-mm-per-prompt: cannot parse {text!r} ({exc}); use image=2 or {{"image": 2}}'
        ) from None
    if not limits or any(count < 0 for count in limits.values()):
        raise ConfigError(f'--limit-mm-per-prompt: counts must be >= 0, got {text!r}')
    return limits


def serve_command(options: ServeOptions) -> list[str]:
    """The ``vllm serve`` argument vector for ``options`` (the API key is not in it; see :func:`serve_environment`)."""
    command = [
        options.executable,
        'serve',
        options.model,
        '--served-model-name',
        options.served_model_name,
        '--host',
        options.host,
        '--port',
        str(options.port),
        '--max-model-len',
        str(options.max_model_len),
        '--limit-mm-per-prompt',
        json.dumps(dict(options.mm_limits), separators=(',', ':')),
        '--dtype',
        options.dtype,
    ]
    if options.gpu_memory_utilization is not None:
        command += ['--gpu-memory-utilization', f'{options.gpu_memory_utilization:g}']
    if options.tensor_parallel_size is not None:
        command += ['--tensor-parallel-size', str(options.tensor_parallel_size)]
    if options.max_num_seqs is not None:
        command += ['--max-num-seqs', str(options.max_num_seqs)]
    if options.enforce_eager:
        command.append('--enforce-eager')
    command += list(options.extra_args)
    return command


def serve_environment(options: ServeOptions, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment ``vllm serve`` needs: ``environ`` (default: this process's) plus ``VLLM_API_KEY``
    from ``options.api_key_env`` and ``VLLM_CPU_KVCACHE_SPACE`` from ``options.cpu_kv_cache_gib``.

    Raises:
        ConfigError: ``api_key_env`` is set but the variable is empty or unset.
    """
    env = dict(os.environ if environ is None else environ)
    if options.api_key_env is not None:
        key = env.get(options.api_key_env, '')
        if not key:
            raise ConfigError(
                f'the API key variable {options.api_key_env} is unset or empty; export it first '
                f'(e.g. export {options.api_key_env}=$(openssl rand -hex 16))'
            )
        env['VLLM_API_KEY'] = key
    if options.cpu_kv_cache_gib is not None:
        env['VLLM_CPU_KVCACHE_SPACE'] = str(options.cpu_kv_cache_gib)
    return env


def format_serve_command(options: ServeOptions) -> str:
    """The command as a shell line, the key shown as a reference to its variable (never its value)."""
    prefix: list[str] = []
    if options.cpu_kv_cache_gib is not None:
        prefix.append(f'VLLM_CPU_KVCACHE_SPACE={options.cpu_kv_cache_gib}')
    if options.api_key_env is not None:
        prefix.append(f'VLLM_API_KEY="${options.api_key_env}"')
    return ' '.join([*prefix, shlex.join(serve_command(options))])


def _resolve_executable(executable: str) -> str:
    found = shutil.which(executable)
    if found is None:
        raise ConfigError(
            f'{executable!r} not found: install vLLM (pip install vllm; on a CPU-only machine see '
            'docs/serving.md) or pass its path with --vllm'
        )
    return found


def start_server(options: ServeOptions, **popen: Any) -> subprocess.Popen[bytes]:
    """Start ``vllm serve`` as a child process (``popen``: extra :class:`subprocess.Popen` arguments,
    e.g. ``stdout``; ``env`` is used as the base environment).

    Raises:
        ConfigError: vLLM not found, or the API key variable unset.
    """
    base_env = popen.pop('env', None)
    env = serve_environment(options, base_env)
    command = serve_command(options)
    command[0] = _resolve_executable(command[0])
    return subprocess.Popen(command, env=env, **popen)


def exec_server(options: ServeOptions) -> None:
    """Replace this process with ``vllm serve`` (what ``actial-ros serve --run`` does). Does not return.

    Raises:
        ConfigError: vLLM not found, or the API key variable unset.
    """
    env = serve_environment(options)
    command = serve_command(options)
    command[0] = _resolve_executable(command[0])
    os.execve(command[0], command, env)


def wait_for_health(
    base_url: str,
    timeout_s: float = 300.0,
    *,
    process: subprocess.Popen[bytes] | None = None,
    interval_s: float = 0.5,
) -> float:
    """Wait until ``GET <server root>/health`` answers 200; returns the seconds waited.

    Args:
        base_url: the API root (``http://host:port/v1``) or the server root.
        timeout_s: give up after this long.
        process: the server process; waiting stops early if it exits.
        interval_s: time between polls.

    Raises:
        ActialError: the server did not become healthy in time, or its process exited.
    """
    root = base_url.rstrip('/')
    if root.endswith('/v1'):
        root = root[: -len('/v1')]
    start = time.monotonic()
    while True:
        if process is not None and process.poll() is not None:
            raise ActialError(f'vllm serve exited with status {process.returncode} before {root}/health answered')
        try:
            with urllib.request.urlopen(f'{root}/health', timeout=max(interval_s, 1.0)) as response:
                if response.status == 200:
                    return time.monotonic() - start
        except (urllib.error.URLError, OSError, TimeoutError):
            pass
        if time.monotonic() - start > timeout_s:
            raise ActialError(f'{root}/health did not answer within {timeout_s:g} s')
        time.sleep(interval_s)


def options_from_args(
    model: str,
    *,
    served_model_name: str = DEFAULT_SERVED_MODEL_NAME,
    host: str = '127.0.0.1',
    port: int = 8000,
    api_key_env: str | None = None,
    max_model_len: int = 8192,
    limit_mm_per_prompt: str = 'image=2,video=0',
    dtype: str = 'auto',
    gpu_memory_utilization: float | None = None,
    tensor_parallel_size: int | None = None,
    max_num_seqs: int | None = None,
    enforce_eager: bool = False,
    cpu_kv_cache_gib: int | None = None,
    extra_args: Sequence[str] = (),
    executable: str = 'vllm',
) -> ServeOptions:
    """:class:`ServeOptions` from command-line style values (``limit_mm_per_prompt`` as text).

    Raises:
        ConfigError: an invalid value.
    """
    return ServeOptions(
        model=model,
        served_model_name=served_model_name,
        host=host,
        port=port,
        api_key_env=api_key_env or None,
        max_model_len=max_model_len,
        mm_limits=parse_mm_limit(limit_mm_per_prompt),
        dtype=dtype,
        gpu_memory_utilization=gpu_memory_utilization,
        tensor_parallel_size=tensor_parallel_size,
        max_num_seqs=max_num_seqs,
        enforce_eager=enforce_eager,
        cpu_kv_cache_gib=cpu_kv_cache_gib,
        extra_args=tuple(extra_args),
        executable=executable,
    )
