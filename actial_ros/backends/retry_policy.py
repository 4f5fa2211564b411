"""The vLLM backend's time and retry settings (:class:`RetryPolicy`), validated once, and the bound on one
call that they imply.

* One attempt is one HTTP request to one endpoint, limited by ``timeout_s`` (connect, read, write, pool);
  the backend itself abandons an attempt still waiting after :data:`ABANDON_FACTOR` ``* timeout_s``
  (:mod:`actial_ros.backends.attempts`). Waiting for an in-flight slot is limited by ``timeout_s`` too
  (:mod:`actial_ros.backends.endpoint_pool`).
* A retryable failure is followed by up to ``max_retries`` further attempts; a failed endpoint cools down
  for an exponential backoff with jitter based on ``retry_backoff_s`` and capped by ``max_backoff_s``.

So one call takes at most about ``(max_retries + 1) * 2 * timeout_s + sum of the backoffs``
(:attr:`RetryPolicy.worst_case_s`, shown as :attr:`VllmBackend.worst_case_s
<actial_ros.backends.vllm.VllmBackend.worst_case_s>`), then returns or raises
:class:`~actial_ros.errors.BackendError`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from actial_ros.errors import ConfigError

__all__ = ['ABANDON_FACTOR', 'RetryPolicy']

ABANDON_FACTOR = 2.0
"""An attempt still waiting after this many times its timeout is abandoned (one limit for sending, one for
the reply)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Time bounds and retries of the vLLM backend (the values of its keyword parameters of the same names).

    Attributes:
        timeout_s: limit of one HTTP attempt, and of the wait for an in-flight slot (seconds, finite, > 0).
        max_retries: extra attempts after a retryable failure (>= 0).
        retry_backoff_s: base of the exponential backoff (cool-down) (seconds, finite, >= 0).
        max_backoff_s: cap of one backoff (cool-down) (seconds, finite, >= 0).
        retry_on_timeout: also retry attempts that timed out (default False).

    Raises:
        ConfigError: an invalid value (checked in the order above).
    """

    timeout_s: float = 60.0
    max_retries: int = 2
    retry_backoff_s: float = 0.5
    max_backoff_s: float = 8.0
    retry_on_timeout: bool = False

    def __post_init__(self) -> None:
        if not (self.timeout_s > 0 and math.isfinite(self.timeout_s)):
            raise ConfigError(f'timeout_s must be finite and > 0, got {self.timeout_s}')
        if self.max_retries < 0:
            raise ConfigError(f'max_retries must be >= 0, got {self.max_retries}')
        for label, value in (('retry_backoff_s', self.retry_backoff_s), ('max_backoff_s', self.max_backoff_s)):
            if not (value >= 0 and math.isfinite(value)):
                raise ConfigError(f'{label} must be finite and >= 0, got {value}')
        object.__setattr__(self, 'timeout_s', float(self.timeout_s))
        object.__setattr__(self, 'max_retries', int(self.max_retries))
        object.__setattr__(self, 'retry_backoff_s', float(self.retry_backoff_s))
        object.__setattr__(self, 'max_backoff_s', float(self.max_backoff_s))
        object.__setattr__(self, 'retry_on_timeout', bool(self.retry_on_timeout))

    @property
    def attempts(self) -> int:
        """Attempts one call makes at most: ``max_retries + 1``."""
        return self.max_retries + 1

    @property
    def probe_timeout_s(self) -> float:
        """Timeout of one health probe (seconds): ``timeout_s`` clamped to [1, 5]."""
        return min(5.0, max(1.0, self.timeout_s))

    @property
    def worst_case_s(self) -> float:
        """Upper bound in seconds on one call before it returns or raises (slot waits, attempts, backoffs)."""
        backoffs = sum(min(self.max_backoff_s, self.retry_backoff_s * 2.0**k) for k in range(self.max_retries))
        return (self.max_retries + 1) * ABANDON_FACTOR * self.timeout_s + backoffs
