"""Backend for a model served by vLLM's OpenAI-compatible API (``/v1/chat/completions``), on one or
several endpoints.

Each viewpoint question is one chat completion: a system message (configurable, default
:data:`actial_ros.questions.DEFAULT_SYSTEM_PROMPT`) and one user message whose content parts are the
two frames as JPEG data URLs (downscaled to fit ``max_image_width`` x ``max_image_height``, 960x540 by
default as in the paper) followed by the question text. Decoding is greedy (``temperature`` 0);
``top_p`` is configurable (default 1.0; the paper's evaluation used 0.95, which has no effect at
temperature 0 in vLLM).

Several endpoints (``base_url`` as a list, or one string with comma-separated URLs) serve the same
model: each request goes to the endpoint with the fewest requests in flight that is not cooling down
(ties: round robin), and a request that fails in a retryable way moves on to another endpoint at once.

Retries, failover and time bounds (all done here; the ``openai`` client's own retries are disabled):

* One attempt is one HTTP request to one endpoint, limited by ``timeout_s`` (connect, read, write, pool).
  The HTTP client was seen to overrun that limit (openai 3.52 on a loaded machine waited for a 3 s reply
  under a 0.3 s timeout), so the backend also enforces it itself: an attempt still waiting after
  ``2 * timeout_s`` is abandoned as a timeout (the request finishes in the background and keeps its
  in-flight slot until then), and a reply that comes back later than that is discarded.
* Retryable: connection errors (server down, refused, reset) and HTTP 408, 409, 429 and 5xx. Up to
  ``max_retries`` further attempts follow, on another endpoint when one is available.
* An endpoint whose attempt failed (retryable failure, refused key, unknown model) cools down for
  ``min(max_backoff_s, retry_backoff_s * 2**(n - 1)) * uniform(0.5, 1.0)`` seconds, ``n`` being its
  failed attempts in a row (across calls): exponential backoff with jitter, per endpoint. While every
  endpoint cools down, callers wait (without holding an in-flight slot), so a dead server is not
  hammered by every worker; a wait longer than ``timeout_s`` ends in an attempt on the endpoint that
  has cooled longest. With one endpoint this is the classic retry with exponential backoff.
* NOT retried: a timeout (by default; ``retry_on_timeout=True`` changes that: a stale answer is
  useless to a robot and a slow server only gets slower), 400/401/403/404/422 and other client errors.
* At most ``max_in_flight`` requests are on the wire at once (all endpoints together); waiting for a
  free slot is limited by ``timeout_s`` too.

So one call takes at most about ``(max_retries + 1) * 2 * timeout_s + sum of the backoffs``
(:attr:`VllmBackend.worst_case_s`), then returns or raises :class:`~actial_ros.errors.BackendError`.

Health: with ``probe_interval_s > 0`` a daemon thread probes every endpoint (``GET /v1/models``) at once
and then every ``probe_interval_s`` seconds. It reports a wrong model name or a refused key at start-up
(logged as an error and shown by :meth:`VllmBackend.health`), notices a dead endpoint while no request
is running, and brings an endpoint that came back into service without waiting for its cool-down.
:meth:`VllmBackend.health` is ok while at least one endpoint is; its message lists the endpoints that
are not; :meth:`VllmBackend.endpoints` gives per-endpoint figures.

The API key is read once from the environment variable named by ``api_key_env`` (``'EMPTY'`` when
unset, which vLLM accepts when started without ``--api-key``). It is given only to the HTTP clients:
it never appears in ``repr``, log records or error messages (messages are redacted defensively).
"""

from __future__ import annotations

import logging
import math
import os
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

import openai

from actial_ros.answers import parse_answer
from actial_ros.backends.base import Backend, BackendAnswer, BackendHealth
from actial_ros.backends.defaults import DEFAULT_API_KEY_ENV, DEFAULT_BASE_URL
from actial_ros.errors import BackendError, ConfigError
from actial_ros.frame import Frame, Pair
from actial_ros.imaging import MAX_MODEL_HEIGHT, MAX_MODEL_WIDTH, jpeg_data_url
from actial_ros.questions import DEFAULT_SYSTEM_PROMPT, OPTION_LETTERS, Question

__all__ = [
    'DEFAULT_API_KEY_ENV',
    'DEFAULT_BASE_URL',
    'EndpointHealth',
    'RequestTiming',
    'VllmBackend',
    'parse_base_urls',
]

_LOG = logging.getLogger(__name__)


_RETRY_STATUS = frozenset({408, 409, 429})
_ENDPOINT_STATUS = frozenset({401, 403, 404})  # the endpoint is misconfigured for us: cool it down
_CHAT = 'POST /chat/completions'
_MODELS = 'GET /models'
_TIMINGS_KEPT = 4096
_T = TypeVar('_T')


@dataclass(frozen=True, slots=True)
class EndpointHealth:
    """One endpoint as :meth:`VllmBackend.endpoints` reports it.

    Attributes:
        url: the normalised API root.
        ok: ``None`` before any request or probe, else whether the latest one succeeded.
        in_flight: requests on the wire to it now.
        requests: attempts sent to it (probes not included).
        successes: attempts that got a usable reply.
        failures: failed attempts and probes.
        consecutive_failures: failed attempts and probes since its last success.
        cooldown_s: seconds before it is tried again (0: available now).
        last_error: redacted message of its latest failure, or ``None``.
    """

    url: str
    ok: bool | None
    in_flight: int
    requests: int
    successes: int
    failures: int
    consecutive_failures: int
    cooldown_s: float
    last_error: str | None


@dataclass(frozen=True, slots=True)
class RequestTiming:
    """Where the time of one successful call went (seconds, wall clock).

    Attributes:
        endpoint: the endpoint that answered.
        prepare_s: node side, before sending: JPEG encoding and building the request.
        server_s: the successful HTTP round trip (network + the server's queueing and generation).
        wait_s: everything else before the reply: waiting for a slot or a cooled-down endpoint, failed
            attempts.
        parse_s: node side, after the reply: reading and parsing it.
        total_s: the whole call.
        prompt_tokens, completion_tokens: as reported by the server (0 when it does not).
    """

    endpoint: str
    prepare_s: float
    server_s: float
    wait_s: float
    parse_s: float
    total_s: float
    prompt_tokens: int
    completion_tokens: int

    @property
    def node_overhead_s(self) -> float:
        """Node-side time: :attr:`prepare_s` + :attr:`parse_s`."""
        return self.prepare_s + self.parse_s


class _RetryableError(Exception):
    """Internal: an attempt failed in a way worth retrying; ``message`` is already redacted."""

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.unreachable = unreachable  # a connection error (nothing answered)


class _AttemptError(BackendError):
    """Internal: a non-retryable failure of one attempt; ``cool_down`` says whether to cool the endpoint."""

    def __init__(self, message: str, *, cool_down: bool) -> None:
        super().__init__(message)
        self.cool_down = cool_down


class _BackgroundAttempt:
    """One HTTP request run on a daemon thread, so that the caller's wait is bounded whatever the client does.

    :meth:`wait` gives up after a time; :meth:`on_end` registers what to do when an abandoned request ends.
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


class _Endpoint:
    """Mutable state of one endpoint; guarded by the backend's condition variable."""

    __slots__ = (
        'clearable',
        'client',
        'consecutive_failures',
        'down_until',
        'failures',
        'in_flight',
        'last_error',
        'last_ok',
        'last_pick',
        'last_success',
        'probe_client',
        'requests',
        'successes',
        'url',
    )

    def __init__(self, url: str, client: openai.OpenAI, probe_client: openai.OpenAI) -> None:
        self.url = url
        self.client = client
        self.probe_client = probe_client
        self.in_flight = 0
        self.requests = 0
        self.successes = 0
        self.failures = 0
        self.consecutive_failures = 0
        self.down_until = 0.0
        self.last_pick = 0
        self.last_ok: bool | None = None
        self.last_error: str | None = None
        self.last_success = -math.inf
        # Whether a successful probe may declare the endpoint healthy again: its latest failure was a
        # connection error or a probe's. A chat request that failed on a reachable server (HTTP 5xx, a
        # timeout) is left to the next request, so that health does not flap.
        self.clearable = False


class VllmBackend(Backend):
    """Answers viewpoint questions with a VLM served by vLLM (OpenAI-compatible chat completions).

    Thread-safe: one synchronous :class:`openai.OpenAI` client per endpoint (their HTTP connection pools
    are thread-safe); at most ``max_in_flight`` requests are on the wire at once; all bookkeeping is
    guarded by one condition variable.

    Args:
        base_url: the server's OpenAI API root, e.g. ``http://robot-gpu:8000/v1``, or several (a list, or
            one string with comma- or space-separated URLs) serving the same model. A URL without a path
            gets ``/v1`` appended.
        model: the served model name (``vllm serve ... --served-model-name``); a wrong name gives 404.
        api_key_env: name of the environment variable with the API key; ``'EMPTY'`` when unset.
        timeout_s: limit of one HTTP attempt, and of the wait for an in-flight slot (seconds, > 0).
        max_retries: extra attempts after a retryable failure (>= 0).
        retry_backoff_s: base of the exponential backoff (seconds, >= 0).
        max_backoff_s: cap of one backoff (cool-down) (seconds, >= 0).
        retry_on_timeout: also retry attempts that timed out (default False).
        max_in_flight: concurrent requests this backend sends, all endpoints together (>= 1).
        system_prompt: the system message; '' sends none. Use the prompt the checkpoint was trained with.
        max_tokens: generation limit per reply (>= 1); thinking models need room for ``<think>``.
        temperature: sampling temperature (default 0: greedy, as in the paper's evaluation).
        top_p: nucleus sampling parameter in (0, 1] (default 1.0; the paper used 0.95).
        jpeg_quality: JPEG quality of the images sent (1 to 100).
        max_image_width: images are downscaled to fit this width (pixels).
        max_image_height: images are downscaled to fit this height (pixels).
        probe_interval_s: period of the background health probe (seconds); 0 (default) starts none.

    Raises:
        ConfigError: an invalid value (the key itself is never checked or shown).
    """

    name = 'vllm'
    streams = True

    def __init__(
        self,
        *,
        base_url: str | Sequence[str] = DEFAULT_BASE_URL,
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
        probe_interval_s: float = 0.0,
    ) -> None:
        urls = parse_base_urls(base_url)
        if not isinstance(model, str) or not model.strip():
            raise ConfigError('model (the served model name) must be a non-empty string')
        if not api_key_env or not api_key_env.replace('_', '').isalnum():
            raise ConfigError(f'api_key_env must be an environment variable name, got {api_key_env!r}')
        _check_positive('timeout_s', timeout_s)
        if max_retries < 0:
            raise ConfigError(f'max_retries must be >= 0, got {max_retries}')
        for label, value in (
            ('retry_backoff_s', retry_backoff_s),
            ('max_backoff_s', max_backoff_s),
            ('probe_interval_s', probe_interval_s),
        ):
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
        self._probe_interval_s = float(probe_interval_s)

        key = os.environ.get(api_key_env) or 'EMPTY'
        # The only reference to the key outside the clients: used to redact messages. Never logged.
        self._secret = key if key != 'EMPTY' else ''
        # One client for requests (timeout_s) and one for health probes (1 to 5 s) per endpoint.
        probe_timeout_s = min(5.0, max(1.0, self._timeout_s))
        self._endpoints = [
            _Endpoint(
                url,
                openai.OpenAI(api_key=key, base_url=url, timeout=self._timeout_s, max_retries=0),
                openai.OpenAI(api_key=key, base_url=url, timeout=probe_timeout_s, max_retries=0),
            )
            for url in urls
        ]
        self._cond = threading.Condition()
        self._closed = False
        self._in_flight = 0
        self._picks = 0
        self._consecutive_failures = 0
        self._last_error: str | None = None
        self._last_ok: bool | None = None
        self._timings: deque[RequestTiming] = deque(maxlen=_TIMINGS_KEPT)
        self._reported: dict[str, str] = {}
        self._stop_probing = threading.Event()
        self._prober: threading.Thread | None = None
        if self._probe_interval_s > 0:
            self._prober = threading.Thread(target=self._probe_loop, name='actial-vllm-probe', daemon=True)
            self._prober.start()

    # ------------------------------------------------------------------ properties

    def __repr__(self) -> str:
        urls = [endpoint.url for endpoint in self._endpoints]
        where = f'base_url={urls[0]!r}' if len(urls) == 1 else f'base_urls={urls!r}'
        return (
            f'VllmBackend({where}, model={self._model!r}, '
            f'api_key_env={self._api_key_env!r}, max_in_flight={self._max_in_flight})'
        )

    @property
    def model(self) -> str:
        """The served model name requested."""
        return self._model

    @property
    def base_url(self) -> str:
        """The first endpoint's normalised API root (ends with the API path, e.g. ``/v1``)."""
        return self._endpoints[0].url

    @property
    def base_urls(self) -> tuple[str, ...]:
        """Every endpoint's normalised API root, in configuration order."""
        return tuple(endpoint.url for endpoint in self._endpoints)

    @property
    def max_in_flight(self) -> int:
        """Most requests on the wire at once."""
        return self._max_in_flight

    @property
    def last_error(self) -> str | None:
        """Redacted message of the latest failed call (kept after a success), or ``None``."""
        with self._cond:
            return self._last_error

    @property
    def worst_case_s(self) -> float:
        """Upper bound in seconds on one call before it returns or raises (slot waits, attempts, backoffs)."""
        backoffs = sum(min(self._max_backoff_s, self._retry_backoff_s * 2.0**k) for k in range(self._max_retries))
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

    def ask(self, frames: list[Frame], prompt: str, on_text: Callable[[str], None] | None = None) -> BackendAnswer:
        """Ask a free-form question about ``frames`` (any number of images, in order); ``letter`` is ``None``.

        Args:
            on_text: called with the reply so far as the server streams it (``stream: true``, server-sent
                events); ``None``: one non-streamed request.

        Raises:
            BackendError: as :meth:`answer`.
        """
        return self._complete(list(frames), prompt, None, on_text=on_text)

    def health(self) -> BackendHealth:
        """Ok while at least one endpoint is (or none was tried yet); the message names the others.

        ``consecutive_failures`` counts failed calls since the last successful one.
        """
        with self._cond:
            failures = self._consecutive_failures
            if self._closed:
                return BackendHealth(False, 'closed', failures)
            states = [
                (endpoint.url, endpoint.last_ok, endpoint.consecutive_failures, endpoint.last_error)
                for endpoint in self._endpoints
            ]
            last_error = self._last_error
        up = [state for state in states if state[1] is not False]
        down = [state for state in states if state[1] is False]
        if len(states) == 1:
            url, ok, _, error = states[0]
            if ok is None:
                return BackendHealth(True, f'no request yet ({self._model} at {url})', failures)
            if ok:
                return BackendHealth(True, f'ok ({self._model} at {url})', failures)
            return BackendHealth(
                False, f'{max(failures, 1)} consecutive failure(s); last: {error or last_error}', max(failures, 1)
            )
        problems = '; '.join(f'{url} down ({count} failure(s): {error})' for url, _, count, error in down)
        summary = f'{len(up)}/{len(states)} endpoints up ({self._model})'
        if not up:
            return BackendHealth(False, f'{summary}; {problems}', max(failures, 1))
        return BackendHealth(True, f'{summary}; {problems}' if problems else summary, failures)

    def endpoints(self) -> list[EndpointHealth]:
        """Per-endpoint figures, in configuration order."""
        now = time.monotonic()
        with self._cond:
            return [
                EndpointHealth(
                    url=endpoint.url,
                    ok=endpoint.last_ok,
                    in_flight=endpoint.in_flight,
                    requests=endpoint.requests,
                    successes=endpoint.successes,
                    failures=endpoint.failures,
                    consecutive_failures=endpoint.consecutive_failures,
                    cooldown_s=max(0.0, endpoint.down_until - now),
                    last_error=endpoint.last_error,
                )
                for endpoint in self._endpoints
            ]

    def recent_timings(self) -> list[RequestTiming]:
        """Timings of the latest successful calls (at most 4096, oldest first)."""
        with self._cond:
            return list(self._timings)

    def probe(self) -> list[str]:
        """Check every endpoint once (``GET /v1/models``, no retries): is it up and does it serve :attr:`model`?

        Updates each endpoint's health (a probe success also ends its cool-down).

        Returns:
            The model ids served by the first endpoint that serves :attr:`model`.

        Raises:
            BackendError: no endpoint is reachable, accepts the key and serves the model; the message
                gives each endpoint's reason.
        """
        served: list[str] | None = None
        problems: list[str] = []
        for endpoint in list(self._endpoints):
            try:
                models = self._probe_endpoint(endpoint)
            except BackendError as exc:
                problems.append(str(exc))
                continue
            if served is None:
                served = models
        if served is None:
            message = problems[0] if len(problems) == 1 else 'no endpoint is usable: ' + ' | '.join(problems)
            self._note_call(False, message)
            raise BackendError(message)
        self._note_call(True, None)
        return served

    def close(self) -> None:
        """Stop the probe thread and close the HTTP clients. Idempotent; later calls raise :class:`BackendError`."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        self._stop_probing.set()
        if self._prober is not None and self._prober is not threading.current_thread():
            self._prober.join(timeout=6.0)  # a probe attempt lasts at most 5 s
        for endpoint in self._endpoints:
            endpoint.client.close()
            endpoint.probe_client.close()

    # ------------------------------------------------------------------ requests

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

    def _complete(
        self,
        frames: Sequence[Frame],
        text: str,
        letters: str | None,
        *,
        on_text: Callable[[str], None] | None = None,
    ) -> BackendAnswer:
        start = time.perf_counter()
        messages = self._messages(frames, text)
        prepared = time.perf_counter()

        def request(client: openai.OpenAI) -> Any:
            if on_text is not None:
                return _streamed(client, on_text)
            response = client.chat.completions.create(
                model=self._model,
                messages=cast(Any, messages),  # plain dicts of the documented shape
                temperature=self._temperature,
                top_p=self._top_p,
                max_tokens=self._max_tokens,
            )
            if not getattr(response, 'choices', None):
                raise _AttemptError(f'{_CHAT}: the server replied without choices', cool_down=False)
            return response

        def _streamed(client: openai.OpenAI, report: Callable[[str], None]) -> Any:
            """The same request streamed: the reply so far goes to ``report`` chunk by chunk; returns an
            object shaped like a non-streamed response (``choices[0].message.content``, ``usage``)."""
            stream = client.chat.completions.create(
                model=self._model,
                messages=cast(Any, messages),
                temperature=self._temperature,
                top_p=self._top_p,
                max_tokens=self._max_tokens,
                stream=True,
                stream_options={'include_usage': True},
            )
            parts: list[str] = []
            usage: Any = None
            finish: Any = None
            for chunk in stream:
                usage = getattr(chunk, 'usage', None) or usage
                for choice in getattr(chunk, 'choices', None) or []:
                    piece = getattr(choice.delta, 'content', None)
                    finish = getattr(choice, 'finish_reason', None) or finish
                    if piece:
                        parts.append(piece)
                        try:
                            report(''.join(parts))
                        except Exception:  # a listener's failure must not fail the request
                            _LOG.exception('on_text callback failed')
            message = SimpleNamespace(content=''.join(parts))
            return SimpleNamespace(choices=[SimpleNamespace(message=message, finish_reason=finish)], usage=usage)

        response, endpoint, server_s = self._call(request, _CHAT)
        replied = time.perf_counter()
        choice = response.choices[0]
        raw_text = str(getattr(choice.message, 'content', None) or '')
        usage = _usage_dict(getattr(response, 'usage', None))
        letter: str | None = None
        reason: str | None = None
        if letters is not None:
            letter = parse_answer(raw_text, letters=letters).letter
            if letter is None:
                reason = 'unparsed'
                _LOG.debug('unparsed reply (finish_reason=%s, %d chars)', choice.finish_reason, len(raw_text))
        end = time.perf_counter()
        timing = RequestTiming(
            endpoint=endpoint,
            prepare_s=prepared - start,
            server_s=server_s,
            wait_s=max(0.0, replied - prepared - server_s),
            parse_s=end - replied,
            total_s=end - start,
            prompt_tokens=usage.get('prompt_tokens', 0),
            completion_tokens=usage.get('completion_tokens', 0),
        )
        with self._cond:
            self._timings.append(timing)
        return BackendAnswer(self.name, raw_text, letter, end - start, reason=reason, usage=usage)

    def _call(self, request: Callable[[openai.OpenAI], _T], what: str) -> tuple[_T, str, float]:
        """Run ``request`` with the documented retries and failover.

        Returns:
            The result, the URL of the endpoint that produced it and the seconds of that attempt.

        Raises:
            BackendError: every attempt failed, or one failed in a way not worth retrying.
        """
        attempts = self._max_retries + 1
        last_message = ''
        for attempt in range(attempts):
            try:
                endpoint = self._acquire()
            except BackendError as exc:
                self._note_call(False, str(exc))
                raise
            started = time.perf_counter()
            try:
                result = self._attempt(endpoint, request, what)
            except _RetryableError as exc:
                last_message = exc.message
                self._release(endpoint, exc.message, cool_down=True, clearable=exc.unreachable)
                _LOG.warning('%s attempt %d/%d failed: %s', what, attempt + 1, attempts, last_message)
                continue
            except _AttemptError as exc:
                self._release(endpoint, str(exc), cool_down=exc.cool_down)
                self._note_call(False, str(exc))
                raise BackendError(str(exc)) from None
            elapsed = time.perf_counter() - started
            self._release(endpoint, None)
            self._note_call(True, None)
            return result, endpoint.url, elapsed
        message = f'{what} failed after {attempts} attempt(s): {last_message}'
        self._note_call(False, message)
        raise BackendError(message)

    def _acquire(self) -> _Endpoint:
        """Wait (at most ``timeout_s``) for an in-flight slot and an endpoint that is not cooling down.

        When the wait runs out with a slot free but every endpoint cooling down, the endpoint that
        cools down the shortest is used anyway.

        Raises:
            BackendError: the backend is closed, or no slot came free within ``timeout_s``.
        """
        deadline = time.monotonic() + self._timeout_s
        with self._cond:
            while True:
                if self._closed:
                    raise BackendError('the vllm backend is closed')
                now = time.monotonic()
                if self._in_flight < self._max_in_flight:
                    ready = [endpoint for endpoint in self._endpoints if endpoint.down_until <= now]
                    if not ready and now >= deadline:
                        ready = [min(self._endpoints, key=lambda endpoint: endpoint.down_until)]
                    if ready:
                        chosen = min(ready, key=lambda endpoint: (endpoint.in_flight, endpoint.last_pick))
                        self._picks += 1
                        chosen.last_pick = self._picks
                        chosen.in_flight += 1
                        chosen.requests += 1
                        self._in_flight += 1
                        return chosen
                    wake = min(min(endpoint.down_until for endpoint in self._endpoints), deadline)
                elif now >= deadline:
                    raise BackendError(
                        f'no in-flight slot free within {self._timeout_s:g} s '
                        f'(timeout; {self._max_in_flight} requests busy)'
                    )
                else:
                    wake = deadline
                self._cond.wait(max(0.001, wake - now))

    def _release(
        self, endpoint: _Endpoint, error: str | None, *, cool_down: bool = False, clearable: bool = False
    ) -> None:
        with self._cond:
            endpoint.in_flight -= 1
            self._in_flight -= 1
            if error is None:
                self._endpoint_ok(endpoint)
            else:
                self._endpoint_failed(endpoint, error, cool_down=cool_down, clearable=clearable)
            self._cond.notify_all()

    def _attempt(
        self, endpoint: _Endpoint, request: Callable[[openai.OpenAI], _T], what: str, *, probe: bool = False
    ) -> _T:
        """One HTTP attempt; raises _RetryableError or _AttemptError.

        The request runs on its own daemon thread and the caller waits at most ``2 * timeout_s`` (one limit
        for sending, one for the reply): the HTTP client limits each read, but on a loaded machine it was seen
        to return a reply long after its read timeout. An attempt still running then is abandoned as a
        timeout; it keeps its in-flight slot (``max_in_flight`` stays a bound on requests on the wire) until
        its thread ends. The caller never gets an answer that late.
        """
        limit = float(endpoint.probe_client.timeout) if probe else self._timeout_s  # type: ignore[arg-type]
        started = time.monotonic()
        attempt = _BackgroundAttempt(lambda: request(endpoint.client))
        if not attempt.wait(2.0 * limit):
            if not probe:
                with self._cond:  # the abandoned request keeps its slot until it ends
                    endpoint.in_flight += 1
                    self._in_flight += 1
                attempt.on_end(lambda: self._end_abandoned(endpoint))
            raise self._timeout_error(
                f'{what}: no reply from {endpoint.url} within {limit:g} s (timeout; still waiting after '
                f'{2.0 * limit:g} s, abandoned)'
            )
        error = attempt.error
        if isinstance(error, openai.APITimeoutError):
            raise self._timeout_error(f'{what}: no reply from {endpoint.url} within {limit:g} s (timeout)') from None
        if isinstance(error, openai.APIConnectionError):
            raise _RetryableError(
                self._redact(f'cannot reach {endpoint.url} ({_cause(error)})'), unreachable=True
            ) from None
        if isinstance(error, openai.APIStatusError):
            raise self._status_error(error, what, endpoint.url) from None
        if isinstance(error, openai.OpenAIError):
            # Response validation and other client-side failures: not worth retrying.
            raise _AttemptError(self._redact(f'{what}: {type(error).__name__}: {error}'), cool_down=False) from None
        if error is not None:
            raise error
        elapsed = time.monotonic() - started
        if elapsed > 2.0 * limit:
            raise self._timeout_error(
                f'{what}: no reply from {endpoint.url} within {limit:g} s (timeout; a reply that came after '
                f'{elapsed:.1f} s was discarded)'
            )
        return cast(_T, attempt.result)

    def _end_abandoned(self, endpoint: _Endpoint) -> None:
        """An abandoned attempt's thread ended: free the in-flight slot it kept."""
        with self._cond:
            endpoint.in_flight -= 1
            self._in_flight -= 1
            self._cond.notify_all()

    def _timeout_error(self, message: str) -> Exception:
        if self._retry_on_timeout:
            return _RetryableError(message)
        return _AttemptError(message, cool_down=False)

    def _status_error(self, exc: openai.APIStatusError, what: str, url: str) -> Exception:
        status = exc.status_code
        detail = self._redact(_server_message(exc))
        cool = status in _ENDPOINT_STATUS
        if status == 401:
            return _AttemptError(
                f'{what}: the server at {url} refused the API key (401). Set the key the server '
                f'was started with (vllm serve --api-key) in the environment variable {self._api_key_env}.',
                cool_down=True,
            )
        if status == 404 and what == _MODELS:
            return _AttemptError(
                f'{what}: not found (404) at {url}: the base URL is probably wrong (it must end '
                f'with the API path, such as /v1). Server said: {detail}',
                cool_down=True,
            )
        if status == 404:
            return _AttemptError(
                f'{what}: not found (404) at {url}: the model name {self._model!r} is probably '
                f'wrong (it must match vllm serve --served-model-name; probe() lists the served names), or '
                f'the base URL lacks the API path such as /v1. Server said: {detail}',
                cool_down=True,
            )
        message = f'{what}: HTTP {status} from {url}: {detail}'
        if status in _RETRY_STATUS or status >= 500:
            return _RetryableError(message)
        return _AttemptError(message, cool_down=cool)

    # ------------------------------------------------------------------ health bookkeeping

    def _endpoint_ok(self, endpoint: _Endpoint) -> None:
        """Record a success of ``endpoint`` (caller holds the condition)."""
        if endpoint.last_ok is False:
            _LOG.info('vllm endpoint %s is back', endpoint.url)
        endpoint.successes += 1
        endpoint.consecutive_failures = 0
        endpoint.down_until = 0.0
        endpoint.last_ok = True
        endpoint.clearable = False
        endpoint.last_success = time.monotonic()
        self._reported.pop(endpoint.url, None)

    def _endpoint_failed(self, endpoint: _Endpoint, error: str, *, cool_down: bool, clearable: bool) -> None:
        """Record a failure of ``endpoint`` (caller holds the condition)."""
        endpoint.failures += 1
        endpoint.consecutive_failures += 1
        endpoint.last_ok = False
        endpoint.last_error = error
        endpoint.clearable = clearable
        if cool_down:
            exponent = min(endpoint.consecutive_failures - 1, 30)
            delay = min(self._max_backoff_s, self._retry_backoff_s * 2.0**exponent) * random.uniform(0.5, 1.0)
            endpoint.down_until = max(endpoint.down_until, time.monotonic() + delay)

    def _note_call(self, ok: bool, error: str | None) -> None:
        """Record the outcome of one whole call (answer, ask or probe)."""
        with self._cond:
            self._last_ok = ok
            if ok:
                self._consecutive_failures = 0
            else:
                self._consecutive_failures += 1
                self._last_error = error

    # ------------------------------------------------------------------ probing

    def _probe_endpoint(self, endpoint: _Endpoint) -> list[str]:
        """``GET /models`` on one endpoint (its probe client: timeout ``min(5, max(1, timeout_s))``);
        records the outcome; BackendError when it is not usable."""
        try:
            page = self._attempt(endpoint, lambda _client: endpoint.probe_client.models.list(), _MODELS, probe=True)
        except (_RetryableError, _AttemptError) as exc:
            message = exc.message if isinstance(exc, _RetryableError) else str(exc)
            with self._cond:
                self._endpoint_failed(endpoint, message, cool_down=True, clearable=True)
                self._cond.notify_all()
            raise BackendError(message) from None
        served = sorted(str(model.id) for model in page.data)
        if self._model not in served:
            message = self._redact(
                f'the server at {endpoint.url} does not serve model {self._model!r}; it serves: '
                f'{", ".join(served) or "(none)"}'
            )
            with self._cond:
                self._endpoint_failed(endpoint, message, cool_down=True, clearable=True)
                self._cond.notify_all()
            raise BackendError(message)
        with self._cond:
            if endpoint.last_ok is not False or endpoint.clearable:
                self._endpoint_ok(endpoint)
            else:
                endpoint.down_until = 0.0  # reachable again: let the next request find out
            self._cond.notify_all()
        return served

    def _probe_loop(self) -> None:
        """Background health probe: every endpoint at once, then every ``probe_interval_s`` each endpoint
        that did not answer a request successfully within the last interval."""
        while not self._stop_probing.is_set():
            for endpoint in list(self._endpoints):
                if self._stop_probing.is_set():
                    return
                with self._cond:
                    busy_and_fine = (
                        endpoint.last_ok is True and time.monotonic() - endpoint.last_success < self._probe_interval_s
                    )
                if busy_and_fine:
                    continue
                try:
                    self._probe_endpoint(endpoint)
                except BackendError as exc:
                    self._report(endpoint.url, str(exc))
                except Exception:  # the probe must never die
                    _LOG.exception('health probe of %s failed unexpectedly', endpoint.url)
            self._stop_probing.wait(self._probe_interval_s)

    def _report(self, url: str, message: str) -> None:
        """Log a probe failure once per distinct message (an error for configuration problems)."""
        with self._cond:
            if self._reported.get(url) == message:
                return
            self._reported[url] = message
        if _is_configuration_problem(message):
            _LOG.error('vllm endpoint %s is misconfigured: %s', url, message)
        else:
            _LOG.warning('vllm endpoint %s is down: %s', url, message)

    def _redact(self, text: str) -> str:
        if self._secret:
            text = text.replace(self._secret, '***')
        return text if len(text) <= 500 else text[:497] + '...'


def parse_base_urls(base_url: str | Sequence[str]) -> list[str]:
    """Normalise one base URL, a comma/space-separated string of them, or a sequence of them.

    Each must be an ``http(s)`` URL without credentials; one without a path gets ``/v1``. Duplicates are
    removed (first kept).

    Raises:
        ConfigError: no URL, or an invalid one.
    """
    if isinstance(base_url, str):
        items = [part for part in re.split(r'[\s,]+', base_url) if part]
    elif isinstance(base_url, Sequence):
        items = []
        for value in base_url:
            if not isinstance(value, str):
                raise ConfigError(f'base URLs must be strings, got {type(value).__name__}')
            items += [part for part in re.split(r'[\s,]+', value) if part]
    else:
        raise ConfigError('base_url must be a URL string or a list of them')
    if not items:
        raise ConfigError('base_url must be a non-empty URL such as http://127.0.0.1:8000/v1')
    urls: list[str] = []
    for item in items:
        url = _normalise_base_url(item)
        if url not in urls:
            urls.append(url)
    return urls


def _normalise_base_url(base_url: str) -> str:
    url = base_url.strip().rstrip('/')
    parts = urlsplit(url)
    if parts.scheme not in ('http', 'https') or not parts.netloc:
        raise ConfigError(f'base_url must be an http(s) URL such as http://127.0.0.1:8000/v1, got {url!r}')
    if parts.username or parts.password:
        raise ConfigError('base_url must not contain credentials; put the key in the api_key_env variable')
    if parts.path in ('', '/'):
        url += '/v1'
    return url


def _is_configuration_problem(message: str) -> bool:
    return any(marker in message for marker in ('(401)', 'does not serve model', '(404)', '(403)'))


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
