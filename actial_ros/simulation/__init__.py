"""Simulation without ROS: pybullet scenes rendered by the CPU renderer (DIRECT mode, TinyRenderer), a
camera on a moving base, simulated time and an exact ground-truth pose record.

Modules, one concept each:

* :mod:`~actial_ros.simulation.camera`: pinhole model, OpenGL matrices, depth, projection.
* :mod:`~actial_ros.simulation.mount`: ``T_base_camera_optical`` with a pitch or a sideways yaw.
* :mod:`~actial_ros.simulation.trajectory`: orbit, arc, random walk with look-at, wheeled drive.
* :mod:`~actial_ros.simulation.textures`: seeded procedural textures.
* :mod:`~actial_ros.simulation.world`: the pybullet client (pybullet is imported only there).
* :mod:`~actial_ros.simulation.scene`: floor and objects from ``pybullet_data`` or any URDF/OBJ.
* :mod:`~actial_ros.simulation.render`: RGB and depth, lighting, camera noise.
* :mod:`~actial_ros.simulation.timing`: step schedule in simulated time, real-time pacing.
* :mod:`~actial_ros.simulation.rig`: the rig (scene + trajectory + camera + schedule).
* :mod:`~actial_ros.simulation.parameters`: the rig's parameters as plain data -> :class:`RigConfig`.
* :mod:`~actial_ros.simulation.record`: the ground-truth pose record (JSON lines).
* :mod:`~actial_ros.simulation.bag`: a run written to a rosbag2 with :mod:`rosbags`.
* :mod:`~actial_ros.simulation.truth`: answers checked against the record; accuracy per yaw bin.

The rclpy node is :mod:`actial_ros.nodes.sim_rig`; see ``docs/simulation.md``.
"""

from actial_ros.simulation.bag import BagSummary, SimTopics, write_sim_bag
from actial_ros.simulation.camera import (
    OPTICAL_TO_GL,
    PinholeCamera,
    depth_from_buffer,
    project_points,
    projection_matrix,
    view_matrix,
)
from actial_ros.simulation.mount import camera_mount, mount_parameters
from actial_ros.simulation.parameters import RIG_PARAMETERS, rig_config_from_values
from actial_ros.simulation.record import PoseRecord, PoseRecordWriter, RecordedFrame, read_pose_record
from actial_ros.simulation.render import Renderer, Rendering, RenderOptions, depth_image_fields
from actial_ros.simulation.rig import RigConfig, SimFrame, SimRig, SimStep
from actial_ros.simulation.scene import (
    DEFAULT_OBJECTS,
    ObjectSpec,
    PlacedObject,
    Scene,
    SceneConfig,
    build_scene,
    parse_object_spec,
)
from actial_ros.simulation.timing import Pacer, SimTiming
from actial_ros.simulation.trajectory import (
    TRAJECTORY_KINDS,
    ArcTrajectory,
    DriveSegment,
    DriveTrajectory,
    OrbitTrajectory,
    RandomWalkTrajectory,
    Trajectory,
    make_trajectory,
)
from actial_ros.simulation.truth import YAW_BINS, YawBinStats, accuracy_by_yaw_bin, check_answers
from actial_ros.simulation.world import SimWorld

__all__ = [
    'DEFAULT_OBJECTS',
    'OPTICAL_TO_GL',
    'RIG_PARAMETERS',
    'TRAJECTORY_KINDS',
    'YAW_BINS',
    'ArcTrajectory',
    'BagSummary',
    'DriveSegment',
    'DriveTrajectory',
    'ObjectSpec',
    'OrbitTrajectory',
    'Pacer',
    'PinholeCamera',
    'PlacedObject',
    'PoseRecord',
    'PoseRecordWriter',
    'RandomWalkTrajectory',
    'RecordedFrame',
    'RenderOptions',
    'Renderer',
    'Rendering',
    'RigConfig',
    'Scene',
    'SceneConfig',
    'SimFrame',
    'SimRig',
    'SimStep',
    'SimTiming',
    'SimTopics',
    'SimWorld',
    'Trajectory',
    'YawBinStats',
    'accuracy_by_yaw_bin',
    'build_scene',
    'camera_mount',
    'check_answers',
    'depth_from_buffer',
    'depth_image_fields',
    'make_trajectory',
    'mount_parameters',
    'parse_object_spec',
    'project_points',
    'projection_matrix',
    'read_pose_record',
    'rig_config_from_values',
    'view_matrix',
    'write_sim_bag',
]
