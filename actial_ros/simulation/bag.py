"""Write a simulated run to a rosbag2 (MCAP or sqlite3) without ROS, with :mod:`rosbags`.

The bag holds what the ``sim_rig`` node publishes, on the same topics and with the same stamps: the
clock every step (``rosgraph_msgs/Clock``), odometry (``nav_msgs/Odometry``, ``T_odom_base``), and per
camera frame ``sensor_msgs/CameraInfo`` and ``sensor_msgs/Image`` (rgb8; optionally 32FC1 depth). Each
message is logged at its simulated stamp, as ``ros2 bag record --use-sim-time`` would. With ``record``
the pose record is written alongside, so a dataset built from the bag can be checked against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from actial_ros.errors import ConfigError
from actial_ros.imaging import ImageFields, rgb_to_image_fields
from actial_ros.messages import ns_to_stamp, pose_fields
from actial_ros.simulation.camera import camera_info_arrays
from actial_ros.simulation.record import PoseRecordWriter
from actial_ros.simulation.render import depth_image_fields
from actial_ros.simulation.rig import SimFrame, SimRig, SimStep

__all__ = ['BagSummary', 'SimTopics', 'write_sim_bag']


@dataclass(frozen=True)
class SimTopics:
    """Topic and frame names of a simulated run (the ``sim_rig`` node's defaults)."""

    image: str = '/camera/image_raw'
    camera_info: str = '/camera/camera_info'
    depth: str = '/camera/depth/image_raw'
    odometry: str = '/odom'
    clock: str = '/clock'
    odom_frame: str = 'odom'
    base_frame: str = 'base_link'
    camera_frame: str = 'camera_optical_frame'


@dataclass(frozen=True)
class BagSummary:
    """What :func:`write_sim_bag` wrote: the bag path, message counts per topic, frames, last stamp."""

    path: Path
    counts: dict[str, int]
    frames: int
    last_stamp_ns: int


class _Messages:
    """Builds rosbags message objects (rosbags' message classes need every field at construction)."""

    def __init__(self, topics: SimTopics) -> None:
        from rosbags.typesys import Stores, get_typestore

        self.store = get_typestore(Stores.ROS2_KILTED)
        self.topics = topics
        self.t = self.store.types

    def _header(self, stamp_ns: int, frame_id: str) -> Any:
        sec, nanosec = ns_to_stamp(stamp_ns)
        return self.t['std_msgs/msg/Header'](
            stamp=self.t['builtin_interfaces/msg/Time'](sec=sec, nanosec=nanosec), frame_id=frame_id
        )

    def clock(self, stamp_ns: int) -> Any:
        sec, nanosec = ns_to_stamp(stamp_ns)
        return self.t['rosgraph_msgs/msg/Clock'](clock=self.t['builtin_interfaces/msg/Time'](sec=sec, nanosec=nanosec))

    def odometry(self, state: SimStep) -> Any:
        t = self.t
        (x, y, z), (qx, qy, qz, qw) = pose_fields(state.t_world_base)
        pose = t['geometry_msgs/msg/Pose'](
            position=t['geometry_msgs/msg/Point'](x=x, y=y, z=z),
            orientation=t['geometry_msgs/msg/Quaternion'](x=qx, y=qy, z=qz, w=qw),
        )
        vector = t['geometry_msgs/msg/Vector3']
        twist = t['geometry_msgs/msg/Twist'](
            linear=vector(*(float(v) for v in state.linear_velocity)),
            angular=vector(*(float(v) for v in state.angular_velocity)),
        )
        zeros = np.zeros(36, dtype=np.float64)
        return t['nav_msgs/msg/Odometry'](
            header=self._header(state.stamp_ns, self.topics.odom_frame),
            child_frame_id=self.topics.base_frame,
            pose=t['geometry_msgs/msg/PoseWithCovariance'](pose=pose, covariance=zeros.copy()),
            twist=t['geometry_msgs/msg/TwistWithCovariance'](twist=twist, covariance=zeros.copy()),
        )

    def camera_info(self, frame: SimFrame) -> Any:
        arrays = camera_info_arrays(frame.intrinsics)
        t = self.t
        return t['sensor_msgs/msg/CameraInfo'](
            header=self._header(frame.stamp_ns, self.topics.camera_frame),
            height=frame.intrinsics.height,
            width=frame.intrinsics.width,
            distortion_model=str(arrays['distortion_model']),
            d=np.asarray(arrays['d'], dtype=np.float64),
            k=np.asarray(arrays['k'], dtype=np.float64),
            r=np.asarray(arrays['r'], dtype=np.float64),
            p=np.asarray(arrays['p'], dtype=np.float64),
            binning_x=0,
            binning_y=0,
            roi=t['sensor_msgs/msg/RegionOfInterest'](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False),
        )

    def image(self, stamp_ns: int, fields: ImageFields) -> Any:
        return self.t['sensor_msgs/msg/Image'](
            header=self._header(stamp_ns, self.topics.camera_frame),
            height=fields.height,
            width=fields.width,
            encoding=fields.encoding,
            is_bigendian=fields.is_bigendian,
            step=fields.step,
            data=np.frombuffer(fields.data, dtype=np.uint8),
        )


def write_sim_bag(
    path: str | Path,
    rig: SimRig,
    *,
    topics: SimTopics | None = None,
    storage: str = 'mcap',
    record: str | Path | None = None,
    clock: bool = True,
) -> BagSummary:
    """Render a finite run of ``rig`` into a new rosbag2 directory at ``path``.

    Args:
        path: the bag directory to create (must not exist).
        rig: the rig; its run must be finite (a duration, or a trajectory that ends).
        topics: topic and frame names.
        storage: ``mcap`` or ``sqlite3``.
        record: also write the pose record (JSONL) here.
        clock: include ``/clock`` (every simulation step).

    Raises:
        ConfigError: an endless run, an existing ``path``, or an unknown storage.
    """
    from rosbags.rosbag2 import StoragePlugin, Writer

    if rig.total_steps is None:
        raise ConfigError('an endless run cannot be written to a bag; give a duration')
    plugins = {'mcap': StoragePlugin.MCAP, 'sqlite3': StoragePlugin.SQLITE3}
    if storage not in plugins:
        raise ConfigError(f'storage must be one of {sorted(plugins)}, got {storage!r}')
    target = Path(path)
    if target.exists():
        raise ConfigError(f'{target} exists; rosbag2 writes a new directory')
    names = topics or SimTopics()
    build = _Messages(names)
    store = build.store
    counts: dict[str, int] = {}
    frames, last = 0, 0
    writer_record = PoseRecordWriter(record, rig.meta()) if record is not None else None
    completed = False
    try:
        with Writer(target, version=9, storage_plugin=plugins[storage]) as writer:
            wanted = [
                (names.odometry, 'nav_msgs/msg/Odometry'),
                (names.camera_info, 'sensor_msgs/msg/CameraInfo'),
                (names.image, 'sensor_msgs/msg/Image'),
            ]
            if clock:
                wanted.insert(0, (names.clock, 'rosgraph_msgs/msg/Clock'))
            if rig.config.render.depth:
                wanted.append((names.depth, 'sensor_msgs/msg/Image'))
            connections = {topic: writer.add_connection(topic, msgtype, typestore=store) for topic, msgtype in wanted}

            def put(topic: str, stamp_ns: int, message: Any) -> None:
                connection = connections[topic]
                writer.write(connection, stamp_ns, store.serialize_cdr(message, connection.msgtype))
                counts[topic] = counts.get(topic, 0) + 1

            for state in rig.steps():
                last = state.stamp_ns
                if clock:
                    put(names.clock, state.stamp_ns, build.clock(state.stamp_ns))
                if state.publishes_odometry:
                    put(names.odometry, state.stamp_ns, build.odometry(state))
                if state.publishes_camera:
                    frame = rig.render(state)
                    put(names.camera_info, frame.stamp_ns, build.camera_info(frame))
                    put(names.image, frame.stamp_ns, build.image(frame.stamp_ns, rgb_to_image_fields(frame.rgb)))
                    if frame.depth is not None:
                        put(names.depth, frame.stamp_ns, build.image(frame.stamp_ns, depth_image_fields(frame.depth)))
                    if writer_record is not None:
                        writer_record.add(frame.index, frame.stamp_ns, frame.t_world_camera, frame.t_world_base)
                    frames += 1
        completed = True
    finally:
        if writer_record is not None:
            writer_record.close(complete=completed)
    return BagSummary(path=target, counts=counts, frames=frames, last_stamp_ns=last)
