"""Node parameters from :class:`~actial_ros.parameter_spec.ParameterSpec` records (shared by every node):
their ``ParameterDescriptor`` (:func:`parameter_descriptor`) and their declaration (:func:`declare_parameters`),
the one way the package's nodes declare the parameters of their ``PARAMETERS`` tuple."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType
from rclpy.exceptions import ParameterUninitializedException
from rclpy.node import Node
from rclpy.parameter import Parameter

from actial_ros.parameter_spec import ParameterSpec

__all__ = ['declare_parameters', 'parameter_descriptor']


def parameter_descriptor(
    spec: ParameterSpec, *, read_only: bool | None = None, dynamic_numbers: bool = False
) -> ParameterDescriptor:
    """Descriptor with the spec's description, read-only flag, numeric range and array type.

    Args:
        spec: the parameter.
        read_only: overrides ``spec.read_only`` (nodes whose parameters are all read-only).
        dynamic_numbers: float parameters (and float lists) also accept integers (``-p radius_m:=2``);
            the node then validates them itself.
    """
    descriptor = ParameterDescriptor(
        description=spec.description, read_only=spec.read_only if read_only is None else read_only
    )
    if spec.choices is not None:
        descriptor.additional_constraints = f'one of: {", ".join(spec.choices)}'
    default = spec.default
    if isinstance(default, bool):
        return descriptor
    ranged = spec.low is not None and spec.high is not None
    float_list = isinstance(default, list) and bool(default) and isinstance(default[0], float)
    if dynamic_numbers and (isinstance(default, float) or float_list):
        descriptor.dynamic_typing = True
    if ranged and isinstance(default, int):
        descriptor.integer_range = [IntegerRange(from_value=int(spec.low), to_value=int(spec.high), step=0)]  # type: ignore[arg-type]
    elif ranged and isinstance(default, float):
        descriptor.floating_point_range = [
            FloatingPointRange(from_value=float(spec.low), to_value=float(spec.high), step=0.0)  # type: ignore[arg-type]
        ]
    if isinstance(default, list) and default and isinstance(default[0], str):
        descriptor.type = ParameterType.PARAMETER_STRING_ARRAY
    elif float_list and not dynamic_numbers:
        descriptor.type = ParameterType.PARAMETER_DOUBLE_ARRAY
    return descriptor


def declare_parameters(
    node: Node, specs: Iterable[ParameterSpec], *, read_only: bool | None = None, dynamic_numbers: bool = False
) -> dict[str, Any]:
    """Declare every parameter of ``specs`` on ``node`` (descriptors from :func:`parameter_descriptor`) and
    return their values at start-up, by name.

    A spec whose default is an empty list is a string array (rclpy cannot infer a type from ``[]``): declared
    as ``STRING_ARRAY`` and ``[]`` when not given.

    Args:
        node: the node.
        specs: its parameters.
        read_only: overrides each ``spec.read_only`` (nodes whose parameters are all read-only).
        dynamic_numbers: see :func:`parameter_descriptor`.

    Raises:
        rclpy.exceptions.InvalidParameterTypeException, rclpy.exceptions.InvalidParameterValueException: a
            value given at start-up (``-p``, a params file) of the wrong type or out of range.
    """
    values: dict[str, Any] = {}
    for spec in specs:
        descriptor = parameter_descriptor(spec, read_only=read_only, dynamic_numbers=dynamic_numbers)
        if isinstance(spec.default, list) and not spec.default:
            descriptor.type = ParameterType.PARAMETER_STRING_ARRAY
            node.declare_parameter(spec.name, Parameter.Type.STRING_ARRAY, descriptor)
            try:
                values[spec.name] = list(node.get_parameter(spec.name).value)
            except ParameterUninitializedException:
                values[spec.name] = []
        else:
            values[spec.name] = node.declare_parameter(spec.name, spec.default, descriptor).value
    return values
