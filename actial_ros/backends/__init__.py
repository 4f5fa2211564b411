"""Model backends: the interface, the vLLM (OpenAI-compatible) client, the in-process transformers
backend and the classical two-view geometry baseline (:mod:`~actial_ros.backends.two_view_geometry`, the
``geometry`` backend; not the core's :mod:`actial_ros.geometry`, the pose conventions).

:func:`create_backend` builds one by name. :class:`VllmBackend` (and its :class:`VllmOptions`) and
:class:`TransformersBackend` are imported lazily (on first use), so the geometry baseline works without
loading the ``openai`` client, and nothing here imports torch until a transformers backend is created.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from actial_ros.backends.base import Backend, BackendAnswer, BackendHealth
from actial_ros.backends.two_view_geometry import GeometryBackend, PoseEstimate, relative_pose_from_recover_pose
from actial_ros.errors import ConfigError

if TYPE_CHECKING:
    from actial_ros.backends.transformers_backend import TransformersBackend
    from actial_ros.backends.vllm import VllmBackend, VllmOptions

__all__ = [
    'BACKEND_NAMES',
    'Backend',
    'BackendAnswer',
    'BackendHealth',
    'GeometryBackend',
    'PoseEstimate',
    'TransformersBackend',
    'VllmBackend',
    'VllmOptions',
    'create_backend',
    'relative_pose_from_recover_pose',
]

BACKEND_NAMES: tuple[str, ...] = ('geometry', 'transformers', 'vllm')
"""Names :func:`create_backend` accepts."""


def __getattr__(name: str) -> Any:
    if name in ('VllmBackend', 'VllmOptions'):
        from actial_ros.backends import vllm

        return getattr(vllm, name)
    if name == 'TransformersBackend':
        from actial_ros.backends.transformers_backend import TransformersBackend

        return TransformersBackend
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def _vllm_backend(**settings: Any) -> Backend:
    """A :class:`VllmBackend` with the :class:`~actial_ros.backends.vllm.VllmOptions` of these fields."""
    from actial_ros.backends.vllm import VllmBackend, VllmOptions

    return VllmBackend(options=VllmOptions(**settings))


def create_backend(name: str, **options: Any) -> Backend:
    """Create a backend by name.

    Args:
        name: ``'vllm'`` (:class:`VllmBackend`; needs at least ``model=``, the served name),
            ``'transformers'`` (:class:`TransformersBackend`; needs ``model=``, a checkpoint directory or hub
            id; loads it) or ``'geometry'`` (:class:`GeometryBackend`); case and surrounding spaces are ignored.
        **options: keyword arguments of that backend's constructor; for ``'vllm'``, the fields of
            :class:`~actial_ros.backends.vllm.VllmOptions`.

    Raises:
        ConfigError: unknown name (the message lists the known ones), an unknown option, or an invalid
            option value.
    """
    key = name.strip().lower() if isinstance(name, str) else ''
    if key == 'geometry':
        factory: Any = GeometryBackend
    elif key == 'vllm':
        factory = _vllm_backend
    elif key == 'transformers':
        from actial_ros.backends.transformers_backend import TransformersBackend

        factory = TransformersBackend
    else:
        raise ConfigError(f'unknown backend {name!r}; known: {", ".join(BACKEND_NAMES)}')
    try:
        backend: Backend = factory(**options)
    except TypeError as exc:
        raise ConfigError(f'invalid options for the {key} backend: {exc}') from None
    return backend
