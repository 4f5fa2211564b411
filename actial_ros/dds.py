"""DDS environment for local runs: a Fast DDS profile with a 16 MB shared-memory segment, loopback
discovery and an isolated domain.

Why: Fast DDS's default 512 KB shared-memory segment cannot carry a 640x480 rgb8 image; best-effort
delivery then dropped 60-100 % of images on these machines (``../shared/notes/ENVIRONMENT.md``).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

__all__ = ['FASTDDS_SHM_PROFILE_XML', 'local_ros_environment', 'write_fastdds_profile']

FASTDDS_SHM_PROFILE_XML = """<?xml version="1.0" encoding="UTF-8"?>
<!-- actial_ros: Fast DDS default participant profile with a 16 MB shared-memory segment, so that
     uncompressed camera images fit (the default 512 KB segment drops them), plus UDPv4. -->
<dds xmlns="http://www.eprosima.com">
  <profiles>
    <transport_descriptors>
      <transport_descriptor>
        <transport_id>actial_shm_16mb</transport_id>
        <type>SHM</type>
        <segment_size>16777216</segment_size>
      </transport_descriptor>
      <transport_descriptor>
        <transport_id>actial_udp</transport_id>
        <type>UDPv4</type>
      </transport_descriptor>
    </transport_descriptors>
    <participant profile_name="actial_ros_participant" is_default_profile="true">
      <rtps>
        <useBuiltinTransports>false</useBuiltinTransports>
        <userTransports>
          <transport_id>actial_shm_16mb</transport_id>
          <transport_id>actial_udp</transport_id>
        </userTransports>
      </rtps>
    </participant>
  </profiles>
</dds>
"""
"""Fast DDS XML profile (``FASTDDS_DEFAULT_PROFILES_FILE``) with a 16 MB SHM segment."""


def write_fastdds_profile(directory: str | Path | None = None) -> Path:
    """Write :data:`FASTDDS_SHM_PROFILE_XML` to ``directory`` (default: a new temp dir); returns the path."""
    folder = Path(directory) if directory is not None else Path(tempfile.mkdtemp(prefix='actial_ros_dds_'))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / 'fastdds_shm_16mb.xml'
    path.write_text(FASTDDS_SHM_PROFILE_XML)
    return path


def local_ros_environment(
    *, domain_id: int | None = None, base: Mapping[str, str] | None = None, profile_dir: str | Path | None = None
) -> dict[str, str]:
    """Environment for ROS 2 processes that talk over loopback only, in their own DDS domain.

    Sets ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` (honoured by Kilted; ``ROS_LOCALHOST_ONLY`` is
    not), ``ROS_DOMAIN_ID`` (given, or the caller's if set, else derived from the process id in
    [1, 100]) and ``FASTDDS_DEFAULT_PROFILES_FILE`` (unless the caller set one).
    """
    env = dict(os.environ if base is None else base)
    env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    if domain_id is not None:
        env['ROS_DOMAIN_ID'] = str(domain_id)
    else:
        env.setdefault('ROS_DOMAIN_ID', str(1 + os.getpid() % 100))
    if 'FASTDDS_DEFAULT_PROFILES_FILE' not in env:
        env['FASTDDS_DEFAULT_PROFILES_FILE'] = str(write_fastdds_profile(profile_dir))
    env.setdefault('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
    return env
