"""The vLLM backend's endpoints: where each attempt goes, the in-flight bound, and the cool-down after a failure.

Several endpoints (``base_url`` as a list, or one string with comma-separated URLs, see
:func:`parse_base_urls`) serve the same model. Each has two HTTP clients (one for requests, limited by
``timeout_s``; one for health probes, 1 to 5 s), both with the ``openai`` client's own retries disabled.

* Choice: each attempt goes to the endpoint with the fewest requests in flight that is not cooling down
  (ties: round robin), so a request that failed in a retryable way moves on to another endpoint at once.
* Bound: at most ``max_in_flight`` requests are on the wire at once (all endpoints together); waiting for a
  free slot is limited by ``timeout_s`` (then :class:`~actial_ros.errors.BackendError`, a timeout).
* Cool-down: an endpoint whose attempt failed (retryable failure, refused key, unknown model) cools down for
  ``min(max_backoff_s, retry_backoff_s * 2**(n - 1)) * uniform(0.5, 1.0)`` seconds, ``n`` being its failed
  attempts in a row (across calls): exponential backoff with jitter, per endpoint. While every endpoint cools
  down, callers wait (without holding an in-flight slot), so a dead server is not hammered by every worker;
  a wait longer than ``timeout_s`` ends in an attempt on the endpoint that has cooled longest. With one
  endpoint this is the classic retry with exponential backoff.

All state is guarded by the pool's one condition variable; :class:`Endpoint` objects are read and changed
only through the pool's methods.
"""

from __future__ import annotations

import logging
import math
import random
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import openai

from actial_ros.backends.retry_policy import RetryPolicy
from actial_ros.errors import BackendError, ConfigError

__all__ = ['Endpoint', 'EndpointHealth', 'EndpointPool', 'parse_base_urls']

# The backend's one logger (its parts log under the name users configure: actial_ros.backends.vllm).
_LOG = logging.getLogger('actial_ros.backends.vllm')


@dataclass(frozen=True, slots=True)
class EndpointHealth:
    """One endpoint as :meth:`VllmBackend.endpoints <actial_ros.backends.vllm.VllmBackend.endpoints>` reports it.

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


class Endpoint:
    """Mutable state of one endpoint; guarded by its :class:`EndpointPool`'s condition variable.

    ``client`` (requests) and ``probe_client`` (health probes) are thread-safe and may be used without it.
    """

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
        'reported',
        'requests',
        'successes',
        'url',
    )

    def __init__(self, *, url: str, client: openai.OpenAI, probe_client: openai.OpenAI) -> None:
        self.url = url
        self.client = client
        self.probe_client = probe_client
        self.in_flight = 0
        self.requests = 0
        self.successes = 0
        self.failures = 0
        self.consecutive_failures = 0
        self.down_until = 0.0  # time.monotonic() seconds
        self.last_pick = 0
        self.last_ok: bool | None = None
        self.last_error: str | None = None
        self.last_success = -math.inf  # time.monotonic() seconds
        # Whether a successful probe may declare the endpoint healthy again: its latest failure was a
        # connection error or a probe's. A chat request that failed on a reachable server (HTTP 5xx, a
        # timeout) is left to the next request, so that health does not flap.
        self.clearable = False
        # The health probe's latest logged failure (logged once per distinct message); cleared by a success.
        self.reported: str | None = None


class EndpointPool:
    """The endpoints of one backend, the in-flight slots and the cool-downs (thread-safe).

    Args:
        urls: normalised API roots (:func:`parse_base_urls`), at least one, no duplicates.
        api_key: the key given to the HTTP clients (``'EMPTY'`` when there is none); the pool keeps no copy.
        policy: ``timeout_s`` (request clients, slot wait), ``probe_timeout_s`` (probe clients) and the
            backoff of the cool-downs.
        max_in_flight: requests on the wire at once, all endpoints together (>= 1).

    The arguments are checked by the caller (:class:`~actial_ros.backends.vllm.VllmBackend`); building the
    pool only creates the clients (no connection is made).
    """

    def __init__(self, *, urls: Sequence[str], api_key: str, policy: RetryPolicy, max_in_flight: int) -> None:
        self._policy = policy
        self._max_in_flight = int(max_in_flight)
        self._endpoints = tuple(
            Endpoint(
                url=url,
                client=openai.OpenAI(api_key=api_key, base_url=url, timeout=policy.timeout_s, max_retries=0),
                probe_client=openai.OpenAI(
                    api_key=api_key, base_url=url, timeout=policy.probe_timeout_s, max_retries=0
                ),
            )
            for url in urls
        )
        self._cond = threading.Condition()
        self._closed = False
        self._in_flight = 0
        self._picks = 0

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        """Every endpoint, in configuration order."""
        return self._endpoints

    @property
    def urls(self) -> tuple[str, ...]:
        """Every endpoint's normalised API root, in configuration order."""
        return tuple(endpoint.url for endpoint in self._endpoints)

    @property
    def max_in_flight(self) -> int:
        """Most requests on the wire at once."""
        return self._max_in_flight

    @property
    def closed(self) -> bool:
        """Whether :meth:`shut` was called."""
        with self._cond:
            return self._closed

    # ------------------------------------------------------------------ slots

    def acquire(self) -> Endpoint:
        """Wait (at most ``timeout_s``) for an in-flight slot and an endpoint that is not cooling down.

        When the wait runs out with a slot free but every endpoint cooling down, the endpoint that
        cools down the shortest is used anyway. The slot is the caller's until :meth:`release`.

        Raises:
            BackendError: the pool is shut, or no slot came free within ``timeout_s``.
        """
        timeout_s = self._policy.timeout_s
        deadline = time.monotonic() + timeout_s
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
                        f'no in-flight slot free within {timeout_s:g} s (timeout; {self._max_in_flight} requests busy)'
                    )
                else:
                    wake = deadline
                self._cond.wait(max(0.001, wake - now))

    def release(
        self, endpoint: Endpoint, error: str | None, *, cool_down: bool = False, clearable: bool = False
    ) -> None:
        """Give back the slot taken by :meth:`acquire` and record the attempt's outcome.

        Args:
            endpoint: the endpoint :meth:`acquire` returned.
            error: ``None`` for a success (ends its cool-down), else the failure's redacted message.
            cool_down: start (or extend) a cool-down of ``endpoint`` (failures only).
            clearable: a successful probe may declare ``endpoint`` healthy again (failures only).
        """
        with self._cond:
            endpoint.in_flight -= 1
            self._in_flight -= 1
            if error is None:
                self._succeeded(endpoint)
            else:
                self._failed(endpoint, error, cool_down=cool_down, clearable=clearable)
            self._cond.notify_all()

    def keep_slot(self, endpoint: Endpoint) -> None:
        """An abandoned attempt keeps an in-flight slot on ``endpoint`` (besides the one its caller releases)
        until :meth:`free_kept_slot`: ``max_in_flight`` stays a bound on the requests on the wire."""
        with self._cond:
            endpoint.in_flight += 1
            self._in_flight += 1

    def free_kept_slot(self, endpoint: Endpoint) -> None:
        """An abandoned attempt's request ended: free the slot :meth:`keep_slot` kept."""
        with self._cond:
            endpoint.in_flight -= 1
            self._in_flight -= 1
            self._cond.notify_all()

    # ------------------------------------------------------------------ outcomes outside a slot (probes)

    def record_failure(self, endpoint: Endpoint, error: str, *, cool_down: bool, clearable: bool) -> None:
        """Record a failure of ``endpoint`` outside a slot (a probe's); arguments as in :meth:`release`."""
        with self._cond:
            self._failed(endpoint, error, cool_down=cool_down, clearable=clearable)
            self._cond.notify_all()

    def record_reachable(self, endpoint: Endpoint) -> None:
        """A probe found ``endpoint`` usable: a success, unless its latest failure was a reachable server's
        (not clearable), in which case only its cool-down ends and the next request finds out."""
        with self._cond:
            if endpoint.last_ok is not False or endpoint.clearable:
                self._succeeded(endpoint)
            else:
                endpoint.down_until = 0.0  # reachable again: let the next request find out
            self._cond.notify_all()

    def succeeded_within(self, endpoint: Endpoint, interval_s: float) -> bool:
        """Whether ``endpoint``'s latest outcome is a success less than ``interval_s`` seconds old."""
        with self._cond:
            return endpoint.last_ok is True and time.monotonic() - endpoint.last_success < interval_s

    def first_report(self, endpoint: Endpoint, message: str) -> bool:
        """True the first time ``message`` is reported for ``endpoint`` since its last success or other
        report (the probe logs a failure once, not per probe)."""
        with self._cond:
            if endpoint.reported == message:
                return False
            endpoint.reported = message
            return True

    # ------------------------------------------------------------------ reading and closing

    def snapshot(self) -> list[EndpointHealth]:
        """Per-endpoint figures, in configuration order, taken at one instant."""
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

    def shut(self) -> bool:
        """Refuse further slots and wake the waiters (they raise). True the first time, False after."""
        with self._cond:
            if self._closed:
                return False
            self._closed = True
            self._cond.notify_all()
            return True

    def close_clients(self) -> None:
        """Close every HTTP client (after :meth:`shut`, once nothing probes any more)."""
        for endpoint in self._endpoints:
            endpoint.client.close()
            endpoint.probe_client.close()

    # ------------------------------------------------------------------ bookkeeping (caller holds the condition)

    def _succeeded(self, endpoint: Endpoint) -> None:
        if endpoint.last_ok is False:
            _LOG.info('vllm endpoint %s is back', endpoint.url)
        endpoint.successes += 1
        endpoint.consecutive_failures = 0
        endpoint.down_until = 0.0
        endpoint.last_ok = True
        endpoint.clearable = False
        endpoint.last_success = time.monotonic()
        endpoint.reported = None

    def _failed(self, endpoint: Endpoint, error: str, *, cool_down: bool, clearable: bool) -> None:
        endpoint.failures += 1
        endpoint.consecutive_failures += 1
        endpoint.last_ok = False
        endpoint.last_error = error
        endpoint.clearable = clearable
        if cool_down:
            endpoint.down_until = max(endpoint.down_until, time.monotonic() + self._cool_down_s(endpoint))

    def _cool_down_s(self, endpoint: Endpoint) -> float:
        """The backoff after ``endpoint``'s latest failure (seconds), jittered."""
        exponent = min(endpoint.consecutive_failures - 1, 30)
        policy = self._policy
        return min(policy.max_backoff_s, policy.retry_backoff_s * 2.0**exponent) * random.uniform(0.5, 1.0)


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
