"""Camera specs of a rosbag2 recording: the cameras a user names on the command line or in a file.

A :class:`BagCamera` names one camera of a multi-camera recording: its image topic, CameraInfo topic and
extrinsic ``T_base_camera_optical``, each optional (what is missing comes from the recording's
``recording.json``, :mod:`actial_ros.bags.recording`). They come from

* ``--camera NAME:IMAGE_TOPIC[:CAMERA_INFO_TOPIC]`` (:func:`parse_camera_arg`);
* ``--extrinsic NAME:TX,TY,TZ,QX,QY,QZ,QW`` (:func:`parse_extrinsic_arg`);
* ``--camera-file`` (:func:`load_camera_file`): a JSON or YAML list of camera mappings with the keys of a
  ``recording.json`` camera entry (:func:`camera_from_mapping`), so a recorder's ``recording.json`` is a
  camera file;

merged by :func:`bag_cameras_from_args` into ``SourceOptions.cameras``
(:class:`actial_ros.sources.base.SourceOptions`). A camera without CameraInfo topic reads
``<namespace>/camera_info`` beside its image topic (:func:`default_camera_info_topic`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from actial_ros.errors import ConfigError, PoseError
from actial_ros.geometry import BASE_TO_OPTICAL_QUATERNION_XYZW, base_to_optical_extrinsic

__all__ = [
    'BagCamera',
    'bag_cameras_from_args',
    'camera_from_mapping',
    'default_camera_info_topic',
    'extrinsic_tuple',
    'load_camera_file',
    'parse_camera_arg',
    'parse_extrinsic_arg',
]

_CAMERA_NAME = re.compile(r'^[A-Za-z0-9_]+$')


@dataclass(frozen=True, slots=True)
class BagCamera:
    """One camera of a multi-camera rosbag source (``--camera``, ``--extrinsic``, ``--camera-file``).

    Attributes:
        name: the camera's name (letters, digits, ``_``); bag views are named ``NAME@STAMP_NS``.
        image_topic: its Image or CompressedImage topic; empty: the topic ``recording.json`` lists for
            this name (an entry that only overrides the extrinsic).
        camera_info_topic: its CameraInfo topic; empty: the recording's, else ``<namespace>/camera_info``
            next to the image topic (``/left/image_raw/compressed`` -> ``/left/camera_info``).
        extrinsic: ``T_base_camera_optical`` as 16 row-major floats (metres, ``base_link``); ``None``:
            the one ``recording.json`` stores for this camera.

    Raises:
        ConfigError: an invalid name or an extrinsic that is not 16 values.
    """

    name: str
    image_topic: str = ''
    camera_info_topic: str = ''
    extrinsic: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if not _CAMERA_NAME.match(self.name):
            raise ConfigError(f'invalid camera name {self.name!r} (letters, digits and _ only)')
        if self.extrinsic is not None and len(self.extrinsic) != 16:
            raise ConfigError(f'camera {self.name}: extrinsic must hold 16 row-major values')


def default_camera_info_topic(image_topic: str) -> str:
    """``<namespace>/camera_info`` beside an image topic (a trailing ``/compressed`` is ignored):
    ``/left/image_raw`` and ``/left/image_raw/compressed`` give ``/left/camera_info``."""
    topic = image_topic.rstrip('/')
    if topic.endswith('/compressed'):
        topic = topic[: -len('/compressed')]
    namespace = topic.rsplit('/', 1)[0]
    return f'{namespace}/camera_info'


def extrinsic_tuple(translation: Any, rotation_xyzw: Any, where: str) -> tuple[float, ...]:
    """``T_base_camera_optical`` as 16 row-major floats from a translation (metres, ``base_link``) and a
    rotation quaternion ``(x, y, z, w)``.

    Raises:
        ConfigError: invalid values (``where`` names them in the message).
    """
    try:
        matrix = base_to_optical_extrinsic(
            [float(v) for v in translation],
            [float(v) for v in rotation_xyzw],
        )
    except (PoseError, TypeError, ValueError) as error:
        raise ConfigError(f'{where}: invalid extrinsic: {error}') from error
    return tuple(float(v) for v in matrix.reshape(-1))


def camera_from_mapping(entry: Any, where: str = 'camera') -> BagCamera:
    """A :class:`BagCamera` from a mapping with the keys of a ``recording.json`` camera entry.

    Keys: ``name`` (required), ``image_topic``, ``camera_info_topic``, ``extrinsic_translation``
    (3 floats, metres, ``base_link``; default zeros) and ``extrinsic_rotation_xyzw`` (4 floats; default:
    forward-looking); without either extrinsic key the camera has no extrinsic (taken from elsewhere).

    Raises:
        ConfigError: not a mapping, no name, or invalid values.
    """
    if not isinstance(entry, dict) or not isinstance(entry.get('name'), str):
        raise ConfigError(f'{where}: a camera needs at least a "name" (got {entry!r})')
    extrinsic = None
    if 'extrinsic_translation' in entry or 'extrinsic_rotation_xyzw' in entry:
        extrinsic = extrinsic_tuple(
            entry.get('extrinsic_translation', (0.0, 0.0, 0.0)),
            entry.get('extrinsic_rotation_xyzw', BASE_TO_OPTICAL_QUATERNION_XYZW),
            f'{where}: camera {entry["name"]}',
        )
    return BagCamera(
        name=str(entry['name']),
        image_topic=str(entry.get('image_topic') or ''),
        camera_info_topic=str(entry.get('camera_info_topic') or ''),
        extrinsic=extrinsic,
    )


def load_camera_file(path: str | Path) -> tuple[BagCamera, ...]:
    """The cameras of a JSON or YAML camera file: a list of camera mappings, or a mapping with a
    ``cameras`` list (so a recorder's ``recording.json`` is a camera file); keys as
    :func:`camera_from_mapping`.

    Raises:
        ConfigError: unreadable file, bad syntax or bad entries.
    """
    import yaml

    file = Path(path)
    try:
        text = file.read_text()
        data = yaml.safe_load(text) if file.suffix.lower() in ('.yaml', '.yml') else json.loads(text)
    except (OSError, ValueError, yaml.YAMLError) as error:
        raise ConfigError(f'cannot read camera file {file}: {error}') from error
    entries = data.get('cameras') if isinstance(data, dict) else data
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f'{file}: expected a list of cameras (or a mapping with a "cameras" list)')
    return tuple(camera_from_mapping(entry, str(file)) for entry in entries)


def parse_camera_arg(text: str) -> BagCamera:
    """``NAME:IMAGE_TOPIC[:CAMERA_INFO_TOPIC]`` (``--camera``) as a :class:`BagCamera` without extrinsic.

    Raises:
        ConfigError: malformed text (ROS topic names never contain ``:``).
    """
    parts = text.split(':')
    if len(parts) not in (2, 3) or not all(parts[:2]):
        raise ConfigError(f'a camera is NAME:IMAGE_TOPIC[:CAMERA_INFO_TOPIC], got {text!r}')
    return BagCamera(name=parts[0], image_topic=parts[1], camera_info_topic=parts[2] if len(parts) == 3 else '')


def parse_extrinsic_arg(text: str) -> tuple[str, tuple[float, ...]]:
    """``NAME:TX,TY,TZ,QX,QY,QZ,QW`` (``--extrinsic``): the camera name and ``T_base_camera_optical`` as
    16 row-major floats (translation in metres in ``base_link``, rotation quaternion x, y, z, w).

    Raises:
        ConfigError: malformed text or an invalid quaternion.
    """
    name, sep, values = text.partition(':')
    try:
        numbers = [float(v) for v in values.split(',')]
    except ValueError:
        numbers = []
    if not sep or not name or len(numbers) != 7:
        raise ConfigError(f'an extrinsic is NAME:TX,TY,TZ,QX,QY,QZ,QW, got {text!r}')
    return name, extrinsic_tuple(numbers[:3], numbers[3:], f'--extrinsic {name}')


def bag_cameras_from_args(
    cameras: Sequence[str] = (), extrinsics: Sequence[str] = (), camera_file: str | Path | None = None
) -> tuple[BagCamera, ...]:
    """Merge ``--camera-file``, ``--camera`` and ``--extrinsic`` flags into ``SourceOptions.cameras``
    (:attr:`actial_ros.sources.base.SourceOptions.cameras`).

    A camera file and ``--camera`` flags list cameras (names must not repeat); ``--extrinsic NAME:...``
    sets the extrinsic of a listed camera, or, when no camera is listed, overrides the extrinsic of the
    camera ``NAME`` of each recording's ``recording.json``.

    Raises:
        ConfigError: malformed flags, repeated names, or an extrinsic for a camera that is not listed.
    """
    listed: list[BagCamera] = list(load_camera_file(camera_file)) if camera_file else []
    listed += [parse_camera_arg(text) for text in cameras]
    names = [camera.name for camera in listed]
    if len(set(names)) != len(names):
        raise ConfigError(f'camera names repeat: {names}')
    by_name = {camera.name: camera for camera in listed}
    overrides: dict[str, BagCamera] = {}
    for text in extrinsics:
        name, extrinsic = parse_extrinsic_arg(text)
        if name in overrides:
            raise ConfigError(f'two extrinsics for camera {name}')
        if listed and name not in by_name:
            raise ConfigError(f'--extrinsic {name}: no camera {name} (cameras: {", ".join(names)})')
        overrides[name] = BagCamera(name=name, extrinsic=extrinsic)
    if not listed:
        return tuple(overrides.values())
    return tuple(
        replace(camera, extrinsic=overrides[camera.name].extrinsic) if camera.name in overrides else camera
        for camera in listed
    )
