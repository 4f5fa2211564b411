"""Per-camera parameters shared by the nodes that handle several cameras.

The primary camera is configured by top-level parameters (``camera_id``, ``image_topic``,
``image_transport``, ``camera_info_topic``, ``extrinsic_translation``, ``extrinsic_rotation_xyzw``).
Every name in ``additional_cameras`` (a string array, empty by default) adds a camera configured by
parameters under that name, e.g. for ``additional_cameras: [left]``::

    left.image_topic: /left/image_raw            # default /<name>/image_raw
    left.image_transport: raw                    # default: the primary camera's
    left.camera_info_topic: /left/camera_info    # default /<name>/camera_info
    left.extrinsic_translation: [0.0, 0.1, 0.0]  # T_base_camera_optical, metres, base_link
    left.extrinsic_rotation_xyzw: [...]          # default: forward-looking optical frame
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from rcl_interfaces.msg import ParameterDescriptor, ParameterType
from rclpy.exceptions import ParameterUninitializedException
from rclpy.node import Node
from rclpy.parameter import Parameter

from actial_ros.enums import IMAGE_TRANSPORTS
from actial_ros.errors import ActialError, ConfigError
from actial_ros.geometry import BASE_TO_OPTICAL_QUATERNION_XYZW, base_to_optical_extrinsic
from actial_ros.parameter_spec import ParameterSpec

__all__ = ['CameraSpec', 'declare_additional_cameras', 'extrinsic_from_values']

_TRANSPORT = ParameterSpec('image_transport', 'raw', 'image transport of one camera', choices=IMAGE_TRANSPORTS)


@dataclass(frozen=True, slots=True)
class CameraSpec:
    """One camera of a node.

    Attributes:
        camera_id: its name (in answers, diagnostics and frame ids).
        image_topic: Image or CompressedImage topic.
        image_transport: ``raw`` or ``compressed``.
        camera_info_topic: CameraInfo topic.
        extrinsic: ``T_base_camera_optical``, ``(4, 4)`` float64.
        prefix: parameter prefix (``''`` for the primary camera, ``'<name>.'`` otherwise).
    """

    camera_id: str
    image_topic: str
    image_transport: str
    camera_info_topic: str
    extrinsic: npt.NDArray[np.float64]
    prefix: str = ''


def extrinsic_from_values(translation: Any, rotation_xyzw: Any, *, name: str = 'extrinsic') -> npt.NDArray[np.float64]:
    """``T_base_camera_optical`` from parameter values (3 floats, 4 floats).

    Raises:
        ConfigError: wrong lengths, NaN, or a quaternion far from unit norm.
    """
    try:
        return base_to_optical_extrinsic(list(translation), list(rotation_xyzw))
    except ActialError as error:
        raise ConfigError(f'invalid {name}: {error}') from error


def declare_additional_cameras(node: Node, *, default_transport: str, read_only: bool = True) -> list[CameraSpec]:
    """Declare ``additional_cameras`` and the per-camera parameters of each listed name.

    Raises:
        ConfigError: an invalid or duplicate camera name, an unknown transport or a bad extrinsic.
    """
    node.declare_parameter(
        'additional_cameras',
        Parameter.Type.STRING_ARRAY,
        ParameterDescriptor(
            type=ParameterType.PARAMETER_STRING_ARRAY,
            read_only=read_only,
            description='Further cameras, each configured by <name>.image_topic, <name>.camera_info_topic, '
            '<name>.image_transport, <name>.extrinsic_translation, <name>.extrinsic_rotation_xyzw.',
        ),
    )
    try:
        names = [str(n) for n in node.get_parameter('additional_cameras').value]
    except ParameterUninitializedException:
        names = []
    specs: list[CameraSpec] = []
    for name in names:
        if not name or not name.replace('_', '').isalnum() or name in {s.camera_id for s in specs}:
            raise ConfigError(f'invalid or duplicate camera name {name!r} in additional_cameras')
        defaults: dict[str, Any] = {
            'image_topic': f'/{name}/image_raw',
            'image_transport': default_transport,
            'camera_info_topic': f'/{name}/camera_info',
            'extrinsic_translation': [0.0, 0.0, 0.0],
            'extrinsic_rotation_xyzw': list(BASE_TO_OPTICAL_QUATERNION_XYZW),
        }
        values = {}
        for key, default in defaults.items():
            descriptor = ParameterDescriptor(description=f'{key} of camera {name}', read_only=read_only)
            values[key] = node.declare_parameter(f'{name}.{key}', default, descriptor).value
        _TRANSPORT.check(values['image_transport'], name=f'{name}.image_transport')
        specs.append(
            CameraSpec(
                camera_id=name,
                image_topic=str(values['image_topic']),
                image_transport=str(values['image_transport']),
                camera_info_topic=str(values['camera_info_topic']),
                extrinsic=extrinsic_from_values(
                    values['extrinsic_translation'], values['extrinsic_rotation_xyzw'], name=f'{name} extrinsic'
                ),
                prefix=f'{name}.',
            )
        )
    return specs
