"""``capture_replay``: publishes a posed capture as ROS 2 camera and odometry topics.

Reads an LLFF capture (``poses_bounds.npy`` + ``images/``) and publishes, for image ``i`` at stamp
``start + i / rate_hz`` (then optionally looping; several cameras: see :class:`CaptureReplayNode`):

* ``odometry_topic`` (nav_msgs/Odometry): ``T_odom_base = T_world_camera @ inv(T_base_camera_optical)``,
  so that a node composing odometry with the same extrinsic recovers the capture's camera pose exactly;
  ``header.frame_id = odom_frame``, ``child_frame_id = base_frame``.
* ``camera_info_topic`` (sensor_msgs/CameraInfo) with the capture's intrinsics, ``camera_frame``.
* ``image_topic`` (sensor_msgs/Image rgb8, or CompressedImage JPEG with ``image_transport:=compressed``).

Odometry goes out before the image of the same stamp. A manifest (JSON lines: ``stamp_ns``, ``name``,
``index``, ``camera``) maps stamps back to file names. With ``exit_when_done`` the node ends after the last frame.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import rclpy
from nav_msgs.msg import Odometry
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import QoSProfile
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from actial_ros.enums import IMAGE_TRANSPORTS, QOS_CHOICES, QOS_NAMES
from actial_ros.errors import ConfigError
from actial_ros.frame import Frame
from actial_ros.geometry import BASE_TO_OPTICAL_QUATERNION_XYZW, invert_transform
from actial_ros.imaging import rgb_to_compressed, rgb_to_image_fields
from actial_ros.nodes.camera_params import declare_additional_cameras, extrinsic_from_values
from actial_ros.nodes.descriptors import declare_parameters
from actial_ros.nodes.entry import run_node
from actial_ros.nodes.qos import qos_profile
from actial_ros.nodes.ros_messages import camera_info_msg, header_msg, image_msg, odometry_msg
from actial_ros.parameter_spec import ParameterSpec, check_choices
from actial_ros.sources.llff import LlffCapture

__all__ = ['PARAMETERS', 'CaptureReplayNode', 'main']

PARAMETERS: tuple[ParameterSpec, ...] = (
    ParameterSpec('capture', '', 'LLFF capture directory (poses_bounds.npy + images/).'),
    ParameterSpec('rate_hz', 2.0, 'Frames per second (stamp spacing and publishing rate).'),
    ParameterSpec('loops', 1, 'How many times the capture is played (stamps keep increasing).'),
    ParameterSpec(
        'image_transport', 'raw', "'raw' (Image rgb8) or 'compressed' (CompressedImage JPEG).", choices=IMAGE_TRANSPORTS
    ),
    ParameterSpec('image_topic', '/camera/image_raw', 'Image topic (CompressedImage: usually .../compressed).'),
    ParameterSpec('camera_info_topic', '/camera/camera_info', 'CameraInfo topic.'),
    ParameterSpec('odometry_topic', '/odom', 'Odometry topic.'),
    ParameterSpec('odom_frame', 'odom', 'Odometry header.frame_id.'),
    ParameterSpec('base_frame', 'base_link', 'Odometry child_frame_id.'),
    ParameterSpec('camera_id', 'camera', 'Name of the primary camera (in the manifest).'),
    ParameterSpec('camera_frame', 'camera_optical_frame', 'Image and CameraInfo header.frame_id.'),
    ParameterSpec('frame_stride', 1, 'Publish every n-th capture image with this camera.'),
    ParameterSpec('frame_offset', 0, 'First capture image of this camera.'),
    ParameterSpec('extrinsic_translation', [0.0, 0.0, 0.0], 'T_base_camera_optical translation (m).'),
    ParameterSpec(
        'extrinsic_rotation_xyzw', list(BASE_TO_OPTICAL_QUATERNION_XYZW), 'T_base_camera_optical rotation (x, y, z, w).'
    ),
    ParameterSpec('jpeg_quality', 90, 'JPEG quality of compressed images.'),
    ParameterSpec('image_qos', 'reliable', f'{QOS_CHOICES}.', choices=QOS_NAMES),
    ParameterSpec('wait_for_subscribers_s', 10.0, 'Wait up to this long for an image subscriber before starting (s).'),
    ParameterSpec('settle_s', 1.0, 'Extra wait after a subscriber appears, so that both sides finish matching (s).'),
    ParameterSpec('manifest', '', 'If set, write a JSON-lines manifest (stamp_ns, name, index) to this path.'),
    ParameterSpec('exit_when_done', True, 'Shut down after the last frame.'),
)
"""Every parameter (all read-only), its default and its meaning."""


@dataclass(frozen=True)
class _ReplayCamera:
    camera_id: str
    capture: LlffCapture
    indices: tuple[int, ...]
    image_topic: str
    camera_info_topic: str
    camera_frame: str
    base_from_camera: npt.NDArray[np.float64]


class CaptureReplayNode(Node):
    """Publishes LLFF captures as Image/CompressedImage, CameraInfo and Odometry, for one or more cameras.

    Several cameras: ``additional_cameras: [name, ...]`` with, per name, ``<name>.capture`` (default: the
    primary capture), ``<name>.frame_stride``, ``<name>.frame_offset``, ``<name>.image_topic``,
    ``<name>.camera_info_topic``, ``<name>.camera_frame``, ``<name>.extrinsic_translation`` and
    ``<name>.extrinsic_rotation_xyzw``. Capture index ``k`` is published at stamp ``start + k / rate_hz`` by
    every camera that selects it (``k = offset + i * stride``); odometry at that stamp comes from the first
    such camera through its extrinsic. The captures of one replay must therefore share one world frame
    (a rig), e.g. one capture split into virtual cameras with known mountings.

    Raises:
        ConfigError: missing or invalid parameters.
        CaptureError: a capture cannot be read.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__('capture_replay', **kwargs)
        declare_parameters(self, PARAMETERS, read_only=True)
        capture_path = str(self._value('capture'))
        if not capture_path:
            raise ConfigError('parameter "capture" (an LLFF capture directory) is required')
        self._rate_hz = float(self._value('rate_hz'))
        if not self._rate_hz > 0:
            raise ConfigError(f'rate_hz must be > 0, got {self._rate_hz}')
        self._loops = int(self._value('loops'))
        check_choices(PARAMETERS, {spec.name: self._value(spec.name) for spec in PARAMETERS if spec.choices})
        self._transport = str(self._value('image_transport'))
        self._odom_frame = str(self._value('odom_frame'))
        self._base_frame = str(self._value('base_frame'))
        self._jpeg_quality = int(self._value('jpeg_quality'))
        captures: dict[str, LlffCapture] = {}

        def capture(path: str) -> LlffCapture:
            if path not in captures:
                captures[path] = LlffCapture.open(path)
            return captures[path]

        primary = self._camera(
            str(self._value('camera_id')),
            capture(capture_path),
            stride=int(self._value('frame_stride')),
            offset=int(self._value('frame_offset')),
            image_topic=str(self._value('image_topic')),
            camera_info_topic=str(self._value('camera_info_topic')),
            camera_frame=str(self._value('camera_frame')),
            extrinsic=extrinsic_from_values(
                self._value('extrinsic_translation'), self._value('extrinsic_rotation_xyzw')
            ),
        )
        self._cameras = [primary]
        for spec in declare_additional_cameras(self, default_transport=self._transport):
            extra: dict[str, Any] = {
                key: self.declare_parameter(f'{spec.prefix}{key}', default, ParameterDescriptor(read_only=True)).value
                for key, default in (
                    ('capture', capture_path),
                    ('frame_stride', 1),
                    ('frame_offset', 0),
                    ('camera_frame', f'{spec.camera_id}_optical_frame'),
                )
            }
            if spec.image_transport != self._transport:
                raise ConfigError("every replayed camera uses the replay's image_transport")
            self._cameras.append(
                self._camera(
                    spec.camera_id,
                    capture(str(extra['capture'])),
                    stride=int(extra['frame_stride']),
                    offset=int(extra['frame_offset']),
                    image_topic=spec.image_topic,
                    camera_info_topic=spec.camera_info_topic,
                    camera_frame=str(extra['camera_frame']),
                    extrinsic=spec.extrinsic,
                )
            )
        self._length = max(max(camera.indices, default=-1) for camera in self._cameras) + 1
        self._frames: dict[tuple[str, int], Frame] = {
            (camera.camera_id, index): camera.capture.load_frame(index)
            for camera in self._cameras
            for index in camera.indices
        }
        qos = qos_profile(str(self._value('image_qos')), max(10, self._length))
        image_type = CompressedImage if self._transport == 'compressed' else Image
        self._image_pubs = {c.camera_id: self.create_publisher(image_type, c.image_topic, qos) for c in self._cameras}
        self._info_pubs = {
            c.camera_id: self.create_publisher(CameraInfo, c.camera_info_topic, qos) for c in self._cameras
        }
        self._odom_pub = self.create_publisher(Odometry, str(self._value('odometry_topic')), QoSProfile(depth=100))
        self._manifest_path = str(self._value('manifest'))
        self._exit_when_done = bool(self._value('exit_when_done'))
        self._wait_s = float(self._value('wait_for_subscribers_s'))
        self._settle_s = float(self._value('settle_s'))
        self._matched_at: float | None = None
        self._index = 0
        self._start_ns: int | None = None
        self._started_wall = time.monotonic()
        self.done = False
        self._manifest: list[dict[str, Any]] = []
        self._timer = self.create_timer(1.0 / self._rate_hz, self._tick)
        self.get_logger().info(
            f'replaying {len(self._frames)} frames of {len(self._cameras)} camera(s) x{self._loops} at '
            f'{self._rate_hz:g} Hz ({self._transport})'
        )

    @staticmethod
    def _camera(
        camera_id: str,
        capture: LlffCapture,
        *,
        stride: int,
        offset: int,
        image_topic: str,
        camera_info_topic: str,
        camera_frame: str,
        extrinsic: npt.NDArray[np.float64],
    ) -> _ReplayCamera:
        if stride < 1 or offset < 0:
            raise ConfigError(f'camera {camera_id}: frame_stride must be >= 1 and frame_offset >= 0')
        return _ReplayCamera(
            camera_id=camera_id,
            capture=capture,
            indices=tuple(range(offset, len(capture), stride)),
            image_topic=image_topic,
            camera_info_topic=camera_info_topic,
            camera_frame=camera_frame,
            base_from_camera=invert_transform(extrinsic),
        )

    @property
    def total_frames(self) -> int:
        """Images that will be published in all (all cameras, all loops)."""
        return len(self._frames) * self._loops

    def _value(self, name: str) -> Any:
        return self.get_parameter(name).value

    def _tick(self) -> None:
        if self.done:
            return
        if self._start_ns is None:
            now = time.monotonic()
            waiting = any(pub.get_subscription_count() == 0 for pub in self._image_pubs.values())
            if waiting and now - self._started_wall < self._wait_s:
                return
            # A best-effort reader drops samples from a writer it has not matched yet: let it settle.
            self._matched_at = self._matched_at if self._matched_at is not None else now
            if now - self._matched_at < self._settle_s:
                return
            self._start_ns = self.get_clock().now().nanoseconds
        if self._index >= self._length * self._loops:
            self._finish()
            return
        capture_index = self._index % self._length
        stamp_ns = self._start_ns + round(self._index * 1e9 / self._rate_hz)
        cameras = [c for c in self._cameras if (c.camera_id, capture_index) in self._frames]
        if cameras:
            first = self._frames[(cameras[0].camera_id, capture_index)]
            assert first.t_world_camera is not None
            self._publish_odometry(first.t_world_camera @ cameras[0].base_from_camera, stamp_ns)
        for camera in cameras:
            frame = self._frames[(camera.camera_id, capture_index)]
            self._publish_image(camera, frame, stamp_ns)
            self._manifest.append(
                {'stamp_ns': stamp_ns, 'name': frame.name, 'index': capture_index, 'camera': camera.camera_id}
            )
        self._index += 1

    def _publish_odometry(self, t_odom_base: npt.NDArray[np.float64], stamp_ns: int) -> None:
        self._odom_pub.publish(odometry_msg(t_odom_base, header_msg(stamp_ns, self._odom_frame), self._base_frame))

    def _publish_image(self, camera: _ReplayCamera, frame: Frame, stamp_ns: int) -> None:
        assert frame.intrinsics is not None
        header = header_msg(stamp_ns, camera.camera_frame)
        self._info_pubs[camera.camera_id].publish(camera_info_msg(frame.intrinsics, header))
        if self._transport == 'compressed':
            fmt, data = rgb_to_compressed(frame.image, 'jpeg', self._jpeg_quality)
            compressed = CompressedImage()
            compressed.header = header
            compressed.format = fmt
            compressed.data = data
            self._image_pubs[camera.camera_id].publish(compressed)
        else:
            self._image_pubs[camera.camera_id].publish(image_msg(rgb_to_image_fields(frame.image, 'rgb8'), header))

    def _finish(self) -> None:
        self.done = True
        self._timer.cancel()
        if self._manifest_path:
            path = Path(self._manifest_path)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(path.suffix + '.tmp')
            tmp.write_text(''.join(json.dumps(row) + '\n' for row in self._manifest))
            tmp.replace(path)
        self.get_logger().info(f'published {self._index} frames')


def _spin_until_done(node: CaptureReplayNode) -> int:
    while rclpy.ok() and not node.done:
        rclpy.spin_once(node, timeout_sec=0.1)
    if node.done and not node._exit_when_done:
        rclpy.spin(node)
    else:
        # Give best-effort subscribers a moment to drain before the publishers disappear.
        end = time.monotonic() + 0.5
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.05)
    return 0


def main(args: Sequence[str] | None = None) -> int:
    """Entry point: ``capture_replay --ros-args -p capture:=DIR [-p rate_hz:=2.0 ...]``."""
    return run_node(CaptureReplayNode, name='capture_replay', args=args, spin=_spin_until_done)


if __name__ == '__main__':
    sys.exit(main())
