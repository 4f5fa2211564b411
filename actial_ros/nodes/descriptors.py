"""``ParameterDescriptor`` of a :class:`~actial_ros.parameter_spec.ParameterSpec` (shared by every node)."""

from __future__ import annotations

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType

from actial_ros.parameter_spec import ParameterSpec

__all__ = ['parameter_descriptor']


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
