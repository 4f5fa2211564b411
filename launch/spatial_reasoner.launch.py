"""Launch the spatial_reasoner node with its parameter file.

    ros2 launch actial_ros spatial_reasoner.launch.py \
        [params_file:=/path/to.yaml] [backend:=vllm] [vllm_base_url:=http://host:8000/v1] \
        [image:=/my_camera/image_raw] [camera_info:=/my_camera/camera_info] [odom:=/odom] \
        [namespace:=robot1] [use_sim_time:=true] [autostart:=false] [rviz:=true]

Topic arguments are remappings of the node's default topic names; ``backend`` and ``vllm_base_url``
override the parameter file only when given (empty: the file's value). The node is a managed (lifecycle)
node: ``autostart`` (default ``true``) configures and activates it at start-up; ``autostart:=false`` leaves
it unconfigured for a lifecycle manager (``ros2 lifecycle set /spatial_reasoner configure``,
nav2_lifecycle_manager). ``rviz:=true`` also starts RViz 2 with ``config/actial_ros.rviz`` (the camera image,
``~/pair_image`` and ``~/markers``; a Foxglove layout with the diagnostics too: ``config/foxglove_layout.json``).
Without ``ros2 launch`` (a pip
install), the ``spatial_reasoner`` entry point takes the same YAML:
``spatial_reasoner --ros-args --params-file config/spatial_reasoner.yaml``.
"""

from __future__ import annotations

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchContext, LaunchDescription


def generate_launch_description() -> LaunchDescription:
    """The launch description: arguments plus one ``spatial_reasoner`` node."""
    default_params = os.path.join(get_package_share_directory('actial_ros'), 'config', 'spatial_reasoner.yaml')
    arguments = [
        DeclareLaunchArgument('params_file', default_value=default_params, description='Node parameter YAML.'),
        DeclareLaunchArgument('backend', default_value='', description="'vllm' or 'geometry' (empty: the file's)."),
        DeclareLaunchArgument(
            'vllm_base_url',
            default_value='',
            description="OpenAI-compatible base URL of the vLLM server (empty: the file's).",
        ),
        DeclareLaunchArgument('image', default_value='/camera/image_raw', description='Image topic.'),
        DeclareLaunchArgument('camera_info', default_value='/camera/camera_info', description='CameraInfo topic.'),
        DeclareLaunchArgument('odom', default_value='/odom', description='Odometry topic.'),
        DeclareLaunchArgument('namespace', default_value='', description='Node namespace.'),
        DeclareLaunchArgument('use_sim_time', default_value='false', description='Use /clock.'),
        DeclareLaunchArgument(
            'autostart',
            default_value='true',
            description='Configure and activate at start-up (false: wait for a lifecycle manager).',
        ),
        DeclareLaunchArgument('rviz', default_value='false', description='Also start RViz 2 (config/actial_ros.rviz).'),
    ]
    return LaunchDescription([*arguments, OpaqueFunction(function=_node)])


def _node(context: LaunchContext) -> list[Node]:
    value = lambda name: LaunchConfiguration(name).perform(context)  # noqa: E731
    flag = lambda name: value(name).lower() in ('1', 'true', 'yes')  # noqa: E731
    overrides: dict[str, object] = {'use_sim_time': flag('use_sim_time'), 'autostart': flag('autostart')}
    for name in ('backend', 'vllm_base_url'):
        if value(name):
            overrides[name] = value(name)
    node = Node(
        package='actial_ros',
        executable='spatial_reasoner',
        name='spatial_reasoner',
        namespace=value('namespace'),
        output='screen',
        emulate_tty=True,
        parameters=[value('params_file'), overrides],
        remappings=[
            ('/camera/image_raw', value('image')),
            ('/camera/camera_info', value('camera_info')),
            ('/odom', value('odom')),
        ],
    )
    if not flag('rviz'):
        return [node]
    view = os.path.join(get_package_share_directory('actial_ros'), 'config', 'actial_ros.rviz')
    rviz = Node(package='rviz2', executable='rviz2', name='rviz2', arguments=['-d', view], output='screen')
    return [node, rviz]
