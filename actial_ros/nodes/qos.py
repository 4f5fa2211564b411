"""The QoS profiles the package's nodes offer by name (a node parameter picks one)."""

from __future__ import annotations

from rclpy.qos import QoSProfile, qos_profile_sensor_data

from actial_ros.enums import QOS_NAMES
from actial_ros.errors import ConfigError

__all__ = ['QOS_NAMES', 'qos_profile']


def qos_profile(name: str, depth: int) -> QoSProfile:
    """A keep-last profile of ``depth`` messages, best-effort (``sensor_data``) or reliable.

    Raises:
        ConfigError: an unknown name.
    """
    if name == 'sensor_data':
        profile = QoSProfile(depth=depth)
        profile.reliability = qos_profile_sensor_data.reliability
        profile.durability = qos_profile_sensor_data.durability
        profile.history = qos_profile_sensor_data.history
        return profile
    if name == 'reliable':
        return QoSProfile(depth=depth)
    raise ConfigError(f'QoS must be one of {", ".join(QOS_NAMES)}, got {name!r}')
