"""Exceptions raised by actial_ros.

Every error the package raises on purpose derives from :class:`ActialError`, so callers can catch the
whole family with one clause.
"""

from __future__ import annotations

__all__ = [
    'ActialError',
    'BackendError',
    'CaptureError',
    'ConfigError',
    'ImageError',
    'PoseError',
]


class ActialError(Exception):
    """Base class of every error raised by actial_ros."""


class PoseError(ActialError, ValueError):
    """A pose, rotation or transform is malformed (wrong shape, NaN, not a rotation)."""


class ImageError(ActialError, ValueError):
    """An image or image message cannot be decoded or encoded (bad encoding, size, step, data)."""


class CaptureError(ActialError):
    """A capture on disk (images plus poses) is missing files or is inconsistent."""


class ConfigError(ActialError, ValueError):
    """A configuration value or parameter combination is invalid."""


class BackendError(ActialError):
    """A model backend failed to produce an answer (transport error, server error, bad reply)."""
