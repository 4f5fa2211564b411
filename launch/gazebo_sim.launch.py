"""Gazebo (gz sim) + ros_gz_bridge + the spatial_reasoner node on simulated time.

NOT exercised in this repository's CI: Gazebo cannot be installed on its machines. The file is
checked for syntax and its bridge mapping for completeness always, and loaded as a launch description
where ``launch_ros`` is importable (``test/test_sim_gazebo.py``). The simulation that runs everywhere
is the pybullet rig: ``actial-ros sim`` (docs/simulation.md).

    ros2 launch actial_ros gazebo_sim.launch.py world:=/path/to/world.sdf \
        [bridge_config:=/path/to/bridge.yaml] [params_file:=/path/to/spatial_reasoner.yaml] \
        [backend:=geometry|vllm] [headless:=true] [gz_args:='-v 4'] [start_reasoner:=true]

Starts:

* ``gz sim -r <world>`` (``-s`` too when ``headless``), the simulation, running from the start;
* ``ros_gz_bridge parameter_bridge`` with ``config_file`` = ``bridge_config`` (default
  ``config/gazebo_bridge.yaml``: camera image, camera_info, odometry and ``/clock``, Gazebo -> ROS);
* ``spatial_reasoner`` with ``use_sim_time: true`` and ``params_file`` (the node reads
  ``/camera/image_raw``, ``/camera/camera_info`` and ``/odom``, the bridge's ROS topics). Give it the
  camera's ``extrinsic_translation`` / ``extrinsic_rotation_xyzw`` (base_link -> optical frame) in the
  parameter file: Gazebo's camera link is x-forward, the optical frame z-forward (docs/simulation.md).
"""

from __future__ import annotations

from pathlib import Path

from launch.actions import DeclareLaunchArgument, ExecuteProcess, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchContext, LaunchDescription

# share/actial_ros/launch/<this file> when installed, launch/<this file> in the source tree: either way
# config/ is a sibling of launch/.
_PACKAGE_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BRIDGE_CONFIG = str(_PACKAGE_ROOT / 'config' / 'gazebo_bridge.yaml')
DEFAULT_PARAMS_FILE = str(_PACKAGE_ROOT / 'config' / 'spatial_reasoner.yaml')


def generate_launch_description() -> LaunchDescription:
    """Arguments, then gz sim, the bridge and the reasoner (built once the arguments are known)."""
    arguments = [
        DeclareLaunchArgument(
            'world',
            default_value='sensors_demo.sdf',
            description='SDF world for gz sim (a file, or a name on GZ_SIM_RESOURCE_PATH).',
        ),
        DeclareLaunchArgument('headless', default_value='false', description="Server only ('gz sim -s')."),
        DeclareLaunchArgument('gz_args', default_value='', description='Further gz sim arguments, space-separated.'),
        DeclareLaunchArgument(
            'bridge_config',
            default_value=DEFAULT_BRIDGE_CONFIG,
            description='ros_gz_bridge YAML (camera, camera_info, odometry, clock).',
        ),
        DeclareLaunchArgument(
            'params_file',
            default_value=DEFAULT_PARAMS_FILE,
            description='spatial_reasoner parameter YAML (set the camera extrinsic there).',
        ),
        DeclareLaunchArgument(
            'backend', default_value='', description="'geometry' or 'vllm' (empty: the parameter file's)."
        ),
        DeclareLaunchArgument('start_reasoner', default_value='true', description='Also start spatial_reasoner.'),
    ]
    return LaunchDescription([*arguments, OpaqueFunction(function=_actions)])


def _flag(text: str) -> bool:
    return text.strip().lower() in ('1', 'true', 'yes', 'on')


def _actions(context: LaunchContext) -> list[object]:
    value = lambda name: LaunchConfiguration(name).perform(context)  # noqa: E731
    gz_command = ['gz', 'sim', '-r']
    if _flag(value('headless')):
        gz_command.append('-s')
    gz_command += [arg for arg in value('gz_args').split() if arg]
    gz_command.append(value('world'))
    actions: list[object] = [
        ExecuteProcess(cmd=gz_command, output='screen', name='gz_sim'),
        Node(
            package='ros_gz_bridge',
            executable='parameter_bridge',
            name='actial_gz_bridge',
            output='screen',
            parameters=[{'config_file': value('bridge_config'), 'use_sim_time': True}],
        ),
    ]
    if _flag(value('start_reasoner')):
        overrides: dict[str, object] = {'use_sim_time': True}
        if value('backend'):
            overrides['backend'] = value('backend')
        actions.append(
            Node(
                package='actial_ros',
                executable='spatial_reasoner',
                name='spatial_reasoner',
                output='screen',
                emulate_tty=True,
                parameters=[value('params_file'), overrides],
            )
        )
    return actions
