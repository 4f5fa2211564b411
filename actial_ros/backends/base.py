"""The interface every model backend implements (vLLM, geometry, later transformers)."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

from actial_ros.frame import Frame, Pair
from actial_ros.questions import Question

__all__ = ['Backend', 'BackendAnswer', 'BackendHealth']


@dataclass(frozen=True, slots=True)
class BackendAnswer:
    """A backend's reply to one question.

    Attributes:
        backend: backend name (``vllm``, ``geometry``, ...).
        raw_text: the model's raw output ('' when there is none).
        letter: the parsed option letter (upper case) or ``None`` (abstained, unparsed or free-form).
        latency_s: wall-clock seconds spent answering, retries included.
        abstained: True when the backend chose not to answer (e.g. too few inliers); not an error.
        reason: why it abstained or why ``letter`` is ``None`` (free text), else ``None``.
        usage: token usage reported by the server (``prompt_tokens``, ``completion_tokens``, ...).
    """

    backend: str
    raw_text: str
    letter: str | None
    latency_s: float
    abstained: bool = False
    reason: str | None = None
    usage: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BackendHealth:
    """Health of a backend as shown in ``/diagnostics``.

    Attributes:
        ok: whether the last request (or probe) succeeded.
        message: a short human-readable status.
        consecutive_failures: failed requests since the last success.
    """

    ok: bool
    message: str
    consecutive_failures: int = 0


class Backend(abc.ABC):
    """Answers viewpoint questions about a pair and free-form questions about images.

    Implementations must be thread-safe: the reasoner calls :meth:`answer` from several worker threads
    at once (up to its in-flight bound). They never raise for a model that answers badly (that is an
    unparsed answer); they raise :class:`actial_ros.errors.BackendError` when no answer could be
    obtained at all (server down after retries, timeout, bad credentials).
    """

    name: str = 'backend'
    streams: bool = False
    """True when :meth:`ask` accepts ``on_text`` and reports the reply as it is generated."""

    @abc.abstractmethod
    def answer(self, pair: Pair, question: Question) -> BackendAnswer:
        """Answer one multiple-choice viewpoint question about ``pair``.

        Raises:
            BackendError: no answer could be obtained.
        """

    @abc.abstractmethod
    def ask(self, frames: list[Frame], prompt: str) -> BackendAnswer:
        """Answer a free-form spatial question about one or more frames (``letter`` is ``None``).

        Raises:
            BackendError: no answer could be obtained.
        """

    def health(self) -> BackendHealth:
        """Current health (default: always healthy)."""
        return BackendHealth(ok=True, message='ok')

    def probe(self) -> list[str]:
        """Check once, now, that the backend can answer (a model server: reachable, accepting the key,
        serving the model). The node calls it when it configures.

        Returns:
            What the check learned (e.g. the model ids served); empty when there is nothing to check
            (the default: an in-process backend is usable once built).

        Raises:
            BackendError: the backend cannot answer now; the message says why.
        """
        return []

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and threads. Idempotent."""
