"""Backend for a model served by vLLM's OpenAI-compatible API (``/v1/chat/completions``).

Each viewpoint question is one chat completion: a system message (configurable, default
:data:`actial_ros.questions.DEFAULT_SYSTEM_PROMPT`) and one user message whose content parts are the
two frames as JPEG data URLs (downscaled to fit ``max_image_width`` x ``max_image_height``, 960x540 by
default as in the paper) followed by the question text. Decoding is greedy (``temperature`` 0);
``top_p`` is configurable (default 1.0; the paper's evaluation used 0.95, which has no effect at
temperature 0 in vLLM).

Retries and time bounds (all done here; the ``openai`` client's own retries are disabled):

* One attempt is one HTTP request limited by ``timeout_s`` (connect, read, write and pool).
* Retried: connection errors (server down, refused, reset) and HTTP 408, 409, 429 and 5xx, up to
  ``max_retries`` times, sleeping ``min(max_backoff_s, retry_backoff_s * 2**k) * uniform(0.5, 1.0)``
  before retry ``k = 0, 1, ...`` (exponential backoff with jitter).
* NOT retried: a timeout (by default; ``retry_on_timeout=True`` changes that: a stale answer is
  useless to a robot and a slow server only gets slower), 400/401/403/404/422 and other client errors.
* Waiting for a free in-flight slot (``max_in_flight``, a :class:`threading.BoundedSemaphore` held
  only while a request is on the wire, not while backing off) is limited by ``timeout_s`` too.

So one call takes at most about ``(max_retries + 1) * 2 * timeout_s + sum of the backoffs``
(:attr:`VllmBackend.worst_case_s`), then returns or raises :class:`~actial_ros.errors.BackendError`.

The API key is read once from the environment variable named by ``api_key_env`` (``'EMPTY'`` when
unset, which vLLM accepts when started without ``--api-key``). It is given only to the HTTP client:
it never appears in ``repr``, log records or error messages (messages are redacted defensively).
"""

from __future__ import annotations

import logging
import math
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

import openai

from actial_ros.answers import parse_answer
from actial_ros.backends.base import Backend, BackendAnswer, BackendHealth
from actial_ros.errors import BackendError, ConfigError
from actial_ros.frame import Frame, Pair
from actial_ros.imaging import MAX_MODEL_HEIGHT, MAX_MODEL_WIDTH, jpeg_data_url
from actial_ros.questions import DEFAULT_SYSTEM_PROMPT, OPTION_LETTERS, Question

__all__ = ['DEFAULT_API_KEY_ENV', 'DEFAULT_BASE_URL', 'VllmBackend']

_LOG = logging.getLogger(__name__)

DEFAULT_BASE_URL = 'http://127.0.0.1:8000/v1'
"""Where ``vllm serve`` listens by default."""

DEFAULT_API_KEY_ENV = 'ACTIAL_API_KEY'
"""Environment variable holding the API key (``vllm serve --api-key``)."""

_RETRY_STATUS = frozenset({408, 409, 429})
_CHAT = 'POST /chat/completions'
_MODELS = 'GET /models'
_T = TypeVar('_T')


class _RetryableError(Exception):
    """Internal: an attempt failed in a way worth retrying; ``message`` is already redacted."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class VllmBackend(Backend):
    """Answers viewpoint questions with a VLM served by vLLM (OpenAI-compatible chat completions).

    Thread-safe: one shared synchronous :class:`openai.OpenAI` client (its HTTP connection pool is
    thread-safe); at most ``max_in_flight`` requests are on the wire at once; health counters are
    guarded by a lock.

    Args:
        base_url: the server's OpenAI API root, e.g. ``http://robot-gpu:8000/v1``. A URL without a
            path gets ``/v1`` appended.
        model: the served model name (``vllm serve ... --served-model-name``); a wrong name gives 404.
        api_key_env: name of the environment variable with the API key; ``'EMPTY'`` when unset.
        timeout_s: limit of one HTTP attempt, and of the wait for an in-flight slot (seconds, > 0).
        max_retries: extra attempts after a retryable failure (>= 0).
        retry_backoff_s: base of the exponential backoff (seconds, >= 0).
        max_backoff_s: cap of one backoff sleep (seconds, >= 0).
        retry_on_timeout: also retry attempts that timed out (default False).
        max_in_flight: concurrent requests this backend sends (>= 1).
        system_prompt: the system message; '' sends none. Use the prompt the checkpoint was trained with.
        max_tokens: generation limit per reply (>= 1); thinking models need room for ``<think>``.
        temperature: sampling temperature (default 0: greedy, as in the paper's evaluation).
        top_p: nucleus sampling parameter in (0, 1] (default 1.0; the paper used 0.95).
        jpeg_quality: JPEG quality of the images sent (1 to 100).
        max_image_width: images are downscaled to fit this width (pixels).
        max_image_height: images are downscaled to fit this height (pixels).

    Raises:
        ConfigError: an invalid value (the key itself is never checked or shown).
    """

    name = 'vllm'

    def __init__(
        self,
        *,
        base_url: str = DEFAULT_BASE_URL,
        model: str,
        api_key_env: str = DEFAULT_API_KEY_ENV,
        timeout_s: float = 60.0,
        max_retries: int = 2,
        retry_backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        retry_on_timeout: bool = False,
        max_in_flight: int = 4,
        system_prompt: str = DEFAULT_SYSTEM_PROMPT,
        max_tokens: int = 1024,
        temperature: float = 0.0,
        top_p: float = 1.0,
        jpeg_quality: int = 90,
        max_image_width: int = MAX_MODEL_WIDTH,
        max_image_height: int = MAX_MODEL_HEIGHT,
    ) -> None:
        self._base_url = _normalise_base_url(base_url)
        if not isinstance(model, str) or not model.strip():
            raise ConfigError('model (the served model name) must be a non-empty string')
        if not api_key_env or not api_key_env.replace('_', '').isalnum():
            raise ConfigError(f'api_key_env must be an environment variable name, got {api_key_env!r}')
        _check_positive('timeout_s', timeout_s)
        if max_retries < 0:
            raise ConfigError(f'max_retries must be >= 0, got {max_retries}')
        for label, value in (('retry_backoff_s', retry_backoff_s), ('max_backoff_s', max_backoff_s)):
            if not (value >= 0 and math.isfinite(value)):
                raise ConfigError(f'{label} must be finite and >= 0, got {value}')
        if max_in_flight < 1:
            raise ConfigError(f'max_in_flight must be >= 1, got {max_in_flight}')
        if max_tokens < 1:
            raise ConfigError(f'max_tokens must be >= 1, got {max_tokens}')
        if not (temperature >= 0 and math.isfinite(temperature)):
            raise ConfigError(f'temperature must be finite and >= 0, got {temperature}')
        if not 0.0 < top_p <= 1.0:
            raise ConfigError(f'top_p must be in (0, 1], got {top_p}')
        if not 1 <= jpeg_quality <= 100:
            raise ConfigError(f'jpeg_quality must be in [1, 100], got {jpeg_quality}')
        if max_image_width < 1 or max_image_height < 1:
            raise ConfigError(f'max image size must be positive, got {max_image_width}x{max_image_height}')
        self._model = model.strip()
        self._api_key_env = api_key_env
        self._timeout_s = float(timeout_s)
        self._max_retries = int(max_retries)
        self._retry_backoff_s = float(retry_backoff_s)
        self._max_backoff_s = float(max_backoff_s)
        self._retry_on_timeout = bool(retry_on_timeout)
        self._max_in_flight = int(max_in_flight)
        self._system_prompt = system_prompt
        self._max_tokens = int(max_tokens)
        self._temperature = float(temperature)
        self._top_p = float(top_p)
        self._jpeg_quality = int(jpeg_quality)
        self._max_image_width = int(max_image_width)
        self._max_image_height = int(max_image_height)

        key = os.environ.get(api_key_env) or 'EMPTY'
        # The only reference to the key outside the client: used to redact messages. Never logged.
        self._secret = key if key != 'EMPTY' else ''
        self._client = openai.OpenAI(
            api_key=key,
            base_url=self._base_url,
            timeout=self._timeout_s,
            max_retries=0,
        )
        self._slots = threading.BoundedSemaphore(self._max_in_flight)
        self._lock = threading.Lock()
        self._closed = False
        self._consecutive_failures = 0
        self._last_error: str | None = None
        self._last_ok: bool | None = None
        self._requests = 0

    # ------------------------------------------------------------------ properties

    def __repr__(self) -> str:
        return (
            f'VllmBackend(base_url={self._base_url!r}, model={self._model!r}, '
            f'api_key_env={self._api_key_env!r}, max_in_flight={self._max_in_flight})'
        )

    @property
    def model(self) -> str:
        """The served model name requested."""
        return self._model

    @property
    def base_url(self) -> str:
        """The normalised API root (ends with the API path, e.g. ``/v1``)."""
        return self._base_url

    @property
    def max_in_flight(self) -> int:
        """Most requests on the wire at once."""
        return self._max_in_flight

    @property
    def last_error(self) -> str | None:
        """Redacted message of the latest failure (kept after a success), or ``None``."""
        with self._lock:
            return self._last_error

    @property
    def worst_case_s(self) -> float:
        """Upper bound in seconds on one call before it returns or raises (slot waits, attempts, backoffs)."""
        backoffs = sum(
            min(self._max_backoff_s, self._retry_backoff_s * 2.0**k) for k in range(self._max_retries)
        )
        return (self._max_retries + 1) * 2.0 * self._timeout_s + backoffs

    # ------------------------------------------------------------------ Backend interface

    def answer(self, pair: Pair, question: Question) -> BackendAnswer:
        """Ask one multiple-choice viewpoint question about ``pair`` (two images + question text).

        An unparsable reply is not an error: ``letter`` is ``None`` and ``reason`` is ``'unparsed'``.

        Raises:
            BackendError: no reply after retries, a timeout, a refused key (401), an unknown model
                name (404), another client error, or a reply without choices.
        """
        letters = ''.join(OPTION_LETTERS[: len(question.option_labels)])
        return self._complete([pair.frame_1, pair.frame_2], question.text, letters)

    def ask(self, frames: list[Frame], prompt: str) -> BackendAnswer:
        """Ask a free-form question about ``frames`` (any number of images, in order); ``letter`` is ``None``.

        Raises:
            BackendError: as :meth:`answer`.
        """
        return self._complete(list(frames), prompt, None)

    def health(self) -> BackendHealth:
        """Health from the latest request or probe; not ok after a failure until the next success."""
        with self._lock:
            if self._closed:
                return BackendHealth(False, 'closed', self._consecutive_failures)
            if self._last_ok is None:
                return BackendHealth(True, f'no request yet ({self._model} at {self._base_url})', 0)
            if self._last_ok:
                return BackendHealth(True, f'ok ({self._model} at {self._base_url})', 0)
            return BackendHealth(
                False,
                f'{self._consecutive_failures} consecutive failure(s); last: {self._last_error}',
                self._consecutive_failures,
            )

    def probe(self) -> list[str]:
        """Check that the server is up and serves :attr:`model` (``GET /v1/models``, with retries).

        Returns:
            The model ids the server lists.

        Raises:
            BackendError: server unreachable, key refused, or the model is not among those served.
        """
        page = self._with_retries(lambda: self._client.models.list(timeout=self._timeout_s), _MODELS)
        served = sorted(str(model.id) for model in page.data)
        if self._model not in served:
            message = self._redact(
                f'the server at {self._base_url} does not serve model {self._model!r}; it serves: '
                f'{", ".join(served) or "(none)"}'
            )
            self._record_failure(message)
            raise BackendError(message)
        self._record_success()
        return served

    def close(self) -> None:
        """Close the HTTP client. Idempotent; later calls raise :class:`BackendError`."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._client.close()

    # ------------------------------------------------------------------ internals

    def _messages(self, frames: Sequence[Frame], text: str) -> list[dict[str, Any]]:
        content: list[dict[str, Any]] = [
            {
                'type': 'image_url',
                'image_url': {
                    'url': jpeg_data_url(
                        frame.image,
                        quality=self._jpeg_quality,
                        max_width=self._max_image_width,
                        max_height=self._max_image_height,
                    )
                },
            }
            for frame in frames
        ]
        content.append({'type': 'text', 'text': text})
        messages: list[dict[str, Any]] = []
        if self._system_prompt:
            messages.append({'role': 'system', 'content': self._system_prompt})
        messages.append({'role': 'user', 'content': content})
        return messages

    def _complete(self, frames: Sequence[Frame], text: str, letters: str | None) -> BackendAnswer:
        start = time.perf_counter()
        messages = self._messages(frames, text)

        def request() -> Any:
            return self._client.chat.completions.create(
                model=self._model,
                messages=cast(Any, messages),  # plain dicts of the documented shape
                temperature=self._temperature,
                top_p=self._top_p,
                max_tokens=self._max_tokens,
                timeout=self._timeout_s,
            )

        response = self._with_retries(request, _CHAT)
        choices = getattr(response, 'choices', None) or []
        if not choices:
            message = f'the server at {self._base_url} replied without choices'
            self._record_failure(message)
            raise BackendError(message)
        self._record_success()
        choice = choices[0]
        raw_text = str(getattr(choice.message, 'content', None) or '')
        usage = _usage_dict(getattr(response, 'usage', None))
        latency = time.perf_counter() - start
        if letters is None:
            return BackendAnswer(self.name, raw_text, None, latency, usage=usage)
        parsed = parse_answer(raw_text, letters=letters)
        reason = None if parsed.letter is not None else 'unparsed'
        if parsed.letter is None:
            _LOG.debug('unparsed reply (finish_reason=%s, %d chars)', choice.finish_reason, len(raw_text))
        return BackendAnswer(self.name, raw_text, parsed.letter, latency, reason=reason, usage=usage)

    def _with_retries(self, call: Callable[[], _T], what: str) -> _T:
        """Run ``call`` under the in-flight bound with the documented retries; BackendError when it fails."""
        attempts = self._max_retries + 1
        last_message = ''
        for attempt in range(attempts):
            if attempt > 0:
                delay = min(self._max_backoff_s, self._retry_backoff_s * 2.0 ** (attempt - 1))
                time.sleep(delay * random.uniform(0.5, 1.0))
            try:
                return self._attempt(call, what)
            except _RetryableError as exc:
                last_message = exc.message
                _LOG.warning('%s attempt %d/%d failed: %s', what, attempt + 1, attempts, last_message)
            except BackendError as exc:
                self._record_failure(str(exc))
                raise
        message = f'{what} failed after {attempts} attempt(s): {last_message}'
        self._record_failure(message)
        raise BackendError(message)

    def _attempt(self, call: Callable[[], _T], what: str) -> _T:
        """One HTTP attempt holding an in-flight slot; raises _RetryableError or BackendError."""
        with self._lock:
            if self._closed:
                raise BackendError('the vllm backend is closed')
        if not self._slots.acquire(timeout=self._timeout_s):
            raise BackendError(
                f'no in-flight slot free within {self._timeout_s:g} s ({self._max_in_flight} requests busy)'
            )
        try:
            with self._lock:
                self._requests += 1
            return call()
        except openai.APITimeoutError:
            message = f'{what}: no reply from {self._base_url} within {self._timeout_s:g} s (timeout)'
            if self._retry_on_timeout:
                raise _RetryableError(message) from None
            raise BackendError(message) from None
        except openai.APIConnectionError as exc:
            raise _RetryableError(self._redact(f'cannot reach {self._base_url} ({_cause(exc)})')) from None
        except openai.APIStatusError as exc:
            raise self._status_error(exc, what) from None
        except openai.OpenAIError as exc:
            # Response validation and other client-side failures: not worth retrying.
            raise BackendError(self._redact(f'{what}: {type(exc).__name__}: {exc}')) from None
        finally:
            self._slots.release()

    def _status_error(self, exc: openai.APIStatusError, what: str) -> Exception:
        status = exc.status_code
        detail = self._redact(_server_message(exc))
        if status == 401:
            return BackendError(
                f'{what}: the server at {self._base_url} refused the API key (401). Set the key the server '
                f'was started with (vllm serve --api-key) in the environment variable {self._api_key_env}.'
            )
        if status == 404 and what == _MODELS:
            return BackendError(
                f'{what}: not found (404) at {self._base_url}: the base URL is probably wrong (it must end '
                f'with the API path, such as /v1). Server said: {detail}'
            )
        if status == 404:
            return BackendError(
                f'{what}: not found (404) at {self._base_url}: the model name {self._model!r} is probably '
                f'wrong (it must match vllm serve --served-model-name; probe() lists the served names), or '
                f'the base URL lacks the API path such as /v1. Server said: {detail}'
            )
        message = f'{what}: HTTP {status} from {self._base_url}: {detail}'
        if status in _RETRY_STATUS or status >= 500:
            return _RetryableError(message)
        return BackendError(message)

    def _redact(self, text: str) -> str:
        if self._secret:
            text = text.replace(self._secret, '***')
        return text if len(text) <= 500 else text[:497] + '...'

    def _record_success(self) -> None:
        with self._lock:
            self._consecutive_failures = 0
            self._last_ok = True

    def _record_failure(self, message: str) -> None:
        with self._lock:
            self._consecutive_failures += 1
            self._last_ok = False
            self._last_error = message


def _normalise_base_url(base_url: str) -> str:
    if not isinstance(base_url, str) or not base_url.strip():
        raise ConfigError('base_url must be a non-empty URL such as http://127.0.0.1:8000/v1')
    url = base_url.strip().rstrip('/')
    parts = urlsplit(url)
    if parts.scheme not in ('http', 'https') or not parts.netloc:
        raise ConfigError(f'base_url must be an http(s) URL such as http://127.0.0.1:8000/v1, got {url!r}')
    if parts.username or parts.password:
        raise ConfigError('base_url must not contain credentials; put the key in the api_key_env variable')
    if parts.path in ('', '/'):
        url += '/v1'
    return url


def _check_positive(label: str, value: float) -> None:
    if not (value > 0 and math.isfinite(value)):
        raise ConfigError(f'{label} must be finite and > 0, got {value}')


def _cause(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    if cause is None:
        return type(exc).__name__
    text = ' '.join(str(cause).split())
    return f'{type(cause).__name__}: {text}' if text else type(cause).__name__


def _server_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        for key in ('message', 'error', 'detail'):
            value = body.get(key)
            if isinstance(value, dict):
                value = value.get('message')
            if isinstance(value, str) and value:
                return ' '.join(value.split())
    return ' '.join(str(exc.message).split())


def _usage_dict(usage: object) -> dict[str, int]:
    if usage is None:
        return {}
    result: dict[str, int] = {}
    for key in ('prompt_tokens', 'completion_tokens', 'total_tokens'):
        value = getattr(usage, key, None)
        if isinstance(value, int):
            result[key] = value
    return result
