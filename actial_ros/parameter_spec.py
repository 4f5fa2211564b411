"""Declarative node parameters: name, default, meaning and range, in one ROS-free record.

Nodes keep a tuple of these (the single source of their YAML files and README tables) and turn each
into a ``ParameterDescriptor`` with :func:`actial_ros.nodes.descriptors.parameter_descriptor`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from actial_ros.errors import ConfigError

__all__ = ['ParameterSpec', 'alternatives', 'check_choices']


@dataclass(frozen=True)
class ParameterSpec:
    """One node parameter.

    Attributes:
        name: parameter name.
        default: default value; its Python type is the parameter's type (bool, int, float, str, lists).
        description: what it means, with its unit.
        low, high: inclusive range of a numeric parameter (both or neither).
        read_only: whether it can only be set at start-up.
        choices: the accepted values of a string parameter (``None``: any); checked by :meth:`check` (ROS
            descriptors cannot express them: :func:`actial_ros.nodes.descriptors.parameter_descriptor` writes
            them into ``additional_constraints`` for ``ros2 param describe``).
    """

    name: str
    default: Any
    description: str
    low: float | None = None
    high: float | None = None
    read_only: bool = False
    choices: tuple[str, ...] | None = None

    def check(self, value: Any, *, name: str | None = None) -> None:
        """Refuse a value outside :attr:`choices` (nothing to check without them).

        Args:
            value: the parameter's value.
            name: the name to report (default: :attr:`name`; e.g. ``left.image_transport``).

        Raises:
            ConfigError: ``value`` is not one of :attr:`choices`, e.g. ``image_transport must be 'raw' or
                'compressed', got 'theora'``.
        """
        if self.choices is not None and value not in self.choices:
            raise ConfigError(f'{name or self.name} must be {alternatives(self.choices)}, got {value!r}')


def alternatives(choices: Iterable[str]) -> str:
    """``'a' or 'b'``, ``'a', 'b' or 'c'``: choices as a sentence reads them."""
    quoted = [repr(choice) for choice in choices]
    return quoted[0] if len(quoted) == 1 else f'{", ".join(quoted[:-1])} or {quoted[-1]}'


def check_choices(specs: Iterable[ParameterSpec], values: Mapping[str, Any]) -> None:
    """:meth:`ParameterSpec.check` every spec with choices against ``values`` (by name; absent names skipped).

    Raises:
        ConfigError: the first value outside its choices.
    """
    for spec in specs:
        if spec.name in values:
            spec.check(values[spec.name])
