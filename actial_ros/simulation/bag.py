"""Write a simulated run to a rosbag2 (MCAP or sqlite3) without ROS, with :mod:`rosbags`.

The bag holds what the ``sim_rig`` node publishes, on the same topics and with the same stamps: the
clock every step (``rosgraph_msgs/Clock``), odometry (``nav_msgs/Odometry``, ``T_odom_base``), and per
camera frame ``sensor_msgs/CameraInfo`` and ``sensor_msgs/Image`` (rgb8; optionally 32FC1 depth). Each
message is logged at its simulated stamp, as ``ros2 bag record --use-sim-time`` would. With ``record``
the pose record is written alongside, so a dataset built from the bag can be checked against it.

The bag folder also gets the recorder's ``recording.json`` (camera name, topics and the rig's camera mount
``T_base_camera_optical``), so ``build-viewpoint --source rosbag:BAG``, replay and the demo read the bag with
its true extrinsic and need no flags.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actial_ros.bags.cdr import (
    CAMERA_INFO_TYPE,
    IMAGE_TYPE,
    ODOMETRY_TYPE,
    camera_info_cdr,
    image_cdr,
    image_fields_cdr,
    odometry_cdr,
)
from actial_ros.bags.recording import recording_camera_entry, write_recording_json
from actial_ros.errors import ConfigError
from actial_ros.message_fields import ns_to_stamp
from actial_ros.simulation.record import PoseRecordWriter
from actial_ros.simulation.render import depth_image_fields
from actial_ros.simulation.rig import SimRig

CLOCK_TYPE = 'rosgraph_msgs/msg/Clock'

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
    camera_name: str = 'camera'


@dataclass(frozen=True)
class BagSummary:
    """What :func:`write_sim_bag` wrote: the bag path, message counts per topic, frames, last stamp."""

    path: Path
    counts: dict[str, int]
    frames: int
    last_stamp_ns: int


def _clock_cdr(typestore: Any, stamp_ns: int) -> bytes:
    """CDR bytes of a ``rosgraph_msgs/Clock`` at ``stamp_ns``."""
    sec, nanosec = ns_to_stamp(stamp_ns)
    types = typestore.types
    message = types[CLOCK_TYPE](clock=types['builtin_interfaces/msg/Time'](sec=sec, nanosec=nanosec))
    return bytes(typestore.serialize_cdr(message, CLOCK_TYPE))


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

    The bag folder also holds ``recording.json`` with the camera's topics and mount (module doc).

    Raises:
        ConfigError: an endless run, an existing ``path``, or an unknown storage.
    """
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    if rig.total_steps is None:
        raise ConfigError('an endless run cannot be written to a bag; give a duration')
    plugins = {'mcap': StoragePlugin.MCAP, 'sqlite3': StoragePlugin.SQLITE3}
    if storage not in plugins:
        raise ConfigError(f'storage must be one of {sorted(plugins)}, got {storage!r}')
    target = Path(path)
    if target.exists():
        raise ConfigError(f'{target} exists; rosbag2 writes a new directory')
    names = topics or SimTopics()
    store = get_typestore(Stores.ROS2_KILTED)
    counts: dict[str, int] = {}
    frames, last = 0, 0
    writer_record = PoseRecordWriter(record, rig.meta()) if record is not None else None
    completed = False
    try:
        with Writer(target, version=9, storage_plugin=plugins[storage]) as writer:
            wanted = [(names.odometry, ODOMETRY_TYPE), (names.camera_info, CAMERA_INFO_TYPE), (names.image, IMAGE_TYPE)]
            if clock:
                wanted.insert(0, (names.clock, CLOCK_TYPE))
            if rig.config.render.depth:
                wanted.append((names.depth, IMAGE_TYPE))
            connections = {topic: writer.add_connection(topic, msgtype, typestore=store) for topic, msgtype in wanted}

            def put(topic: str, stamp_ns: int, data: bytes) -> None:
                writer.write(connections[topic], stamp_ns, data)
                counts[topic] = counts.get(topic, 0) + 1

            camera_frame = names.camera_frame
            for state in rig.steps():
                last = state.stamp_ns
                if clock:
                    put(names.clock, state.stamp_ns, _clock_cdr(store, state.stamp_ns))
                if state.publishes_odometry:
                    odometry = odometry_cdr(
                        store,
                        state.stamp_ns,
                        state.t_world_base,
                        frame_id=names.odom_frame,
                        child_frame_id=names.base_frame,
                        linear_velocity=state.linear_velocity,
                        angular_velocity=state.angular_velocity,
                    )
                    put(names.odometry, state.stamp_ns, odometry)
                if state.publishes_camera:
                    frame = rig.render(state)
                    stamp = frame.stamp_ns
                    put(
                        names.camera_info, stamp, camera_info_cdr(store, stamp, frame.intrinsics, frame_id=camera_frame)
                    )
                    put(names.image, stamp, image_cdr(store, stamp, frame.rgb, frame_id=camera_frame))
                    if frame.depth is not None:
                        depth = image_fields_cdr(store, stamp, depth_image_fields(frame.depth), frame_id=camera_frame)
                        put(names.depth, stamp, depth)
                    if writer_record is not None:
                        writer_record.add(frame.index, frame.stamp_ns, frame.t_world_camera, frame.t_world_base)
                    frames += 1
        camera = recording_camera_entry(names.camera_name, names.image, names.camera_info, rig.config.extrinsic)
        write_recording_json(target, [camera], odometry_topic=names.odometry)
        completed = True
    finally:
        if writer_record is not None:
            writer_record.close(complete=completed)
    return BagSummary(path=target, counts=counts, frames=frames, last_stamp_ns=last)
