"""``recording.json``: the file a recorder writes beside a recording's parts, written and read.

``bag_recorder`` (:mod:`actial_ros.nodes.bag_recorder`), :func:`actial_ros.bags.export.write_rig_bag` and the
simulator write it: the recording's ``parameters`` (topics; a single-camera recorder's
``extrinsic_translation``, ``extrinsic_rotation_xyzw`` and ``camera_id``), its ``cameras`` (per camera:
``name``, ``image_topic``, ``image_transport``, ``camera_info_topic``, ``extrinsic_translation``,
``extrinsic_rotation_xyzw``; :func:`recording_camera_entry`), counters, and ``"closed": true`` once closed
(:func:`write_recording_json` writes a closed one). Its presence makes a folder of parts one recording
(:func:`actial_ros.bags.files.bag_parts`).

:class:`RecordingFile` reads it for the bag reader (:mod:`actial_ros.sources.bag_layout`): the cameras
(:class:`~actial_ros.bags.camera_specs.BagCamera`, each with the topics and extrinsic it was recorded with) and
a single-camera recorder's extrinsic and camera name. It is read on first use, so a broken file is an error
only for a reading that needs it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy.typing as npt

from actial_ros.bags.camera_specs import BagCamera, camera_from_mapping, extrinsic_tuple
from actial_ros.errors import CaptureError, ConfigError
from actial_ros.message_fields import pose_fields

__all__ = ['RECORDING_FILENAME', 'RecordingFile', 'recording_camera_entry', 'write_recording_json']

RECORDING_FILENAME = 'recording.json'
"""File the recorder writes beside its parts: parameters (topics, extrinsic) and counters."""


def recording_camera_entry(
    name: str,
    image_topic: str,
    camera_info_topic: str,
    extrinsic: npt.ArrayLike,
    *,
    image_transport: str = 'raw',
) -> dict[str, Any]:
    """One camera of a ``recording.json`` ``cameras`` list (what :func:`camera_from_mapping` reads back).

    Args:
        extrinsic: ``T_base_camera_optical``, a ``(4, 4)`` transform (metres, ``base_link`` frame).
    """
    (tx, ty, tz), quaternion = pose_fields(extrinsic)
    return {
        'name': name,
        'image_topic': image_topic,
        'image_transport': image_transport,
        'camera_info_topic': camera_info_topic,
        'extrinsic_translation': [tx, ty, tz],
        'extrinsic_rotation_xyzw': list(quaternion),
    }


def write_recording_json(folder: str | Path, cameras: Sequence[dict[str, Any]], *, odometry_topic: str) -> Path:
    """Write ``recording.json`` into the bag ``folder``: its cameras (:func:`recording_camera_entry`) and
    odometry topic, marked closed, so that a build or replay of the bag needs no camera flags.

    Returns:
        The file written.
    """
    target = Path(folder) / RECORDING_FILENAME
    record = {'cameras': list(cameras), 'parameters': {'odometry_topic': odometry_topic}, 'closed': True}
    target.write_text(json.dumps(record, indent=2, sort_keys=True) + '\n')
    return target


class RecordingFile:
    """The ``recording.json`` beside a recording, read on first use (errors only when it is consulted).

    Attributes:
        path: ``recording.json`` in the recording folder (beside a bare ``.mcap``/``.db3`` file).
    """

    def __init__(self, root: Path) -> None:
        self.path = root / RECORDING_FILENAME if root.is_dir() else root.parent / RECORDING_FILENAME
        self._data: dict[str, Any] | None = None
        self._loaded = False

    def data(self) -> dict[str, Any] | None:
        """The file's JSON object; ``None`` without a file.

        Raises:
            CaptureError: unreadable, or not a JSON object.
        """
        if not self._loaded:
            self._loaded = True
            if self.path.is_file():
                try:
                    data = json.loads(self.path.read_text())
                except (OSError, ValueError) as error:
                    raise CaptureError(f'{self.path}: cannot read the recording: {error}') from error
                if not isinstance(data, dict):
                    raise CaptureError(f'{self.path}: not a recording (a JSON object is expected)')
                self._data = data
        return self._data

    def cameras(self) -> list[BagCamera]:
        """The cameras it lists (empty without a file or a ``cameras`` list).

        Raises:
            CaptureError: an unreadable file or camera entry.
        """
        data = self.data()
        entries = data.get('cameras') if data is not None else None
        if not entries:
            return []
        try:
            if not isinstance(entries, list):
                raise ConfigError('"cameras" is not a list')
            return [camera_from_mapping(entry, str(self.path)) for entry in entries]
        except ConfigError as error:
            raise CaptureError(f'{self.path}: cannot read the cameras: {error}') from error

    def legacy_extrinsic(self) -> tuple[float, ...] | None:
        """The top-level extrinsic parameters (a single-camera recorder's)."""
        data = self.data()
        if data is None:
            return None
        params = data.get('parameters', data)
        if isinstance(params, dict) and 'cameras' in data and 'extrinsic_translation' not in params:
            return None  # the extrinsics are in the camera list only
        try:
            return extrinsic_tuple(params['extrinsic_translation'], params['extrinsic_rotation_xyzw'], 'recording')
        except (KeyError, TypeError, ConfigError) as error:
            raise CaptureError(f'{self.path}: cannot read the extrinsic: {error}') from error

    def legacy_name(self) -> str:
        """A single-camera recorder's ``camera_id``, else ``'camera'``."""
        data = self.data()
        params = data.get('parameters', data) if data is not None else {}
        name = params.get('camera_id') if isinstance(params, dict) else None
        return name if isinstance(name, str) and name else 'camera'
