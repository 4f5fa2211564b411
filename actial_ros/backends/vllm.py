"""Backend for a model served by vLLM's OpenAI-compatible API (``/v1/chat/completions``), on one or
several endpoints.

Each viewpoint question is one chat completion: a system message (configurable, default
:data:`actial_ros.questions.DEFAULT_SYSTEM_PROMPT`) and one user message whose content parts are the
two frames as JPEG data URLs (downscaled to fit ``max_image_width`` x ``max_image_height``, 960x540 by
default as in the paper) followed by the question text. Decoding is greedy (``temperature`` 0);
``top_p`` is configurable (default 1.0; the paper's evaluation used 0.95, which has no effect at
temperature 0 in vLLM). :meth:`VllmBackend.ask` with ``on_text`` streams the reply (server-sent events).

:class:`VllmBackend` (this module: the public API, request building, streaming, parsing, timings) composes
its parts, each of which documents the contract it implements:

* :mod:`actial_ros.backends.retry_policy`: the time and retry settings
  (:class:`~actial_ros.backends.retry_policy.RetryPolicy`) and the bound on one call they imply
  (:attr:`VllmBackend.worst_case_s`).
* :mod:`actial_ros.backends.endpoint_pool`: the endpoints and their HTTP clients, which endpoint an attempt
  goes to (fewest in flight, not cooling down, round robin), the ``max_in_flight`` slots and their wait,
  the cool-down (exponential backoff with jitter) of a failed endpoint.
* :mod:`actial_ros.backends.attempts`: one attempt under its deadline (abandoned after ``2 * timeout_s``,
  keeping its slot), what is retried and what is not (timeouts by default, 4xx), the retry loop.
* :mod:`actial_ros.backends.health_probe`: the ``GET /v1/models`` probe, on demand (:meth:`VllmBackend.probe`)
  and on a thread every ``probe_interval_s``.

:meth:`VllmBackend.health` is ok while at least one endpoint is; its message lists the endpoints that
are not; :meth:`VllmBackend.endpoints` gives per-endpoint figures.

The API key is read once from the environment variable named by ``api_key_env`` (``'EMPTY'`` when
unset, which vLLM accepts when started without ``--api-key``). It is given only to the HTTP clients:
it never appears in ``repr``, log records or error messages (messages are redacted defensively).
The parts log under this module's name, ``actial_ros.backends.vllm``.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, TypeVar, cast

import openai

from actial_ros.answers import parse_answer
from actial_ros.backends.attempts import CHAT, AttemptError, AttemptRunner
from actial_ros.backends.base import Backend, BackendAnswer, BackendHealth
from actial_ros.backends.defaults import DEFAULT_API_KEY_ENV, DEFAULT_BASE_URL
from actial_ros.backends.endpoint_pool import EndpointHealth, EndpointPool, parse_base_urls
from actial_ros.backends.health_probe import HealthProbe
from actial_ros.backends.retry_policy import RetryPolicy
from actial_ros.chat import chat_messages, image_url_part
from actial_ros.errors import BackendError, ConfigError
from actial_ros.frame import Frame, Pair
from actial_ros.imaging import MAX_MODEL_HEIGHT, MAX_MODEL_WIDTH, encoded_jpeg_data_url, jpeg_data_url
from actial_ros.questions import DEFAULT_SYSTEM_PROMPT, OPTION_LETTERS, Question

__all__ = [
    'DEFAULT_API_KEY_ENV',
    'DEFAULT_BASE_URL',
    'EndpointHealth',
    'RequestTiming',
    'VllmBackend',
    'VllmOptions',
    'parse_base_urls',
]

_LOG = logging.getLogger(__name__)

_TIMINGS_KEPT = 4096
_T = TypeVar('_T')


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


@dataclass(frozen=True, slots=True, kw_only=True)
class VllmOptions:
    """The settings of a :class:`VllmBackend` (checked when the backend is built: it raises
    :class:`~actial_ros.errors.ConfigError` for an invalid value, in the order of the fields; the key itself
    is never checked or shown).

    Attributes:
        model: the served model name (``vllm serve ... --served-model-name``); a wrong name gives 404.
        base_url: the server's OpenAI API root, e.g. ``http://robot-gpu:8000/v1``, or several (a list, or
            one string with comma- or space-separated URLs) serving the same model. A URL without a path
            gets ``/v1`` appended.
        api_key_env: name of the environment variable with the API key; ``'EMPTY'`` when unset.
        timeout_s: limit of one HTTP attempt, and of the wait for an in-flight slot (seconds, > 0).
        max_retries: extra attempts after a retryable failure (>= 0).
        retry_backoff_s: base of the exponential backoff (seconds, >= 0).
        max_backoff_s: cap of one backoff (cool-down) (seconds, >= 0).
        retry_on_timeout: also retry attempts that timed out (default False).
        probe_interval_s: period of the background health probe (seconds); 0 (default) starts none.
        max_in_flight: concurrent requests this backend sends, all endpoints together (>= 1).
        system_prompt: the system message; '' sends none. Use the prompt the checkpoint was trained with.
        max_tokens: generation limit per reply (tokens, >= 1); thinking models need room for ``<think>``.
        temperature: sampling temperature (default 0: greedy, as in the paper's evaluation).
        top_p: nucleus sampling parameter in (0, 1] (default 1.0; the paper used 0.95).
        jpeg_quality: JPEG quality of the images sent (1 to 100).
        max_image_width: images are downscaled to fit this width (pixels).
        max_image_height: images are downscaled to fit this height (pixels).
    """

    model: str
    base_url: str | Sequence[str] = DEFAULT_BASE_URL
    api_key_env: str = DEFAULT_API_KEY_ENV
    timeout_s: float = 60.0
    max_retries: int = 2
    retry_backoff_s: float = 0.5
    max_backoff_s: float = 8.0
    retry_on_timeout: bool = False
    probe_interval_s: float = 0.0
    max_in_flight: int = 4
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    max_tokens: int = 1024
    temperature: float = 0.0
    top_p: float = 1.0
    jpeg_quality: int = 90
    max_image_width: int = MAX_MODEL_WIDTH
    max_image_height: int = MAX_MODEL_HEIGHT


@dataclass(frozen=True, slots=True, kw_only=True)
class _ChatSettings:
    """What each chat completion asks for (the :class:`VllmOptions` fields of the same names).

    Raises:
        ConfigError: an invalid value (checked in the order of the fields).
    """

    system_prompt: str
    max_tokens: int
    temperature: float
    top_p: float
    jpeg_quality: int
    max_image_width: int  # pixels
    max_image_height: int  # pixels

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ConfigError(f'max_tokens must be >= 1, got {self.max_tokens}')
        if not (self.temperature >= 0 and math.isfinite(self.temperature)):
            raise ConfigError(f'temperature must be finite and >= 0, got {self.temperature}')
        if not 0.0 < self.top_p <= 1.0:
            raise ConfigError(f'top_p must be in (0, 1], got {self.top_p}')
        if not 1 <= self.jpeg_quality <= 100:
            raise ConfigError(f'jpeg_quality must be in [1, 100], got {self.jpeg_quality}')
        if self.max_image_width < 1 or self.max_image_height < 1:
            raise ConfigError(f'max image size must be positive, got {self.max_image_width}x{self.max_image_height}')
        object.__setattr__(self, 'max_tokens', int(self.max_tokens))
        object.__setattr__(self, 'temperature', float(self.temperature))
        object.__setattr__(self, 'top_p', float(self.top_p))
        object.__setattr__(self, 'jpeg_quality', int(self.jpeg_quality))
        object.__setattr__(self, 'max_image_width', int(self.max_image_width))
        object.__setattr__(self, 'max_image_height', int(self.max_image_height))

    def messages(self, frames: Sequence[Frame | bytes], text: str) -> list[dict[str, Any]]:
        """The chat messages: the system prompt (unless ''), then the frames as JPEG data URLs and ``text``.

        A frame is encoded to fit the image limits; JPEG bytes go as they are."""
        images = [
            image_url_part(
                encoded_jpeg_data_url(frame)
                if isinstance(frame, bytes)
                else jpeg_data_url(
                    frame.image,
                    quality=self.jpeg_quality,
                    max_width=self.max_image_width,
                    max_height=self.max_image_height,
                )
            )
            for frame in frames
        ]
        return chat_messages(text, system_prompt=self.system_prompt, images=images)


class VllmBackend(Backend):
    """Answers viewpoint questions with a VLM served by vLLM (OpenAI-compatible chat completions).

    Thread-safe: one synchronous :class:`openai.OpenAI` client per endpoint (their HTTP connection pools
    are thread-safe); at most ``max_in_flight`` requests are on the wire at once; the endpoints' bookkeeping
    is guarded by the endpoint pool's condition variable, the calls' (health, timings) by a lock of its own.

    Args:
        options: the settings (:class:`VllmOptions`: endpoints, model, key, time and retries, concurrency,
            prompt, sampling, images).

    Raises:
        ConfigError: an invalid value (the key itself is never checked or shown).
    """

    name = 'vllm'
    streams = True

    def __init__(self, *, options: VllmOptions) -> None:
        # Everything is checked (in this order) before any client or thread exists.
        urls = parse_base_urls(options.base_url)
        model, api_key_env = options.model, options.api_key_env
        if not isinstance(model, str) or not model.strip():
            raise ConfigError('model (the served model name) must be a non-empty string')
        if not api_key_env or not api_key_env.replace('_', '').isalnum():
            raise ConfigError(f'api_key_env must be an environment variable name, got {api_key_env!r}')
        policy = RetryPolicy(
            timeout_s=options.timeout_s,
            max_retries=options.max_retries,
            retry_backoff_s=options.retry_backoff_s,
            max_backoff_s=options.max_backoff_s,
            retry_on_timeout=options.retry_on_timeout,
        )
        probe_interval_s, max_in_flight = options.probe_interval_s, options.max_in_flight
        if not (probe_interval_s >= 0 and math.isfinite(probe_interval_s)):
            raise ConfigError(f'probe_interval_s must be finite and >= 0, got {probe_interval_s}')
        if max_in_flight < 1:
            raise ConfigError(f'max_in_flight must be >= 1, got {max_in_flight}')
        self._chat = _ChatSettings(
            system_prompt=options.system_prompt,
            max_tokens=options.max_tokens,
            temperature=options.temperature,
            top_p=options.top_p,
            jpeg_quality=options.jpeg_quality,
            max_image_width=options.max_image_width,
            max_image_height=options.max_image_height,
        )
        self._model = model.strip()
        self._api_key_env = api_key_env
        self._policy = policy

        key = os.environ.get(api_key_env) or 'EMPTY'
        self._pool = EndpointPool(urls=urls, api_key=key, policy=policy, max_in_flight=max_in_flight)
        # The only reference to the key outside the clients: used to redact messages. Never logged.
        secret = key if key != 'EMPTY' else ''
        self._runner = AttemptRunner(
            pool=self._pool, policy=policy, model=self._model, api_key_env=api_key_env, secret=secret
        )
        self._lock = threading.Lock()  # the calls' outcome and timings below
        self._consecutive_failures = 0
        self._last_error: str | None = None
        self._timings: deque[RequestTiming] = deque(maxlen=_TIMINGS_KEPT)
        self._prober = HealthProbe(pool=self._pool, runner=self._runner, model=self._model, interval_s=probe_interval_s)
        self._prober.start()

    # ------------------------------------------------------------------ properties

    def __repr__(self) -> str:
        urls = list(self._pool.urls)
        where = f'base_url={urls[0]!r}' if len(urls) == 1 else f'base_urls={urls!r}'
        return (
            f'VllmBackend({where}, model={self._model!r}, '
            f'api_key_env={self._api_key_env!r}, max_in_flight={self._pool.max_in_flight})'
        )

    @property
    def model(self) -> str:
        """The served model name requested."""
        return self._model

    @property
    def base_url(self) -> str:
        """The first endpoint's normalised API root (ends with the API path, e.g. ``/v1``)."""
        return self._pool.urls[0]

    @property
    def base_urls(self) -> tuple[str, ...]:
        """Every endpoint's normalised API root, in configuration order."""
        return self._pool.urls

    @property
    def max_in_flight(self) -> int:
        """Most requests on the wire at once."""
        return self._pool.max_in_flight

    @property
    def last_error(self) -> str | None:
        """Redacted message of the latest failed call (kept after a success), or ``None``."""
        with self._lock:
            return self._last_error

    @property
    def worst_case_s(self) -> float:
        """Upper bound in seconds on one call before it returns or raises (slot waits, attempts, backoffs)."""
        return self._policy.worst_case_s

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

    def ask_jpegs(self, images: Sequence[bytes], prompt: str) -> BackendAnswer:
        """:meth:`ask` about images already encoded as JPEG (e.g. a dataset's stored images), sent as they are:
        not decoded, resized or re-encoded; ``letter`` is ``None``.

        Raises:
            BackendError: as :meth:`answer`.
        """
        return self._complete(list(images), prompt, None)

    def health(self) -> BackendHealth:
        """Ok while at least one endpoint is (or none was tried yet); the message names the others.

        ``consecutive_failures`` counts failed calls since the last successful one.
        """
        with self._lock:
            failures = self._consecutive_failures
            last_error = self._last_error
        if self._pool.closed:
            return BackendHealth(False, 'closed', failures)
        states = [
            (endpoint.url, endpoint.ok, endpoint.consecutive_failures, endpoint.last_error)
            for endpoint in self._pool.snapshot()
        ]
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
        return self._pool.snapshot()

    def recent_timings(self) -> list[RequestTiming]:
        """Timings of the latest successful calls (at most 4096, oldest first)."""
        with self._lock:
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
        for endpoint in self._pool.endpoints:
            try:
                models = self._prober.check(endpoint)
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
        if not self._pool.shut():
            return
        self._prober.stop()
        self._pool.close_clients()

    # ------------------------------------------------------------------ requests

    def _complete(
        self,
        frames: Sequence[Frame | bytes],
        text: str,
        letters: str | None,
        *,
        on_text: Callable[[str], None] | None = None,
    ) -> BackendAnswer:
        start = time.perf_counter()
        messages = self._chat.messages(frames, text)
        prepared = time.perf_counter()

        def request(client: openai.OpenAI) -> Any:
            if on_text is not None:
                return self._streamed(client, messages, on_text)
            response = client.chat.completions.create(
                model=self._model,
                messages=cast(Any, messages),  # plain dicts of the documented shape
                temperature=self._chat.temperature,
                top_p=self._chat.top_p,
                max_tokens=self._chat.max_tokens,
            )
            if not getattr(response, 'choices', None):
                raise AttemptError(f'{CHAT}: the server replied without choices', cool_down=False)
            return response

        response, endpoint, server_s = self._call(request, CHAT)
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
        with self._lock:
            self._timings.append(timing)
        return BackendAnswer(self.name, raw_text, letter, end - start, reason=reason, usage=usage)

    def _streamed(self, client: openai.OpenAI, messages: list[dict[str, Any]], report: Callable[[str], None]) -> Any:
        """The chat request streamed: the reply so far goes to ``report`` chunk by chunk; returns an object
        shaped like a non-streamed response (``choices[0].message.content``, ``usage``)."""
        stream = client.chat.completions.create(
            model=self._model,
            messages=cast(Any, messages),
            temperature=self._chat.temperature,
            top_p=self._chat.top_p,
            max_tokens=self._chat.max_tokens,
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

    def _call(self, request: Callable[[openai.OpenAI], _T], what: str) -> tuple[_T, str, float]:
        """Run ``request`` with the retries and failover of :meth:`AttemptRunner.call
        <actial_ros.backends.attempts.AttemptRunner.call>`, and record the call's outcome for :meth:`health`.

        Returns:
            The result, the URL of the endpoint that produced it and the seconds of that attempt.

        Raises:
            BackendError: the backend is closed, no slot came free, every attempt failed, or one failed in a
                way not worth retrying.
        """
        try:
            outcome = self._runner.call(request, what)
        except BackendError as exc:
            self._note_call(False, str(exc))
            raise
        self._note_call(True, None)
        return outcome

    def _note_call(self, ok: bool, error: str | None) -> None:
        """Record the outcome of one whole call (answer, ask or probe)."""
        with self._lock:
            if ok:
                self._consecutive_failures = 0
            else:
                self._consecutive_failures += 1
                self._last_error = error


def _usage_dict(usage: object) -> dict[str, int]:
    if usage is None:
        return {}
    result: dict[str, int] = {}
    for key in ('prompt_tokens', 'completion_tokens', 'total_tokens'):
        value = getattr(usage, key, None)
        if isinstance(value, int):
            result[key] = value
    return result
