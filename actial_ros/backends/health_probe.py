"""The vLLM backend's health probe: ``GET /v1/models`` on each endpoint, once on demand or on a thread.

With ``probe_interval_s > 0`` a daemon thread (``actial-vllm-probe``) probes every endpoint at once and then,
every ``probe_interval_s`` seconds, each endpoint that did not answer a request successfully within the last
interval. It reports a wrong model name or a refused key at start-up (logged once as an error, and shown by
:meth:`VllmBackend.health <actial_ros.backends.vllm.VllmBackend.health>`), notices a dead endpoint while no
request is running (logged once as a warning), and brings an endpoint that came back into service without
waiting for its cool-down. A probe is one attempt (no retries), limited by the probe client's timeout (1 to
5 s), and holds no in-flight slot.
"""

from __future__ import annotations

import logging
import threading

from actial_ros.backends.attempts import MODELS, AttemptError, AttemptRunner, RetryableError
from actial_ros.backends.endpoint_pool import Endpoint, EndpointPool
from actial_ros.backends.retry_policy import ABANDON_FACTOR
from actial_ros.errors import BackendError

__all__ = ['HealthProbe']

# The backend's one logger (its parts log under the name users configure: actial_ros.backends.vllm).
_LOG = logging.getLogger('actial_ros.backends.vllm')

_JOIN_TIMEOUT_S = ABANDON_FACTOR * 5.0 + 1.0
"""Longest wait for the probe thread on stop (s): a probe attempt is abandoned after ``ABANDON_FACTOR`` times
its timeout, which is at most 5 s (:attr:`~actial_ros.backends.retry_policy.RetryPolicy.probe_timeout_s`)."""


class HealthProbe:
    """Probes a pool's endpoints: :meth:`check` one now, or all periodically on a thread (:meth:`start`).

    Args:
        pool: the endpoints; each probe's outcome is recorded there (a failure cools the endpoint down, a
            success ends its cool-down).
        runner: runs each probe as one attempt (its error classification and redaction).
        model: the served model name every endpoint must list.
        interval_s: period of the background probe (seconds, finite, >= 0; checked by the caller); 0:
            :meth:`start` starts none.
    """

    def __init__(self, *, pool: EndpointPool, runner: AttemptRunner, model: str, interval_s: float) -> None:
        self._pool = pool
        self._runner = runner
        self._model = model
        self._interval_s = float(interval_s)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self, endpoint: Endpoint) -> list[str]:
        """``GET /models`` on ``endpoint`` (its probe client), and record the outcome in the pool.

        Returns:
            The model ids it serves, sorted.

        Raises:
            BackendError: it is not usable (unreachable, refuses the key, or does not serve the model); the
                message (redacted) says why.
        """
        try:
            page = self._runner.attempt(
                endpoint, lambda _client: endpoint.probe_client.models.list(), MODELS, probe=True
            )
        except (RetryableError, AttemptError) as exc:
            message = exc.message if isinstance(exc, RetryableError) else str(exc)
            self._pool.record_failure(endpoint, message, cool_down=True, clearable=True)
            raise BackendError(message) from None
        served = sorted(str(model.id) for model in page.data)
        if self._model not in served:
            message = self._runner.redact(
                f'the server at {endpoint.url} does not serve model {self._model!r}; it serves: '
                f'{", ".join(served) or "(none)"}'
            )
            self._pool.record_failure(endpoint, message, cool_down=True, clearable=True)
            raise BackendError(message)
        self._pool.record_reachable(endpoint)
        return served

    def start(self) -> None:
        """Start the background probe (a daemon thread), unless ``interval_s`` is 0."""
        if self._interval_s > 0 and self._thread is None:
            self._thread = threading.Thread(target=self._loop, name='actial-vllm-probe', daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the background probe and wait for it (at most ``_JOIN_TIMEOUT_S``, 11 s: the longest probe
        attempt).
        Idempotent; callable from the probe thread itself (then it does not wait)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=_JOIN_TIMEOUT_S)

    def _loop(self) -> None:
        """Every endpoint at once, then every ``interval_s`` each endpoint that did not answer a request
        successfully within the last interval."""
        while not self._stop.is_set():
            for endpoint in self._pool.endpoints:
                if self._stop.is_set():
                    return
                if self._pool.succeeded_within(endpoint, self._interval_s):
                    continue
                try:
                    self.check(endpoint)
                except BackendError as exc:
                    self._report(endpoint, str(exc))
                except Exception:  # the probe must never die
                    _LOG.exception('health probe of %s failed unexpectedly', endpoint.url)
            self._stop.wait(self._interval_s)

    def _report(self, endpoint: Endpoint, message: str) -> None:
        """Log a probe failure once per distinct message (an error for configuration problems)."""
        if not self._pool.first_report(endpoint, message):
            return
        if _is_configuration_problem(message):
            _LOG.error('vllm endpoint %s is misconfigured: %s', endpoint.url, message)
        else:
            _LOG.warning('vllm endpoint %s is down: %s', endpoint.url, message)


def _is_configuration_problem(message: str) -> bool:
    return any(marker in message for marker in ('(401)', 'does not serve model', '(404)', '(403)'))
