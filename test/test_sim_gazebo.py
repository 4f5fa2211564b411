"""The Gazebo launch file and bridge mapping. Gazebo itself is NOT exercised here (it cannot be installed on
these machines): the launch file is checked for syntax and structure always, its ros_gz_bridge mapping for
the topics and types the reasoner needs, and it is loaded as a launch description where launch_ros exists."""

from __future__ import annotations

import ast
import importlib
import py_compile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from script_modules import load_script

REPO = Path(__file__).resolve().parents[1]
LAUNCH_FILE = REPO / 'launch' / 'gazebo_sim.launch.py'
BRIDGE_CONFIG = REPO / 'config' / 'gazebo_bridge.yaml'

# ROS topic -> (ROS type, Gazebo type) the spatial_reasoner needs, with its default topic names.
EXPECTED = {
    '/camera/image_raw': ('sensor_msgs/msg/Image', 'gz.msgs.Image'),
    '/camera/camera_info': ('sensor_msgs/msg/CameraInfo', 'gz.msgs.CameraInfo'),
    '/odom': ('nav_msgs/msg/Odometry', 'gz.msgs.Odometry'),
    '/clock': ('rosgraph_msgs/msg/Clock', 'gz.msgs.Clock'),
}


def test_launch_file_compiles_and_has_the_expected_shape(tmp_path: Path) -> None:
    py_compile.compile(str(LAUNCH_FILE), cfile=str(tmp_path / 'launch.pyc'), doraise=True)
    tree = ast.parse(LAUNCH_FILE.read_text())
    functions = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
    assert 'generate_launch_description' in functions
    strings = {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)}
    for needed in (
        'gz',
        'sim',
        'ros_gz_bridge',
        'parameter_bridge',
        'config_file',
        'use_sim_time',
        'spatial_reasoner',
        'world',
    ):
        assert needed in strings, needed
    assert 'NOT exercised' in (ast.get_docstring(tree) or '')


def test_bridge_maps_camera_info_odometry_and_clock_from_gazebo() -> None:
    entries = yaml.safe_load(BRIDGE_CONFIG.read_text())
    assert isinstance(entries, list) and entries
    by_topic = {}
    for entry in entries:
        assert set(entry) >= {'ros_topic_name', 'gz_topic_name', 'ros_type_name', 'gz_type_name', 'direction'}, entry
        assert entry['direction'] == 'GZ_TO_ROS'
        assert entry['gz_topic_name'].startswith('/')
        by_topic[entry['ros_topic_name']] = (entry['ros_type_name'], entry['gz_type_name'])
    assert by_topic == EXPECTED
    # The ROS side is what the reasoner subscribes to by default (its shipped parameter file).
    reasoner = yaml.safe_load((REPO / 'config' / 'spatial_reasoner.yaml').read_text())
    defaults = reasoner['spatial_reasoner']['ros__parameters']
    topics = {defaults['image_topic'], defaults['camera_info_topic'], defaults['odometry_topic'], '/clock'}
    assert topics == set(EXPECTED)


def _load_launch_module() -> ModuleType:
    return load_script(LAUNCH_FILE, 'gazebo_sim_launch')


def test_launch_description_loads_where_launch_ros_exists() -> None:
    pytest.importorskip('launch_ros')
    from launch.actions import DeclareLaunchArgument, ExecuteProcess
    from launch.utilities import perform_substitutions
    from launch_ros.actions import Node

    launch: Any = importlib.import_module('launch')  # typed Any: the repo's launch/ folder shadows it for mypy
    LaunchContext = launch.LaunchContext

    module = _load_launch_module()
    description = module.generate_launch_description()
    declared = [e for e in description.entities if isinstance(e, DeclareLaunchArgument)]
    names = {argument.name for argument in declared}
    assert {'world', 'headless', 'gz_args', 'bridge_config', 'params_file', 'backend', 'start_reasoner'} <= names
    context = LaunchContext()
    for argument in declared:
        context.launch_configurations[argument.name] = perform_substitutions(context, argument.default_value)
    assert Path(context.launch_configurations['bridge_config']) == BRIDGE_CONFIG
    context.launch_configurations['headless'] = 'true'
    actions = module._actions(context)
    processes = [a for a in actions if isinstance(a, ExecuteProcess)]
    nodes = [a for a in actions if isinstance(a, Node)]
    assert len(processes) == 1 and len(nodes) == 2
    command = [perform_substitutions(context, part) for part in processes[0].cmd]
    assert command[:3] == ['gz', 'sim', '-r'] and '-s' in command and command[-1] == 'sensors_demo.sdf'
