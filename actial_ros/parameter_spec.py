"""Declarative node parameters: name, default, meaning and range, in one ROS-free record.

Nodes keep a tuple of these (the single source of their YAML files and README tables) and turn each
into a ``ParameterDescriptor`` with :func:`actial_ros.nodes.descriptors.parameter_descriptor`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ['ParameterSpec']


@dataclass(frozen=True)
class ParameterSpec:
    """One node parameter.

    Attributes:
        name: parameter name.
        default: default value; its Python type is the parameter's type (bool, int, float, str, lists).
        description: what it means, with its unit.
        low, high: inclusive range of a numeric parameter (both or neither).
        read_only: whether it can only be set at start-up.
    """

    name: str
    default: Any
    description: str
    low: float | None = None
    high: float | None = None
    read_only: bool = False
