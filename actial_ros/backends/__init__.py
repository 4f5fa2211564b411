"""Model backends: the interface, the vLLM (OpenAI-compatible) client and the classical geometry baseline.

:func:`create_backend` builds one by name. :class:`VllmBackend` is imported lazily (on first use), so
the geometry baseline works without loading the ``openai`` client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from actial_ros.backends.base import Backend, BackendAnswer, BackendHealth
from actial_ros.backends.geometry import GeometryBackend, PoseEstimate, relative_pose_from_recover_pose
from actial_ros.errors import ConfigError

if TYPE_CHECKING:
    from actial_ros.backends.vllm import VllmBackend

__all__ = [
    'BACKEND_NAMES',
    'Backend',
    'BackendAnswer',
    'BackendHealth',
    'GeometryBackend',
    'PoseEstimate',
    'VllmBackend',
    'create_backend',
    'relative_pose_from_recover_pose',
]

BACKEND_NAMES: tuple[str, ...] = ('geometry', 'vllm')
"""Names :func:`create_backend` accepts."""


def __getattr__(name: str) -> Any:
    if name == 'VllmBackend':
        from actial_ros.backends.vllm import VllmBackend

        return VllmBackend
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def create_backend(name: str, **options: Any) -> Backend:
    """Create a backend by name.

    Args:
        name: ``'vllm'`` (:class:`VllmBackend`; needs at least ``model=``) or ``'geometry'``
            (:class:`GeometryBackend`); case and surrounding spaces are ignored.
        **options: keyword arguments of that backend's constructor.

    Raises:
        ConfigError: unknown name (the message lists the known ones), an unknown option, or an invalid
            option value.
    """
    key = name.strip().lower() if isinstance(name, str) else ''
    if key == 'geometry':
        factory: Any = GeometryBackend
    elif key == 'vllm':
        from actial_ros.backends.vllm import VllmBackend

        factory = VllmBackend
    else:
        raise ConfigError(f'unknown backend {name!r}; known: {", ".join(BACKEND_NAMES)}')
    try:
        backend: Backend = factory(**options)
    except TypeError as exc:
        raise ConfigError(f'invalid options for the {key} backend: {exc}') from None
    return backend
