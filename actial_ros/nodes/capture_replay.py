"""``capture_replay``: publishes a posed capture as ROS 2 camera and odometry topics.

Reads an LLFF capture (``poses_bounds.npy`` + ``images/``) and publishes, for image ``i`` at stamp
``start + i / rate_hz`` (then optionally looping):

* ``odometry_topic`` (nav_msgs/Odometry): ``T_odom_base = T_world_camera @ inv(T_base_camera_optical)``,
  so that a node composing odometry with the same extrinsic recovers the capture's camera pose exactly;
  ``header.frame_id = odom_frame``, ``child_frame_id = base_frame``.
* ``camera_info_topic`` (sensor_msgs/CameraInfo) with the capture's intrinsics, ``camera_frame``.
* ``image_topic`` (sensor_msgs/Image rgb8, or CompressedImage JPEG with ``image_transport:=compressed``).

Odometry goes out before the image of the same stamp. A manifest (JSON lines: ``stamp_ns``, ``name``,
``index``) maps stamps back to file names. With ``exit_when_done`` the node ends after the last frame.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import rclpy
from nav_msgs.msg import Odometry
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from actial_ros.errors import ActialError, ConfigError
from actial_ros.frame import Frame
from actial_ros.geometry import BASE_TO_OPTICAL_QUATERNION_XYZW, base_to_optical_extrinsic, invert_transform
from actial_ros.imaging import rgb_to_compressed, rgb_to_image_fields
from actial_ros.messages import ns_to_stamp, pose_fields
from actial_ros.sources.llff import LlffCapture

__all__ = ['CaptureReplayNode', 'main']

_PARAMETERS: dict[str, tuple[Any, str]] = {
    'capture': ('', 'LLFF capture directory (poses_bounds.npy + images/).'),
    'rate_hz': (2.0, 'Frames per second (stamp spacing and publishing rate).'),
    'loops': (1, 'How many times the capture is played (stamps keep increasing).'),
    'image_transport': ('raw', "'raw' (Image rgb8) or 'compressed' (CompressedImage JPEG)."),
    'image_topic': ('/camera/image_raw', 'Image topic (CompressedImage: usually .../compressed).'),
    'camera_info_topic': ('/camera/camera_info', 'CameraInfo topic.'),
    'odometry_topic': ('/odom', 'Odometry topic.'),
    'odom_frame': ('odom', 'Odometry header.frame_id.'),
    'base_frame': ('base_link', 'Odometry child_frame_id.'),
    'camera_frame': ('camera_optical_frame', 'Image and CameraInfo header.frame_id.'),
    'extrinsic_translation': ([0.0, 0.0, 0.0], 'T_base_camera_optical translation (m).'),
    'extrinsic_rotation_xyzw': (list(BASE_TO_OPTICAL_QUATERNION_XYZW), 'T_base_camera_optical rotation (x, y, z, w).'),
    'jpeg_quality': (90, 'JPEG quality of compressed images.'),
    'image_qos': ('reliable', "'reliable' or 'sensor_data'."),
    'wait_for_subscribers_s': (10.0, 'Wait up to this long for an image subscriber before starting (s).'),
    'settle_s': (1.0, 'Extra wait after a subscriber appears, so that both sides finish matching (s).'),
    'manifest': ('', 'If set, write a JSON-lines manifest (stamp_ns, name, index) to this path.'),
    'exit_when_done': (True, 'Shut down after the last frame.'),
}


class CaptureReplayNode(Node):
    """Publishes an LLFF capture as Image/CompressedImage, CameraInfo and Odometry.

    Raises:
        ConfigError: missing or invalid parameters.
        CaptureError: the capture cannot be read.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__('capture_replay', **kwargs)
        for name, (default, description) in _PARAMETERS.items():
            self.declare_parameter(name, default, ParameterDescriptor(description=description, read_only=True))
        capture_path = str(self._value('capture'))
        if not capture_path:
            raise ConfigError('parameter "capture" (an LLFF capture directory) is required')
        self._rate_hz = float(self._value('rate_hz'))
        if not self._rate_hz > 0:
            raise ConfigError(f'rate_hz must be > 0, got {self._rate_hz}')
        self._loops = int(self._value('loops'))
        self._transport = str(self._value('image_transport'))
        if self._transport not in ('raw', 'compressed'):
            raise ConfigError(f"image_transport must be 'raw' or 'compressed', got {self._transport!r}")
        try:
            extrinsic = base_to_optical_extrinsic(
                list(self._value('extrinsic_translation')), list(self._value('extrinsic_rotation_xyzw'))
            )
        except ActialError as error:
            raise ConfigError(f'invalid extrinsic: {error}') from error
        self._base_from_camera = invert_transform(extrinsic)
        self._frames_ids = (
            str(self._value('odom_frame')),
            str(self._value('base_frame')),
            str(self._value('camera_frame')),
        )
        self._jpeg_quality = int(self._value('jpeg_quality'))
        self._capture = LlffCapture.open(capture_path)
        self._frames: list[Frame] = [self._capture.load_frame(i) for i in range(len(self._capture))]
        qos = QoSProfile(depth=max(10, len(self._frames)))
        if str(self._value('image_qos')) == 'sensor_data':
            qos = qos_profile_sensor_data
        image_type = CompressedImage if self._transport == 'compressed' else Image
        self._image_pub = self.create_publisher(image_type, str(self._value('image_topic')), qos)
        self._info_pub = self.create_publisher(CameraInfo, str(self._value('camera_info_topic')), qos)
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
            f'replaying {len(self._frames)} frames of {self._capture.name} x{self._loops} at {self._rate_hz:g} Hz '
            f'({self._transport})'
        )

    @property
    def total_frames(self) -> int:
        """Frames that will be published in all (frames x loops)."""
        return len(self._frames) * self._loops

    def _value(self, name: str) -> Any:
        return self.get_parameter(name).value

    def _tick(self) -> None:
        if self.done:
            return
        if self._start_ns is None:
            now = time.monotonic()
            if self._image_pub.get_subscription_count() == 0 and now - self._started_wall < self._wait_s:
                return
            # A best-effort reader drops samples from a writer it has not matched yet: let it settle.
            self._matched_at = self._matched_at if self._matched_at is not None else now
            if now - self._matched_at < self._settle_s:
                return
            self._start_ns = self.get_clock().now().nanoseconds
        if self._index >= self.total_frames:
            self._finish()
            return
        frame = self._frames[self._index % len(self._frames)]
        stamp_ns = self._start_ns + round(self._index * 1e9 / self._rate_hz)
        self._publish(frame, stamp_ns)
        self._manifest.append({'stamp_ns': stamp_ns, 'name': frame.name, 'index': self._index})
        self._index += 1

    def _publish(self, frame: Frame, stamp_ns: int) -> None:
        sec, nanosec = ns_to_stamp(stamp_ns)
        odom_frame, base_frame, camera_frame = self._frames_ids
        assert frame.t_world_camera is not None and frame.intrinsics is not None
        odometry = Odometry()
        odometry.header.stamp.sec, odometry.header.stamp.nanosec = sec, nanosec
        odometry.header.frame_id = odom_frame
        odometry.child_frame_id = base_frame
        (x, y, z), (qx, qy, qz, qw) = pose_fields(frame.t_world_camera @ self._base_from_camera)
        position, orientation = odometry.pose.pose.position, odometry.pose.pose.orientation
        position.x, position.y, position.z = x, y, z
        orientation.x, orientation.y, orientation.z, orientation.w = qx, qy, qz, qw
        self._odom_pub.publish(odometry)

        info = CameraInfo()
        info.header = _header(sec, nanosec, camera_frame)
        info.width, info.height = frame.width, frame.height
        info.distortion_model = 'plumb_bob'
        info.d = [0.0] * 5
        info.k = [float(v) for v in frame.intrinsics.matrix.reshape(-1)]
        info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        k = frame.intrinsics
        info.p = [k.fx, 0.0, k.cx, 0.0, 0.0, k.fy, k.cy, 0.0, 0.0, 0.0, 1.0, 0.0]
        self._info_pub.publish(info)

        if self._transport == 'compressed':
            fmt, data = rgb_to_compressed(frame.image, 'jpeg', self._jpeg_quality)
            compressed = CompressedImage()
            compressed.header = _header(sec, nanosec, camera_frame)
            compressed.format = fmt
            compressed.data = data
            self._image_pub.publish(compressed)
        else:
            fields = rgb_to_image_fields(frame.image, 'rgb8')
            image = Image()
            image.header = _header(sec, nanosec, camera_frame)
            image.height, image.width = fields.height, fields.width
            image.encoding, image.is_bigendian, image.step = fields.encoding, fields.is_bigendian, fields.step
            image.data = fields.data
            self._image_pub.publish(image)

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


def _header(sec: int, nanosec: int, frame_id: str) -> Any:
    from std_msgs.msg import Header

    header = Header()
    header.stamp.sec, header.stamp.nanosec = sec, nanosec
    header.frame_id = frame_id
    return header


def main(args: Sequence[str] | None = None) -> int:
    """Entry point: ``capture_replay --ros-args -p capture:=DIR [-p rate_hz:=2.0 ...]``."""
    rclpy.init(args=None if args is None else list(args))
    node: CaptureReplayNode | None = None
    try:
        node = CaptureReplayNode()
        while rclpy.ok() and not node.done:
            rclpy.spin_once(node, timeout_sec=0.1)
        if node.done and not node._exit_when_done:
            rclpy.spin(node)
        else:
            # Give best-effort subscribers a moment to drain before the publishers disappear.
            end = time.monotonic() + 0.5
            while time.monotonic() < end:
                rclpy.spin_once(node, timeout_sec=0.05)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (ConfigError, ActialError) as error:
        print(f'capture_replay: {error}', file=sys.stderr)
        return 2
    finally:
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
