"""``sim_rig``: a simulated camera on a moving base, rendered by pybullet's CPU renderer, published as
ROS 2 topics in simulated time.

Publishes (names are parameters; see :data:`actial_ros.simulation.parameters.RIG_PARAMETERS`):
    ``/clock`` (rosgraph_msgs/Clock) every simulation step, ``odometry_topic`` (nav_msgs/Odometry,
    ``T_odom_base`` with twist, exact), ``camera_info_topic`` (sensor_msgs/CameraInfo),
    ``image_topic`` (sensor_msgs/Image rgb8), ``depth_topic`` (32FC1, with ``depth:=true``) and
    ``camera_pose_topic`` (geometry_msgs/PoseStamped, ground truth ``T_odom_camera_optical``).

Every stamp is simulated time. Per step the order is: clock, odometry, camera_info, image, depth,
camera pose; odometry goes out at its own rate and at every camera frame, so a ``spatial_reasoner`` with
the same extrinsic and ``use_sim_time:=true`` matches each image to odometry of exactly its stamp.

Before the first step the node waits (wall time, ``wait_for_subscribers_s``) for an image subscriber
and then ``settle_s`` more, publishing the clock at the start time meanwhile. Steps are paced by
``real_time_factor`` (0: as fast as possible). Stepping and rendering run on a dedicated thread, so
the executor (parameter services) is never blocked. With ``record`` set, every published frame's
``stamp_ns``, ``T_world_camera`` and ``T_world_base`` go to a JSON-lines pose record
(:mod:`actial_ros.simulation.record`), closed with an ``end`` line after the last frame of a finite run.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

import rclpy
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import QoSProfile
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image

from actial_ros.errors import ConfigError
from actial_ros.imaging import rgb_to_image_fields
from actial_ros.message_fields import ns_to_stamp, pose_fields
from actial_ros.nodes.descriptors import declare_parameters
from actial_ros.nodes.entry import run_node
from actial_ros.nodes.qos import qos_profile
from actial_ros.nodes.ros_messages import camera_info_msg, header_msg, image_msg, odometry_msg
from actial_ros.simulation.parameters import RIG_PARAMETERS, rig_config_from_values
from actial_ros.simulation.record import PoseRecordWriter
from actial_ros.simulation.render import depth_image_fields
from actial_ros.simulation.rig import SimFrame, SimRig, SimStep
from actial_ros.simulation.timing import Pacer

__all__ = ['SimRigNode', 'main']

_CLOCK_WHILE_WAITING_S = 0.1


class SimRigNode(Node):
    """The simulated rig as a ROS 2 node (see the module docstring).

    Raises:
        ConfigError: invalid parameters, a missing model or texture, or pybullet not installed.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__('sim_rig', **kwargs)
        values = declare_parameters(self, RIG_PARAMETERS, read_only=True, dynamic_numbers=True)
        self._values = values
        config = rig_config_from_values(values)
        if bool(self.get_parameter('use_sim_time').value):
            self.get_logger().warning('use_sim_time is true on the rig; it paces with the wall clock regardless')
        self._rig = SimRig(config)
        self._on_end = str(values['on_end'])
        self._frames = (str(values['odom_frame']), str(values['base_frame']), str(values['camera_frame']))
        depth = int(values['qos_depth'])
        image_qos = qos_profile(str(values['image_qos']), depth)
        self._image_pub = self.create_publisher(Image, str(values['image_topic']), image_qos)
        self._info_pub = self.create_publisher(CameraInfo, str(values['camera_info_topic']), image_qos)
        self._depth_pub = (
            self.create_publisher(Image, str(values['depth_topic']), image_qos) if config.render.depth else None
        )
        self._odom_pub = self.create_publisher(Odometry, str(values['odometry_topic']), QoSProfile(depth=100))
        self._pose_pub = self.create_publisher(PoseStamped, str(values['camera_pose_topic']), QoSProfile(depth=100))
        self._clock_pub = (
            self.create_publisher(Clock, '/clock', QoSProfile(depth=10)) if bool(values['publish_clock']) else None
        )
        self._record: PoseRecordWriter | None = None
        if str(values['record']):
            try:
                self._record = PoseRecordWriter(str(values['record']), self._rig.meta())
            except ConfigError:
                self._rig.close()
                raise
        self._stop = threading.Event()
        self._pacer = Pacer(config.timing.step_ns / 1e9, float(values['real_time_factor']), self._stop)
        self.frames_published = 0
        self.sim_time_ns = config.timing.start_ns
        self.error: str | None = None
        self.done = False
        self._thread = threading.Thread(target=self._run, name='sim_rig', daemon=True)
        self._thread.start()
        frames = self._rig.total_frames
        self.get_logger().info(
            f'{config.trajectory.kind} trajectory, {len(self._rig.scene.objects)} objects, '
            f'{config.camera.width}x{config.camera.height} at {config.timing.camera_rate_hz:g} Hz, '
            f'{"endless" if frames is None else f"{frames} frames"}, real-time factor '
            f'{float(values["real_time_factor"]):g}'
        )

    # -- the stepping thread ----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            if self._wait_for_subscribers():
                self._step_loop()
        except Exception as error:  # report, do not die silently (unless ROS is shutting down under us)
            if not self._stop.is_set() and self.context.ok():
                self.error = f'{type(error).__name__}: {error}'
                self.get_logger().error(f'simulation stopped: {self.error}')
        finally:
            if self._record is not None:
                self._record.close(complete=self._completed())
            self.done = True

    def _completed(self) -> bool:
        total = self._rig.total_frames
        return total is not None and self.frames_published >= total

    def _wait_for_subscribers(self) -> bool:
        wait_s, settle_s = float(self._values['wait_for_subscribers_s']), float(self._values['settle_s'])
        started = time.monotonic()
        matched_at: float | None = None
        while not self._stop.is_set():
            now = time.monotonic()
            if matched_at is None and (self._image_pub.get_subscription_count() > 0 or now - started >= wait_s):
                matched_at = now
            if matched_at is not None and now - matched_at >= settle_s:
                return True
            self._publish_clock(self._rig.config.timing.start_ns)
            self._stop.wait(_CLOCK_WHILE_WAITING_S)
        return False

    def _step_loop(self) -> None:
        total = self._rig.total_steps
        pacer = self._pacer
        pacer.start(0)
        step = 0
        while not self._stop.is_set():
            if step == total:
                if self._record is not None:
                    self._record.close(complete=self._completed())
                self.get_logger().info(f'run finished: {self.frames_published} frames')
                if self._on_end == 'exit':
                    return
                if pacer.real_time_factor <= 0:  # holding: the clock goes on in real time, not flat out
                    pacer = Pacer(pacer.step_s, 1.0, self._stop)
                    pacer.start(step)
            if not pacer.wait(step):
                return
            self._publish_step(self._rig.step(step))
            step += 1

    def _publish_step(self, state: SimStep) -> None:
        self.sim_time_ns = state.stamp_ns
        self._publish_clock(state.stamp_ns)
        if state.publishes_odometry:
            self._odom_pub.publish(self._odometry(state))
        if state.publishes_camera:
            frame = self._rig.render(state)
            self._publish_frame(frame)
            if self._record is not None:
                self._record.add(frame.index, frame.stamp_ns, frame.t_world_camera, frame.t_world_base)
            self.frames_published += 1

    def _publish_clock(self, stamp_ns: int) -> None:
        if self._clock_pub is not None:
            clock = Clock()
            clock.clock.sec, clock.clock.nanosec = ns_to_stamp(stamp_ns)
            self._clock_pub.publish(clock)

    def _odometry(self, state: SimStep) -> Odometry:
        odom_frame, base_frame, _ = self._frames
        return odometry_msg(
            state.t_world_base,
            header_msg(state.stamp_ns, odom_frame),
            base_frame,
            linear_velocity=state.linear_velocity,
            angular_velocity=state.angular_velocity,
        )

    def _publish_frame(self, frame: SimFrame) -> None:
        odom_frame, _, camera_frame = self._frames
        header = header_msg(frame.stamp_ns, camera_frame)
        self._info_pub.publish(camera_info_msg(frame.intrinsics, header))
        self._image_pub.publish(image_msg(rgb_to_image_fields(frame.rgb, 'rgb8'), header))
        if self._depth_pub is not None and frame.depth is not None:
            self._depth_pub.publish(image_msg(depth_image_fields(frame.depth), header))
        pose = PoseStamped()
        pose.header = header_msg(frame.stamp_ns, odom_frame)
        (x, y, z), (qx, qy, qz, qw) = pose_fields(frame.t_world_camera)
        pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = x, y, z
        o = pose.pose.orientation
        o.x, o.y, o.z, o.w = qx, qy, qz, qw
        self._pose_pub.publish(pose)

    # -- lifecycle ---------------------------------------------------------------------------------

    def wait_for_delivery(self, timeout_s: float = 5.0) -> bool:
        """Block until reliable subscribers acknowledged everything published (or ``timeout_s`` passed);
        called before exiting so that the last frames are not lost with the publishers."""
        deadline = time.monotonic() + timeout_s
        publishers = [self._odom_pub, self._info_pub, self._image_pub, self._pose_pub, self._depth_pub, self._clock_pub]
        delivered = True
        for publisher in publishers:
            if publisher is not None:
                left = max(0.0, deadline - time.monotonic())
                delivered = publisher.wait_for_all_acked(Duration(nanoseconds=int(left * 1e9))) and delivered
        return delivered

    @property
    def exit_requested(self) -> bool:
        """True when the run ended and ``on_end`` is ``exit`` (or the simulation failed)."""
        return self.done and (self._on_end == 'exit' or self.error is not None)

    def stop(self) -> None:
        """Stop stepping, wait for the thread, close the record and release pybullet (idempotent)."""
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=30.0)
        if self._record is not None:
            self._record.close(complete=self._completed())
        self._rig.close()

    def destroy_node(self) -> None:
        """Stop the simulation, then destroy the node."""
        self.stop()
        super().destroy_node()


def _spin_until_done(node: SimRigNode) -> int:
    while rclpy.ok() and not node.exit_requested:
        rclpy.spin_once(node, timeout_sec=0.1)
    if node.error is not None:
        return 1
    if not node.wait_for_delivery(5.0):
        node.get_logger().warning('some subscribers did not acknowledge the last messages within 5 s')
    return 0


def main(args: Sequence[str] | None = None) -> int:
    """Entry point: ``sim_rig --ros-args [-p trajectory:=orbit -p duration_s:=12 ...]``."""
    return run_node(SimRigNode, name='sim_rig', args=args, spin=_spin_until_done)


if __name__ == '__main__':
    sys.exit(main())
