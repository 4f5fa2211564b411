"""``bag_recorder``: records the cameras, their camera_info and odometry to rosbag2 for training pairs.

Subscribes (raw CDR, ``raw=True``: the bytes go to the bag unchanged):
    ``image_topic`` (sensor_msgs/Image, or CompressedImage with ``image_transport:=compressed``),
    ``camera_info_topic`` (sensor_msgs/CameraInfo), ``odometry_topic`` (nav_msgs/Odometry), and per
    further camera (``additional_cameras: [name, ...]``, as the other nodes:
    :mod:`actial_ros.nodes.camera_params`) ``<name>.image_topic``, ``<name>.camera_info_topic``
    (``<name>.image_transport``, ``<name>.extrinsic_translation``, ``<name>.extrinsic_rotation_xyzw``).

Writes ``output_dir/session/`` (``session`` defaults to ``session_YYYYmmdd_HHMMSS``, wall clock):

* ``bag_0000/``, ``bag_0001/``, ...: rosbag2 parts (mcap by default, metadata version 9, written with
  ``rosbags``); a new part starts at ``max_bag_size_mb``, and recording stops (messages refused,
  counted and logged) once ``max_total_mb`` is spent. The folder is one recording for the dataset
  builder: ``actial-ros-train build-viewpoint --source rosbag:output_dir/session``, or
  ``--source objects:output_dir`` for every session at once. A power loss cuts only the part being
  written; its complete records are salvaged when read (:mod:`actial_ros.bags.reading`).
* ``recording.json``: the parameters, ``cameras`` (per camera: ``name``, ``image_topic``,
  ``image_transport``, ``camera_info_topic``, ``extrinsic_translation``, ``extrinsic_rotation_xyzw``; the
  builder reads a recording of several cameras as one object with every camera's views, posed through
  each camera's extrinsic) and counters (totals, and per camera under ``stats.cameras``), rewritten every
  ``stats_period_s`` and at shutdown (``"closed": true``).

What is kept: every odometry message (or one in ``odometry_decimation``), each camera's camera_info
whenever it changes and at the start of every part, and only the images the keyframe policy keeps,
decided PER CAMERA (one :class:`actial_ros.keyframes.KeyframeSelector` each: the camera's pose at the
image stamp, from odometry through its extrinsic, turned by ``keyframe_min_rotation_deg`` or moved by
``keyframe_min_translation_m`` since that camera's last kept image, or ``keyframe_max_interval_s``
passed).
If odometry time jumps back by more than ``time_reset_s`` (a simulation reset), confirmed by
``time_jump_confirmations`` agreeing stamps (:class:`actial_ros.timeline.TimelineGuard`), the current
session is closed and a new one (``session_r1``, ...) begins, so one recording never mixes two timelines;
the confirming messages open the new session. An isolated odometry stamp that far from the stream is
written as received but given to no keyframe decision and starts no session (``odometry_time_outliers``).

Callbacks only put the bytes in a bounded queue (dropping, counted, when it is full); a writer thread
decodes headers, decides and writes, so disk I/O never blocks the executor.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from nav_msgs.msg import Odometry
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from actial_ros.bags.cdr import CAMERA_INFO_TYPE, COMPRESSED_IMAGE_TYPE, IMAGE_TYPE, ODOMETRY_TYPE, cdr_header_stamp_ns
from actial_ros.bags.reading import default_typestore
from actial_ros.bags.recording import RECORDING_FILENAME
from actial_ros.bags.writer import SplitBagWriter
from actial_ros.enums import BAG_STORAGES, IMAGE_TRANSPORTS, QOS_CHOICES, QOS_NAMES
from actial_ros.errors import ActialError, ConfigError
from actial_ros.geometry import BASE_TO_OPTICAL_QUATERNION_XYZW, base_to_optical_extrinsic
from actial_ros.keyframes import KeyframeDecision, KeyframePolicy, KeyframeSelector
from actial_ros.message_fields import odometry_to_transform, pose_fields
from actial_ros.nodes.camera_params import CameraSpec, declare_additional_cameras
from actial_ros.nodes.delivery_events import DeliveryMonitor, with_message_info
from actial_ros.nodes.descriptors import declare_parameters
from actial_ros.nodes.entry import run_node
from actial_ros.nodes.qos import qos_profile
from actial_ros.pairing import (
    DEFAULT_MAX_EXTRAPOLATION_S,
    DEFAULT_MAX_INTERPOLATION_GAP_S,
    DEFAULT_PENDING_TIMEOUT_S,
    DEFAULT_TIME_RESET_S,
    OdometryMatchPolicy,
)
from actial_ros.parameter_spec import ParameterSpec, check_choices
from actial_ros.timeline import Jump, TimelineGuard

FloatArray = npt.NDArray[np.float64]

__all__ = ['PARAMETERS', 'BagRecorderNode', 'main']

_MB = 1024 * 1024
_NS = 1_000_000_000


PARAMETERS: tuple[ParameterSpec, ...] = (
    ParameterSpec('output_dir', '', 'Folder of the recordings (required); each session is a sub-folder.'),
    ParameterSpec('session', '', 'Session folder name; empty: session_YYYYmmdd_HHMMSS (wall clock).'),
    ParameterSpec('storage', 'mcap', "'mcap' or 'sqlite3'.", choices=BAG_STORAGES),
    ParameterSpec('max_bag_size_mb', 512.0, 'Size of one bag part before the next starts (MB).', 0.01, 1e7),
    ParameterSpec(
        'max_total_mb', 10240.0, 'Disk budget of the session (MB); recording stops beyond it; 0: none.', 0.0, 1e9
    ),
    ParameterSpec('image_topic', '/camera/image_raw', 'Image topic (Image, or CompressedImage when compressed).'),
    ParameterSpec(
        'image_transport',
        'raw',
        "'raw' (sensor_msgs/Image) or 'compressed' (CompressedImage).",
        choices=IMAGE_TRANSPORTS,
    ),
    ParameterSpec('camera_id', 'camera', 'Name of the primary camera (in recording.json; views NAME@STAMP).'),
    ParameterSpec('camera_info_topic', '/camera/camera_info', 'sensor_msgs/CameraInfo topic.'),
    ParameterSpec('odometry_topic', '/odom', 'nav_msgs/Odometry topic (T_odom_base).'),
    ParameterSpec('image_qos', 'reliable', f'{QOS_CHOICES}.', choices=QOS_NAMES),
    ParameterSpec('odometry_qos', 'reliable', f'{QOS_CHOICES}.', choices=QOS_NAMES),
    ParameterSpec('qos_depth', 50, 'Subscription queue depth.', 1, 10000),
    ParameterSpec(
        'keyframe_min_rotation_deg', 5.0, 'Keep an image once the camera turned this much (deg).', 0.0, 180.0
    ),
    ParameterSpec('keyframe_min_translation_m', 0.1, 'Keep an image once the camera moved this far (m).', 0.0, 1000.0),
    ParameterSpec(
        'keyframe_max_interval_s', 0.0, 'Keep an image at least this often (s of stamp time); 0: off.', 0.0, 1e6
    ),
    ParameterSpec('odometry_decimation', 1, 'Write one odometry message in this many.', 1, 1000),
    ParameterSpec('extrinsic_translation', [0.0, 0.0, 0.0], 'T_base_camera_optical translation (m), base_link frame.'),
    ParameterSpec(
        'extrinsic_rotation_xyzw',
        list(BASE_TO_OPTICAL_QUATERNION_XYZW),
        'T_base_camera_optical rotation (x, y, z, w); default: forward-looking camera.',
    ),
    ParameterSpec(
        'odometry_max_interpolation_gap_s',
        DEFAULT_MAX_INTERPOLATION_GAP_S,
        'Largest odometry gap interpolated over (s).',
        0.0,
        60.0,
    ),
    ParameterSpec(
        'odometry_max_extrapolation_s',
        DEFAULT_MAX_EXTRAPOLATION_S,
        'Largest distance to an odometry sample held (s).',
        0.0,
        10.0,
    ),
    ParameterSpec(
        'odometry_pending_timeout_s',
        DEFAULT_PENDING_TIMEOUT_S,
        'How long an image waits for later odometry (s of stamp time).',
        0.0,
        600.0,
    ),
    ParameterSpec(
        'time_reset_s',
        DEFAULT_TIME_RESET_S,
        'Odometry stamps jumping back by more than this (confirmed) start a new session (s).',
        0.0,
        3600.0,
    ),
    ParameterSpec(
        'time_jump_confirmations',
        3,
        'Consecutive agreeing odometry stamps that confirm a time jump (1: split on the first).',
        1,
        100,
    ),
    ParameterSpec('max_pending_images', 64, 'Images waiting for odometry at most.', 1, 100000),
    ParameterSpec('queue_size', 256, 'Messages waiting for the writer thread at most (dropped beyond).', 1, 1000000),
    ParameterSpec('stats_period_s', 1.0, 'Period of recording.json updates and the status log (s).', 0.05, 3600.0),
)


@dataclass
class _CameraRecorder:
    """Per-camera state of the writer thread: keyframe selector, last camera_info, counters."""

    spec: CameraSpec
    selector: KeyframeSelector[tuple[bytes, int]] = field(init=False)
    last_info_key: bytes | None = None
    counts: Counter[str] = field(default_factory=Counter)

    @property
    def image_type(self) -> str:
        return COMPRESSED_IMAGE_TYPE if self.spec.image_transport == 'compressed' else IMAGE_TYPE


class BagRecorderNode(Node):
    """Records camera, camera_info and odometry to split rosbag2 parts, keeping keyframes only.

    Raises:
        ConfigError: invalid parameters at start-up (missing ``output_dir``, bad extrinsic, ...).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__('bag_recorder', **kwargs)
        self._values = declare_parameters(self, PARAMETERS, read_only=True)
        values = self._values
        if not str(values['output_dir']):
            raise ConfigError('parameter "output_dir" is required')
        check_choices(PARAMETERS, values)
        transport = str(values['image_transport'])
        try:
            self._extrinsic = base_to_optical_extrinsic(
                list(values['extrinsic_translation']), list(values['extrinsic_rotation_xyzw'])
            )
            self._policy = KeyframePolicy(
                min_rotation_deg=float(values['keyframe_min_rotation_deg']),
                min_translation_m=float(values['keyframe_min_translation_m']),
                max_interval_s=float(values['keyframe_max_interval_s']),
            )
            self._match = OdometryMatchPolicy(
                max_interpolation_gap_s=float(values['odometry_max_interpolation_gap_s']),
                max_extrapolation_s=float(values['odometry_max_extrapolation_s']),
                pending_timeout_s=float(values['odometry_pending_timeout_s']),
                time_reset_s=float(values['time_reset_s']),
                time_jump_confirmations=int(values['time_jump_confirmations']),
            )
        except ActialError as error:
            raise ConfigError(str(error)) from error
        primary = CameraSpec(
            camera_id=str(values['camera_id']),
            image_topic=str(values['image_topic']),
            image_transport=transport,
            camera_info_topic=str(values['camera_info_topic']),
            extrinsic=self._extrinsic,
        )
        self._cameras = [primary, *declare_additional_cameras(self, default_transport=transport)]
        names = [camera.camera_id for camera in self._cameras]
        topics = [t for camera in self._cameras for t in (camera.image_topic, camera.camera_info_topic)]
        if len(set(names)) != len(names) or not names[0].replace('_', '').isalnum():
            raise ConfigError(f'camera names must be unique (letters, digits, _): {names}')
        if len(set(topics)) != len(topics) or str(values['odometry_topic']) in topics:
            raise ConfigError(f'every camera needs its own image and camera_info topics: {topics}')
        self._recorders = [_CameraRecorder(camera) for camera in self._cameras]
        self._topics = {'odometry': str(values['odometry_topic'])}
        base_session = str(values['session']) or time.strftime('session_%Y%m%d_%H%M%S')
        self._base_session = base_session
        self._session_index = 0
        self._typestore = default_typestore()
        self._queue: queue.Queue[tuple[str, int, bytes, int]] = queue.Queue(maxsize=int(values['queue_size']))
        self._lock = threading.Lock()
        self._file_lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._stop = threading.Event()
        self._writer: SplitBagWriter | None = None
        for recorder in self._recorders:
            recorder.selector = self._new_selector(recorder.spec)
        self._session_dir = self._open_session()
        self._odometry_seen = 0
        self._odometry_guard: TimelineGuard[tuple[bytes, int, FloatArray | None]] = TimelineGuard(
            jump_s=self._match.time_reset_s, confirmations=self._match.time_jump_confirmations
        )
        self._budget_logged = False

        depth = int(values['qos_depth'])
        image_qos = qos_profile(str(values['image_qos']), depth)
        self._delivery = DeliveryMonitor(logger=self.get_logger(), count=lambda key, n: self._count(key, n))
        for index, recorder in enumerate(self._recorders):
            camera = recorder.spec
            image_cls = CompressedImage if camera.image_transport == 'compressed' else Image
            self._subscribe(image_cls, camera.image_topic, image_qos, 'image', index)
            self._subscribe(CameraInfo, camera.camera_info_topic, image_qos, 'camera_info', index)
        self._subscribe(Odometry, self._topics['odometry'], qos_profile(str(values['odometry_qos']), depth), 'odometry')
        self._thread = threading.Thread(target=self._run, name='bag_recorder_writer', daemon=True)
        self._thread.start()
        self.create_timer(float(values['stats_period_s']), self._report)
        cameras = ', '.join(
            f'{c.camera_id}: {c.image_topic} ({c.image_transport}), {c.camera_info_topic}' for c in self._cameras
        )
        self.get_logger().info(
            f'recording {cameras}; {self._topics["odometry"]} to {self._session_dir} (keyframes per camera: '
            f'{self._policy.min_rotation_deg:g} deg / {self._policy.min_translation_m:g} m)'
        )

    # -- callbacks (store and return) ----------------------------------------------------------

    def _subscribe(self, msg_type: Any, topic: str, qos: Any, kind: str, camera: int = -1) -> None:
        """Subscribe (serialized messages, stored as they are), counting what DDS lost on the way
        (``dds_lost``, per camera too; the QoS events: :mod:`actial_ros.nodes.delivery_events`)."""
        recorder = self._recorders[camera] if camera >= 0 else None

        def on_message(raw: bytes, info: Any) -> None:
            lost = self._delivery.observe(topic, info)  # the totals are counted by the monitor
            if lost and recorder is not None:
                with self._lock:
                    recorder.counts['dds_lost'] += lost
            self._enqueue(kind, raw, camera)

        self.create_subscription(
            msg_type,
            topic,
            with_message_info(on_message),
            qos,
            raw=True,
            event_callbacks=self._delivery.event_callbacks(topic, kind),
        )

    def _enqueue(self, kind: str, raw: bytes, camera: int = -1) -> None:
        try:
            self._queue.put_nowait((kind, camera, bytes(raw), self.get_clock().now().nanoseconds))
        except queue.Full:
            with self._lock:
                self._counts[f'dropped_queue_full_{kind}'] += 1

    # -- writer thread -------------------------------------------------------------------------

    def _new_selector(self, camera: CameraSpec) -> KeyframeSelector[tuple[bytes, int]]:
        return KeyframeSelector(
            self._policy,
            extrinsic=camera.extrinsic,
            match_policy=self._match,
            max_pending=int(self._values['max_pending_images']),
        )

    def _open_session(self) -> Path:
        name = self._base_session if self._session_index == 0 else f'{self._base_session}_r{self._session_index}'
        directory = Path(str(self._values['output_dir'])) / name
        total = float(self._values['max_total_mb'])
        self._writer = SplitBagWriter(
            directory,
            storage=str(self._values['storage']),
            max_part_bytes=max(1, int(float(self._values['max_bag_size_mb']) * _MB)),
            max_total_bytes=int(total * _MB) if total > 0 else None,
            typestore=self._typestore,
        )
        self._writer.add_topic(self._topics['odometry'], ODOMETRY_TYPE)
        for recorder in self._recorders:
            self._writer.add_topic(recorder.spec.camera_info_topic, CAMERA_INFO_TYPE, sticky=True)
            self._writer.add_topic(recorder.spec.image_topic, recorder.image_type)
        self._session_dir = directory
        self._write_recording(closed=False)
        return directory

    def _run(self) -> None:
        while True:
            try:
                kind, camera, raw, received_ns = self._queue.get(timeout=0.05)
            except queue.Empty:
                if self._stop.is_set():
                    break
                continue
            try:
                self._process(kind, camera, raw, received_ns)
            except Exception as error:  # the writer thread must survive any single bad message
                with self._lock:
                    self._counts['errors'] += 1
                self.get_logger().error(f'recording {kind} failed: {error!r}', throttle_duration_sec=5.0)
        self._close_session()

    def _process(self, kind: str, camera: int, raw: bytes, received_ns: int) -> None:
        writer = self._writer
        assert writer is not None
        if kind == 'odometry':
            self._count('odometry_received')
            try:
                stamp = cdr_header_stamp_ns(raw)
                t_odom_base = odometry_to_transform(self._typestore.deserialize_cdr(raw, ODOMETRY_TYPE))
            except (ValueError, ActialError):
                self._count('bad_odometry')
                t_odom_base = None
                stamp = None
            if stamp is None:
                self._record_odometry(None, raw, received_ns, None)
                return
            verdict = self._odometry_guard.offer(stamp, (raw, received_ns, t_odom_base))
            for outlier_raw, outlier_received_ns, _ in verdict.outliers:
                self._count('odometry_time_outliers')
                self._write(self._topics['odometry'], outlier_received_ns, outlier_raw, 'odometry')
            if verdict.jump is Jump.BACKWARD:
                self._new_session(verdict.accepted[0][0])
            for accepted_stamp, (accepted_raw, accepted_received_ns, pose) in verdict.accepted:
                self._record_odometry(accepted_stamp, accepted_raw, accepted_received_ns, pose)
        elif kind == 'camera_info':
            recorder = self._recorders[camera]
            self._count('camera_info_received', recorder=recorder)
            key = raw[12:]  # everything after the header stamp: frame id, size, k, d, ...
            if key != recorder.last_info_key:
                recorder.last_info_key = key
                self._write(recorder.spec.camera_info_topic, received_ns, raw, 'camera_info', recorder)
        else:
            recorder = self._recorders[camera]
            self._count('images_received', recorder=recorder)
            try:
                stamp = cdr_header_stamp_ns(raw)
            except ValueError:
                self._count('images_dropped_bad_header', recorder=recorder)
                return
            self._handle(recorder, recorder.selector.add_image(stamp, (raw, received_ns)))

    def _record_odometry(self, stamp: int | None, raw: bytes, received_ns: int, t_odom_base: FloatArray | None) -> None:
        self._odometry_seen += 1
        if (self._odometry_seen - 1) % int(self._values['odometry_decimation']) == 0:
            self._write(self._topics['odometry'], received_ns, raw, 'odometry')
        if stamp is not None and t_odom_base is not None:
            for recorder in self._recorders:
                self._handle(recorder, recorder.selector.add_odometry(stamp, t_odom_base))

    def _handle(self, recorder: _CameraRecorder, decisions: list[KeyframeDecision[tuple[bytes, int]]]) -> None:
        for decision in decisions:
            raw, received_ns = decision.payload
            if decision.keep:
                if self._write(recorder.spec.image_topic, received_ns, raw, 'images', recorder):
                    self._count(f'images_kept_{decision.reason}', recorder=recorder)
            else:
                self._count(f'images_dropped_{decision.reason}', recorder=recorder)

    def _write(
        self, topic: str, received_ns: int, raw: bytes, what: str, recorder: _CameraRecorder | None = None
    ) -> bool:
        writer = self._writer
        assert writer is not None
        if writer.write(topic, received_ns, raw):
            self._count(f'{what}_written', recorder=recorder)
            return True
        self._count(f'{what}_refused_disk_budget', recorder=recorder)
        if not self._budget_logged:
            self._budget_logged = True
            self.get_logger().warning(
                f'disk budget of {self._values["max_total_mb"]} MB spent: recording stopped ({self._session_dir})'
            )
        return False

    def _count(self, key: str, value: int = 1, *, recorder: _CameraRecorder | None = None) -> None:
        with self._lock:
            self._counts[key] += value
            if recorder is not None:
                recorder.counts[key] += value

    def _new_session(self, stamp: int) -> None:
        self.get_logger().warning(
            f'odometry time jumped back to {stamp / _NS:.3f} s: closing {self._session_dir.name}, '
            'starting a new session'
        )
        self._close_session()
        self._session_index += 1
        for recorder in self._recorders:
            recorder.selector = self._new_selector(recorder.spec)
            recorder.last_info_key = None
        self._budget_logged = False
        self._count('time_resets')
        self._open_session()

    def _close_session(self) -> None:
        for recorder in self._recorders:
            self._handle(recorder, recorder.selector.flush())
        if self._writer is not None:
            self._writer.close()
        self._write_recording(closed=True)

    # -- reporting -----------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counters (received, kept and dropped by reason, written, refused; totals, and per camera under
        ``cameras``) and the bag parts."""
        with self._lock:
            counts = dict(sorted(self._counts.items()))
            cameras = {r.spec.camera_id: dict(sorted(r.counts.items())) for r in self._recorders}
        writer = self._writer
        return {
            **counts,
            'bytes_written': writer.bytes_written if writer is not None else 0,
            'parts': [p.name for p in writer.parts] if writer is not None else [],
            'queue': self._queue.qsize(),
            'pending_images': sum(r.selector.pending for r in self._recorders),
            'cameras': cameras,
        }

    def cameras_record(self) -> list[dict[str, Any]]:
        """The cameras as ``recording.json`` lists them (what the dataset builder reads)."""
        entries = []
        for recorder in self._recorders:
            camera = recorder.spec
            translation, rotation = pose_fields(camera.extrinsic)
            entries.append(
                {
                    'name': camera.camera_id,
                    'image_topic': camera.image_topic,
                    'image_transport': camera.image_transport,
                    'camera_info_topic': camera.camera_info_topic,
                    'extrinsic_translation': list(translation),
                    'extrinsic_rotation_xyzw': list(rotation),
                }
            )
        return entries

    def _write_recording(self, *, closed: bool) -> None:
        parameters = {k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in self._values.items()}
        with self._file_lock:
            record = {
                'parameters': parameters,
                'cameras': self.cameras_record(),
                'stats': self.stats(),
                'closed': closed,
            }
            path = self._session_dir / RECORDING_FILENAME
            tmp = path.with_name(f'.{path.name}.tmp')
            tmp.write_text(json.dumps(record, indent=2, sort_keys=True, default=str) + '\n')
            os.replace(tmp, path)

    def _report(self) -> None:
        try:
            self._write_recording(closed=False)
        except OSError as error:
            self.get_logger().error(f'cannot write {RECORDING_FILENAME}: {error}', throttle_duration_sec=10.0)

    def destroy_node(self) -> None:
        """Stop the writer thread (it drains the queue, decides waiting images, closes the bag), then destroy."""
        self._stop.set()
        self._thread.join(timeout=30.0)
        super().destroy_node()


def main(args: Sequence[str] | None = None) -> int:
    """Entry point: ``bag_recorder --ros-args -p output_dir:=DIR [-p session:=NAME ...]``."""
    return run_node(BagRecorderNode, name='bag_recorder', args=args)


if __name__ == '__main__':
    os.environ.setdefault('RCUTILS_COLORIZED_OUTPUT', '0')
    sys.exit(main())
