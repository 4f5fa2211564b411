"""The cameras and topics a rosbag2 recording is read with (:class:`BagLayout`, :func:`read_bag_layout`).

A recording is read with one odometry stream and one or several cameras, each with its image topic, CameraInfo
topic and extrinsic (:class:`RecordedCamera`); :class:`actial_ros.sources.rosbag.RosbagCapture` poses their
images, and the demo and replay read the layout alone (no message is read).

Topics: an Image or CompressedImage topic, a CameraInfo topic and an Odometry topic, each named in
:class:`~actial_ros.sources.base.SourceOptions` or found by message type (exactly one topic of the
type; image topics with ``depth`` in their name are not candidates when another image topic exists).

Several cameras: the cameras are ``SourceOptions.cameras`` (``--camera NAME:IMAGE_TOPIC[:CAMERA_INFO_TOPIC]``,
``--extrinsic NAME:TX,TY,TZ,QX,QY,QZ,QW``, ``--camera-file``:
:func:`actial_ros.bags.camera_specs.bag_cameras_from_args`), else the cameras ``recording.json`` lists when it
lists several (``bag_recorder`` with ``additional_cameras``, :func:`actial_ros.bags.export.write_rig_bag`). A
camera's missing CameraInfo topic or extrinsic comes from ``recording.json`` (same name, else same image topic;
:class:`actial_ros.bags.recording.RecordingFile`); the CameraInfo topic else defaults to
``<namespace>/camera_info`` beside the image topic. A multi-camera recording is ONE object: its views are every
camera's posed images, named ``NAME@STAMP_NS`` (:func:`view_name`).

The extrinsic of a single camera is ``SourceOptions.extrinsic``, else the one the recorder stored in
``recording.json``, else :func:`actial_ros.geometry.base_to_optical_extrinsic` (with a warning).

Errors (:class:`~actial_ros.errors.CaptureError`): no image or odometry topic, several candidate topics, a
camera whose topic is missing, two cameras on one image topic, a camera of several without extrinsic.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from actial_ros.bags.camera_specs import BagCamera, default_camera_info_topic
from actial_ros.bags.cdr import CAMERA_INFO_TYPE, COMPRESSED_IMAGE_TYPE, IMAGE_TYPE, ODOMETRY_TYPE
from actial_ros.bags.files import bag_parts
from actial_ros.bags.reading import default_typestore, open_part
from actial_ros.bags.recording import RECORDING_FILENAME, RecordingFile
from actial_ros.errors import CaptureError, PoseError
from actial_ros.geometry import BASE_TO_OPTICAL_QUATERNION_XYZW, base_to_optical_extrinsic, validate_transform
from actial_ros.sources.base import DEFAULT_SOURCE_OPTIONS, SourceOptions

__all__ = ['BagLayout', 'RecordedCamera', 'read_bag_layout', 'recording_parts', 'resolve_layout', 'view_name']

_LOG = logging.getLogger(__name__)

_IMAGE_TYPES = (IMAGE_TYPE, COMPRESSED_IMAGE_TYPE)

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class RecordedCamera:
    """One camera of a bag, resolved against the bag's topics.

    Attributes:
        name: the camera's name (views of a multi-camera bag are named ``NAME@STAMP_NS``).
        image_topic: its Image or CompressedImage topic in the bag.
        image_type: ``sensor_msgs/msg/Image`` or ``sensor_msgs/msg/CompressedImage``.
        camera_info_topic: its CameraInfo topic, or ``None`` when the bag has none for it.
        extrinsic: ``T_base_camera_optical`` as 16 row-major floats (metres, ``base_link``).
    """

    name: str
    image_topic: str
    image_type: str
    camera_info_topic: str | None
    extrinsic: tuple[float, ...]

    @property
    def matrix(self) -> FloatArray:
        """``T_base_camera_optical`` as a ``(4, 4)`` float64 array."""
        return np.asarray(self.extrinsic, dtype=np.float64).reshape(4, 4)

    @property
    def transport(self) -> str:
        """``'compressed'`` for CompressedImage, else ``'raw'`` (the nodes' ``image_transport``)."""
        return 'compressed' if self.image_type == COMPRESSED_IMAGE_TYPE else 'raw'


@dataclass(frozen=True, slots=True)
class BagLayout:
    """The cameras and the odometry topic a bag is read with (:func:`read_bag_layout`).

    Attributes:
        cameras: the cameras, in the order they were given (the recording's order otherwise).
        odometry_topic: the one nav_msgs/Odometry topic that poses every camera.
        named_views: view names are ``NAME@STAMP_NS`` (several cameras, or cameras named with
            ``--camera``) rather than the bare stamp (one camera found by type, as before).
    """

    cameras: tuple[RecordedCamera, ...]
    odometry_topic: str
    named_views: bool


def view_name(camera: str, stamp_ns: int) -> str:
    """The name of a multi-camera bag view: ``'{camera}@{stamp_ns}'`` (e.g. ``left@1700000000100000000``)."""
    return f'{camera}@{int(stamp_ns)}'


def _choose(connections: Sequence[Any], types: Sequence[str], wanted: str, what: str, where: Path) -> str | None:
    if wanted:
        matching = [c for c in connections if c.topic == wanted]
        if not matching:
            return None
        bad = [c.msgtype for c in matching if c.msgtype not in types]
        if bad:
            raise CaptureError(f'{where}: topic {wanted} has type {bad[0]}, expected {" or ".join(types)}')
        return wanted
    topics = sorted({c.topic for c in connections if c.msgtype in types})
    if what == 'image' and len(topics) > 1:
        colour = [topic for topic in topics if 'depth' not in topic.lower()]
        topics = colour or topics  # a depth stream beside the colour camera is not a candidate
    if len(topics) > 1:
        hint = ' or read them as several cameras (--camera NAME:TOPIC, --extrinsic NAME:...)' if what == 'image' else ''
        raise CaptureError(f'{where}: several {what} topics {topics}; name one (e.g. --bag-{what}-topic){hint}')
    return topics[0] if topics else None


_DEFAULT_EXTRINSIC = tuple(float(v) for v in base_to_optical_extrinsic().reshape(-1))


def _recorded_or_assumed_extrinsic(recording: RecordingFile, camera: str, where: Path) -> tuple[float, ...]:
    """The recording's single-camera extrinsic, else the default forward-looking mount with a loud warning:
    a camera pitched, turned or raised on the robot gets wrong pitch and yaw labels under that assumption."""
    recorded = recording.legacy_extrinsic()
    if recorded is not None:
        return recorded
    _LOG.warning(
        '%s: camera %s has no recorded extrinsic (no %s with its mount) and none was given: ASSUMING the default '
        'forward-looking mount at base_link (T_base_camera_optical translation 0,0,0, rotation xyzw %s). If the '
        'camera was pitched, turned or offset, the labels are wrong: pass --extrinsic-translation/'
        '--extrinsic-rotation-xyzw or --extrinsic %s:TX,TY,TZ,QX,QY,QZ,QW, or write a %s beside the bag.',
        where,
        camera,
        RECORDING_FILENAME,
        ','.join(f'{v:.6g}' for v in BASE_TO_OPTICAL_QUATERNION_XYZW),
        camera,
        RECORDING_FILENAME,
    )
    return _DEFAULT_EXTRINSIC


def _image_type(connections: Sequence[Any], topic: str, camera: str, where: Path) -> str:
    types = {c.msgtype for c in connections if c.topic == topic}
    if not types:
        raise CaptureError(f'{where}: camera {camera}: no topic {topic} in the bag')
    bad = sorted(types - set(_IMAGE_TYPES))
    if bad:
        raise CaptureError(f'{where}: camera {camera}: topic {topic} has type {bad[0]}, expected an image type')
    return str(sorted(types)[0])


def _info_topic(connections: Sequence[Any], wanted: str, image_topic: str) -> str | None:
    infos = {c.topic for c in connections if c.msgtype == CAMERA_INFO_TYPE}
    if wanted:
        return wanted if wanted in infos else None
    derived = default_camera_info_topic(image_topic)
    return derived if derived in infos else None


def resolve_layout(
    connections: Sequence[Any], options: SourceOptions, recording: RecordingFile, where: Path
) -> BagLayout:
    """The layout of one bag part from its ``connections`` (rosbags ``Connection``: ``.topic``, ``.msgtype``),
    the ``options`` and the ``recording``; ``where`` names the part in errors (module docstring).

    Raises:
        CaptureError: topics or cameras that do not resolve.
    """
    odometry = _choose(connections, (ODOMETRY_TYPE,), options.odometry_topic, 'odometry', where)
    if odometry is None:
        raise CaptureError(
            f'{where}: no nav_msgs/Odometry topic {options.odometry_topic}'.rstrip()
            + ' (the camera pose comes from odometry)'
        )
    single_explicit = not options.cameras and (options.image_topic or options.extrinsic is not None)
    recorded = [] if options.extrinsic is not None and not options.cameras else recording.cameras()
    if options.cameras and options.cameras[0].image_topic:
        specs, named = list(options.cameras), True
    elif options.cameras:
        known = {camera.name: camera for camera in recorded}
        unknown = [camera.name for camera in options.cameras if camera.name not in known]
        if unknown:
            listed = ', '.join(known) or f'none ({recording.path} lists no cameras)'
            raise CaptureError(f'{where}: extrinsic for cameras {unknown} not in the recording (cameras: {listed})')
        overrides = {camera.name: camera.extrinsic for camera in options.cameras}
        specs = [replace(camera, extrinsic=overrides.get(camera.name, camera.extrinsic)) for camera in recorded]
        named = len(specs) > 1
    elif len(recorded) > 1 and not single_explicit:
        specs, named = recorded, True
    else:
        return BagLayout((_single_camera(connections, options, recording, recorded, where),), odometry, False)
    by_name = {camera.name: camera for camera in recorded}
    by_topic = {camera.image_topic: camera for camera in recorded}
    cameras: list[RecordedCamera] = []
    for spec in specs:
        stored = by_name.get(spec.name) or by_topic.get(spec.image_topic)
        image_topic = spec.image_topic or (stored.image_topic if stored else '')
        if not image_topic:
            raise CaptureError(f'{where}: camera {spec.name} has no image topic')
        extrinsic = spec.extrinsic or (stored.extrinsic if stored else None)
        if extrinsic is None and len(specs) == 1:
            extrinsic = _recorded_or_assumed_extrinsic(recording, spec.name, where)
        if extrinsic is None:
            raise CaptureError(
                f'{where}: camera {spec.name} has no extrinsic: give --extrinsic {spec.name}:TX,TY,TZ,QX,QY,QZ,QW '
                '(T_base_camera_optical) or a camera file, or record with bag_recorder (recording.json)'
            )
        info_wanted = spec.camera_info_topic or (stored.camera_info_topic if stored else '')
        cameras.append(
            RecordedCamera(
                name=spec.name,
                image_topic=image_topic,
                image_type=_image_type(connections, image_topic, spec.name, where),
                camera_info_topic=_info_topic(connections, info_wanted, image_topic),
                extrinsic=tuple(extrinsic),
            )
        )
    topics = [camera.image_topic for camera in cameras]
    if len(set(topics)) != len(topics):
        raise CaptureError(f'{where}: two cameras read the same image topic: {topics}')
    return BagLayout(tuple(cameras), odometry, named)


def _single_camera(
    connections: Sequence[Any], options: SourceOptions, recording: RecordingFile, recorded: list[BagCamera], where: Path
) -> RecordedCamera:
    image = _choose(connections, _IMAGE_TYPES, options.image_topic, 'image', where)
    if image is None:
        raise CaptureError(f'{where}: no sensor_msgs/Image or CompressedImage topic {options.image_topic}'.rstrip())
    stored = next((camera for camera in recorded if camera.image_topic == image), None)
    try:
        camera_info = _choose(connections, (CAMERA_INFO_TYPE,), options.camera_info_topic, 'camera_info', where)
    except CaptureError:
        # Several CameraInfo topics (a multi-camera bag read as one camera): the recording's, or the one beside it.
        camera_info = _info_topic(connections, stored.camera_info_topic if stored else '', image)
        if camera_info is None:
            raise
    if options.extrinsic is not None:
        extrinsic = tuple(float(v) for v in options.extrinsic)
    elif stored is not None and stored.extrinsic is not None:
        extrinsic = stored.extrinsic
    else:
        extrinsic = _recorded_or_assumed_extrinsic(recording, recording.legacy_name(), where)
    try:
        validate_transform(np.asarray(extrinsic, dtype=np.float64).reshape(4, 4), name='extrinsic')
    except PoseError as error:
        raise CaptureError(f'{where}: {error}') from error
    name = stored.name if stored is not None else recording.legacy_name()
    image_type = next(c.msgtype for c in connections if c.topic == image)
    return RecordedCamera(name, image, image_type, camera_info, extrinsic)


def recording_parts(path: str | Path) -> tuple[Path, list[Path], RecordingFile]:
    """``(root, parts, recording.json)`` of the recording at ``path`` (a folder, a bare file or a split
    recording: :func:`~actial_ros.bags.files.bag_parts`).

    Raises:
        CaptureError: not a recording (no ``metadata.yaml``, ``.mcap`` or ``.db3``).
    """
    root = Path(path).expanduser().resolve()
    parts = bag_parts(root)
    if not parts:
        raise CaptureError(f'{root} is not a rosbag2 recording (no metadata.yaml, .mcap or .db3)')
    return root, parts, RecordingFile(root)


def read_bag_layout(path: str | Path, options: SourceOptions = DEFAULT_SOURCE_OPTIONS) -> BagLayout:
    """The cameras (topics, message types, extrinsics) and odometry topic a recording is read with, from its
    first readable part and ``recording.json`` (no message is read; what the demo and replay need). A cut part
    is salvaged (:func:`~actial_ros.bags.reading.open_part`, with a warning): its topics are those of
    its complete records.

    Raises:
        CaptureError: not a recording, no readable part, or topics/cameras that do not resolve
            (see :meth:`actial_ros.sources.rosbag.RosbagCapture.open`).
    """
    root, parts, recording = recording_parts(path)
    typestore = default_typestore()
    errors = []
    for part in parts:
        try:
            with open_part(part, typestore) as reader:
                connections = list(reader.connections)
        except Exception as error:  # BagReadError, OSError: try the next part
            errors.append(f'{part}: {type(error).__name__}: {error}')
            continue
        return resolve_layout(connections, options, recording, part)
    raise CaptureError(f'{root}: no readable bag: {"; ".join(errors)}')
