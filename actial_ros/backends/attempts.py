"""The vLLM backend's attempts: one HTTP attempt under its deadline, what is retried, and the retry loop.

Retries, failover and time bounds are all done here and in :mod:`actial_ros.backends.endpoint_pool` (the
``openai`` client's own retries are disabled):

* One attempt is one HTTP request to one endpoint (:meth:`AttemptRunner.attempt`), limited by ``timeout_s``
  (connect, read, write, pool). The HTTP client was seen to overrun that limit (openai 3.52 on a loaded
  machine waited for a 3 s reply under a 0.3 s timeout), so the backend also enforces it itself: an attempt
  still waiting after ``2 * timeout_s`` is abandoned as a timeout (the request finishes in the background,
  :class:`BackgroundAttempt`, and keeps its in-flight slot until then), and a reply that comes back later
  than that is discarded.
* Retryable (:class:`RetryableError`): connection errors (server down, refused, reset) and HTTP 408, 409, 429
  and 5xx. Up to ``max_retries`` further attempts follow (:meth:`AttemptRunner.call`), on another endpoint
  when one is available; the failed endpoint cools down first (the pool's exponential backoff with jitter).
* NOT retried (:class:`AttemptError`): a timeout (by default; ``retry_on_timeout=True`` changes that: a stale
  answer is useless to a robot and a slow server only gets slower), 400/401/403/404/422 and other client
  errors. A refused key (401, 403) or an unknown model or path (404) also cools the endpoint down.

So one call takes at most about ``(max_retries + 1) * 2 * timeout_s + sum of the backoffs``
(:attr:`RetryPolicy.worst_case_s <actial_ros.backends.retry_policy.RetryPolicy.worst_case_s>`), then returns
or raises :class:`~actial_ros.errors.BackendError`.

Every message is redacted: the API key never appears in one (:meth:`AttemptRunner.redact`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar, cast

import openai

from actial_ros.backends.endpoint_pool import Endpoint, EndpointPool
from actial_ros.backends.retry_policy import ABANDON_FACTOR, RetryPolicy
from actial_ros.errors import BackendError

__all__ = ['CHAT', 'MODELS', 'AttemptError', 'AttemptRunner', 'BackgroundAttempt', 'RetryableError']

# The backend's one logger (its parts log under the name users configure: actial_ros.backends.vllm).
_LOG = logging.getLogger('actial_ros.backends.vllm')

CHAT = 'POST /chat/completions'
"""What a chat completion attempt is called in messages."""
MODELS = 'GET /models'
"""What a model-list attempt (a health probe) is called in messages."""

_RETRY_STATUS = frozenset({408, 409, 429})
_ENDPOINT_STATUS = frozenset({401, 403, 404})  # the endpoint is misconfigured for us: cool it down
_T = TypeVar('_T')


class RetryableError(Exception):
    """An attempt failed in a way worth retrying (internal to the backend).

    Attributes:
        message: the failure, already redacted.
        unreachable: a connection error (nothing answered).
    """

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.unreachable = unreachable


class AttemptError(BackendError):
    """A non-retryable failure of one attempt; its message is already redacted.

    Attributes:
        cool_down: whether to cool the endpoint down (it is misconfigured for us).
    """

    def __init__(self, message: str, *, cool_down: bool) -> None:
        super().__init__(message)
        self.cool_down = cool_down


class BackgroundAttempt:
    """One HTTP request run on a daemon thread, so that the caller's wait is bounded whatever the client does.

    :meth:`wait` gives up after a time; :meth:`on_end` registers what to do when an abandoned request ends.

    Args:
        call: the request; its result goes to :attr:`result`, what it raises to :attr:`error`.
    """

    def __init__(self, call: Callable[[], object]) -> None:
        self.result: object = None
        self.error: BaseException | None = None
        self._call = call
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._on_end: Callable[[], None] | None = None
        threading.Thread(target=self._run, name='actial-vllm-attempt', daemon=True).start()

    def _run(self) -> None:
        try:
            self.result = self._call()
        except BaseException as exc:  # handed to the waiting caller
            self.error = exc
        finally:
            with self._lock:
                self._done.set()
                on_end = self._on_end
            if on_end is not None:
                on_end()

    def wait(self, timeout_s: float) -> bool:
        """True when the request ended within ``timeout_s`` seconds."""
        return self._done.wait(timeout_s)

    def on_end(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` when the request ends (at once when it already has)."""
        with self._lock:
            if not self._done.is_set():
                self._on_end = callback
                return
        callback()


class AttemptRunner:
    """Runs requests on a pool's endpoints with the documented deadline, classification and retries.

    Args:
        pool: the endpoints and in-flight slots.
        policy: ``timeout_s``, ``max_retries`` and ``retry_on_timeout``.
        model: the served model name (named in a 404's message).
        api_key_env: the key's environment variable (named in a 401's message).
        secret: the API key to redact from every message ('' when there is none).
    """

    def __init__(self, *, pool: EndpointPool, policy: RetryPolicy, model: str, api_key_env: str, secret: str) -> None:
        self._pool = pool
        self._policy = policy
        self._model = model
        self._api_key_env = api_key_env
        self._secret = secret

    def call(self, request: Callable[[openai.OpenAI], _T], what: str) -> tuple[_T, str, float]:
        """Run ``request`` with the documented retries and failover (each attempt in its own in-flight slot).

        Args:
            request: one attempt, given the endpoint's request client; may raise :class:`AttemptError`.
            what: the request's name in messages (:data:`CHAT`).

        Returns:
            The result, the URL of the endpoint that produced it and the seconds of that attempt.

        Raises:
            BackendError: no slot came free, every attempt failed, or one failed in a way not worth retrying.
        """
        attempts = self._policy.attempts
        last_message = ''
        for attempt in range(attempts):
            endpoint = self._pool.acquire()
            started = time.perf_counter()
            try:
                result = self.attempt(endpoint, request, what)
            except RetryableError as exc:
                last_message = exc.message
                self._pool.release(endpoint, exc.message, cool_down=True, clearable=exc.unreachable)
                _LOG.warning('%s attempt %d/%d failed: %s', what, attempt + 1, attempts, last_message)
                continue
            except AttemptError as exc:
                self._pool.release(endpoint, str(exc), cool_down=exc.cool_down)
                raise BackendError(str(exc)) from None
            except BaseException as exc:  # anything else (a bug, KeyboardInterrupt): the slot is still given back
                self._pool.release(endpoint, self.redact(f'{what}: {type(exc).__name__}: {exc}'))
                raise
            elapsed = time.perf_counter() - started
            self._pool.release(endpoint, None)
            return result, endpoint.url, elapsed
        raise BackendError(f'{what} failed after {attempts} attempt(s): {last_message}')

    def attempt(
        self, endpoint: Endpoint, request: Callable[[openai.OpenAI], _T], what: str, *, probe: bool = False
    ) -> _T:
        """One HTTP attempt on ``endpoint`` (whose slot the caller holds, unless ``probe``).

        The request runs on its own daemon thread and the caller waits at most ``2 * timeout_s`` (one limit
        for sending, one for the reply): the HTTP client limits each read, but on a loaded machine it was seen
        to return a reply long after its read timeout. An attempt still running then is abandoned as a
        timeout; it keeps its in-flight slot (``max_in_flight`` stays a bound on requests on the wire) until
        its thread ends. The caller never gets an answer that late.

        Args:
            endpoint: where the request goes; ``request`` gets its request client.
            request: the request.
            what: the request's name in messages (:data:`CHAT`, :data:`MODELS`).
            probe: a health probe: limited by the probe client's timeout (1 to 5 s), and holds no slot.

        Raises:
            RetryableError: a connection error, HTTP 408, 409, 429 or 5xx, or a timeout with
                ``retry_on_timeout``.
            AttemptError: a timeout (by default), another HTTP status (401: the key; 404: the model or the
                base URL), another client-side failure, or what ``request`` raised as such.
        """
        limit = float(endpoint.probe_client.timeout) if probe else self._policy.timeout_s  # type: ignore[arg-type]
        deadline_s = ABANDON_FACTOR * limit
        started = time.monotonic()
        attempt = BackgroundAttempt(lambda: request(endpoint.client))
        if not attempt.wait(deadline_s):
            if not probe:  # the abandoned request keeps its slot until it ends
                self._pool.keep_slot(endpoint)
                attempt.on_end(lambda: self._pool.free_kept_slot(endpoint))
            raise self._timeout_error(
                f'{what}: no reply from {endpoint.url} within {limit:g} s (timeout; still waiting after '
                f'{deadline_s:g} s, abandoned)'
            )
        error = attempt.error
        if isinstance(error, openai.APITimeoutError):
            raise self._timeout_error(f'{what}: no reply from {endpoint.url} within {limit:g} s (timeout)') from None
        if isinstance(error, openai.APIConnectionError):
            raise RetryableError(
                self.redact(f'cannot reach {endpoint.url} ({_cause(error)})'), unreachable=True
            ) from None
        if isinstance(error, openai.APIStatusError):
            raise self._status_error(error, what, endpoint.url) from None
        if isinstance(error, openai.OpenAIError):
            # Response validation and other client-side failures: not worth retrying.
            raise AttemptError(self.redact(f'{what}: {type(error).__name__}: {error}'), cool_down=False) from None
        if error is not None:
            raise error
        elapsed = time.monotonic() - started
        if elapsed > deadline_s:
            raise self._timeout_error(
                f'{what}: no reply from {endpoint.url} within {limit:g} s (timeout; a reply that came after '
                f'{elapsed:.1f} s was discarded)'
            )
        return cast(_T, attempt.result)

    def redact(self, text: str) -> str:
        """``text`` without the API key, and at most 500 characters."""
        if self._secret:
            text = text.replace(self._secret, '***')
        return text if len(text) <= 500 else text[:497] + '...'

    def _timeout_error(self, message: str) -> Exception:
        if self._policy.retry_on_timeout:
            return RetryableError(message)
        return AttemptError(message, cool_down=False)

    def _status_error(self, exc: openai.APIStatusError, what: str, url: str) -> Exception:
        status = exc.status_code
        detail = self.redact(_server_message(exc))
        cool = status in _ENDPOINT_STATUS
        if status == 401:
            return AttemptError(
                f'{what}: the server at {url} refused the API key (401). Set the key the server '
                f'was started with (vllm serve --api-key) in the environment variable {self._api_key_env}.',
                cool_down=True,
            )
        if status == 404 and what == MODELS:
            return AttemptError(
                f'{what}: not found (404) at {url}: the base URL is probably wrong (it must end '
                f'with the API path, such as /v1). Server said: {detail}',
                cool_down=True,
            )
        if status == 404:
            return AttemptError(
                f'{what}: not found (404) at {url}: the model name {self._model!r} is probably '
                f'wrong (it must match vllm serve --served-model-name; probe() lists the served names), or '
                f'the base URL lacks the API path such as /v1. Server said: {detail}',
                cool_down=True,
            )
        message = f'{what}: HTTP {status} from {url}: {detail}'
        if status in _RETRY_STATUS or status >= 500:
            return RetryableError(message)
        return AttemptError(message, cool_down=cool)


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
