"""config/spatial_reasoner.yaml lists every node parameter with its default; the launch file loads."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from script_modules import load_script

REPO = Path(__file__).resolve().parents[1]


def test_yaml_lists_every_parameter_with_its_default() -> None:
    pytest.importorskip('rclpy')
    from actial_ros.nodes.spatial_reasoner_parameters import PARAMETERS, SpatialReasonerSettings

    document = yaml.safe_load((REPO / 'config' / 'spatial_reasoner.yaml').read_text())
    values = document['spatial_reasoner']['ros__parameters']
    assert set(values) == {param.name for param in PARAMETERS}
    for param in PARAMETERS:
        assert values[param.name] == param.default, param.name
        assert type(values[param.name]) is type(param.default), f'{param.name}: YAML type differs from the default'
    SpatialReasonerSettings.from_values(values).reasoner_config()  # the defaults form a valid configuration


def test_settings_have_one_field_per_parameter_typed_as_its_default() -> None:
    """The table is the one declaration: the typed settings follow it, name by name and type by type."""
    import dataclasses
    import typing

    from actial_ros.nodes.spatial_reasoner_parameters import PARAMETERS, SpatialReasonerSettings

    hints = typing.get_type_hints(SpatialReasonerSettings)
    assert [field.name for field in dataclasses.fields(SpatialReasonerSettings)] == [p.name for p in PARAMETERS]
    for param in PARAMETERS:
        default = param.default
        expected = tuple[type(default[0]), ...] if isinstance(default, list) else type(default)  # type: ignore[misc]
        assert hints[param.name] == expected, param.name
    settings = SpatialReasonerSettings.from_values({param.name: param.default for param in PARAMETERS})
    assert settings.extrinsic_translation == (0.0, 0.0, 0.0) and settings.qos_depth == 10


def test_node_starts_from_the_yaml(rclpy_context: Any) -> None:
    from rclpy.parameter import Parameter

    from actial_ros.nodes.spatial_reasoner import SpatialReasonerNode
    from actial_ros.nodes.spatial_reasoner_parameters import PARAMETERS

    values = yaml.safe_load((REPO / 'config' / 'spatial_reasoner.yaml').read_text())['spatial_reasoner'][
        'ros__parameters'
    ]
    values['min_yaw_deg'] = 25.0
    overrides = [Parameter(name, value=value) for name, value in values.items()]
    node = SpatialReasonerNode(context=rclpy_context, parameter_overrides=overrides)
    try:
        assert node.get_parameter('min_yaw_deg').value == 25.0
        assert {p.name for p in PARAMETERS} <= {name for name in node._parameters}
    finally:
        node.destroy_node()


def test_launch_file_compiles() -> None:
    source = (REPO / 'launch' / 'spatial_reasoner.launch.py').read_text()
    compile(source, 'spatial_reasoner.launch.py', 'exec')


def test_launch_description_where_launch_ros_is_importable() -> None:
    pytest.importorskip('launch_ros')  # not installable from wheels here (ENVIRONMENT.md): skipped
    launch: Any = importlib.import_module('launch')  # typed Any: the repo's launch/ folder shadows it for mypy
    LaunchContext = launch.LaunchContext
    LaunchDescription = launch.LaunchDescription

    module = load_script(REPO / 'launch' / 'spatial_reasoner.launch.py', 'spatial_reasoner_launch')
    description = module.generate_launch_description()
    assert isinstance(description, LaunchDescription)
    names = {entity.name for entity in description.entities if hasattr(entity, 'name')}
    assert {'params_file', 'backend', 'image', 'odom', 'use_sim_time', 'autostart'} <= names
    context = LaunchContext()
    for entity in description.entities:
        entity.visit(context)
    nodes = description.entities[-1].execute(context)
    assert nodes[0].node_executable == 'spatial_reasoner'


def test_extrinsics_from_tf_needs_tf2(rclpy_context: Any) -> None:
    from rclpy.parameter import Parameter

    from actial_ros.errors import ConfigError
    from actial_ros.nodes.spatial_reasoner import SpatialReasonerNode

    try:
        import tf2_ros  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match='tf2_ros'):
            SpatialReasonerNode(
                context=rclpy_context, parameter_overrides=[Parameter('extrinsics_from_tf', value=True)]
            )
    else:  # a ROS install: the node starts and waits for the transform
        node = SpatialReasonerNode(
            context=rclpy_context, parameter_overrides=[Parameter('extrinsics_from_tf', value=True)]
        )
        node.destroy_node()


def test_every_drop_reason_is_documented_in_the_readme() -> None:
    """The README's Robustness table names every counter the node can report (issue 11)."""
    from actial_ros.enums import DropReason

    robustness = _robustness_section()
    missing = [reason.value for reason in DropReason if f'`drop_{reason.value}`' not in robustness]
    assert not missing, f'undocumented drop reasons: {missing}'


def _robustness_section() -> str:
    readme = (REPO / 'README.md').read_text()
    return readme[readme.index('## Robustness') :].split('\n## ', 1)[0]


def _counter_keys(path: str, *patterns: str) -> set[str]:
    """The counter keys a module writes, read from its source: literal keys, and f-string keys with each
    ``{expression}`` turned into a regex that matches a ``<name>`` placeholder or a literal word."""
    source = (REPO / path).read_text()
    keys: set[str] = set()
    for pattern in patterns:
        for key in re.findall(pattern, source):
            keys.add(re.sub(r'\\\{[^}]*\\\}', r'(?:<\\w+>|\\w+)', re.escape(key)))
    return keys


def test_every_counter_is_documented_in_the_readme() -> None:
    """Every ``warn_*`` key of the node, every bag_recorder counter and every bag-reading skip is named in the
    README's Robustness section (issue 11: "every drop reason ... with its counter name"). Keys are read
    from the source, so a new counter fails this test until it is documented."""
    from actial_ros.delivery import COUNTER_KEYS

    robustness = _robustness_section()
    node_warnings = _counter_keys('actial_ros/nodes/spatial_reasoner.py', r"_warn\('(\w+)'") | _counter_keys(
        'actial_ros/reasoner.py', r"warnings\.add\('(\w+)'\)"
    )
    node_warnings |= {key for key in COUNTER_KEYS if key != 'dds_lost'}  # dds_lost: a drop reason there
    recorder = _counter_keys(
        'actial_ros/nodes/bag_recorder.py', r"_count\(f?'([^']+)'", r"_counts\[f?'([^']+)'\]"
    ) | set(COUNTER_KEYS)
    reader = _counter_keys('actial_ros/sources/rosbag.py', r"skips\['(\w+)'\]")
    received = {'odometry_received', 'camera_info_received', 'images_received'}  # what arrived, not a loss
    expected = {f'warn_{key}' for key in node_warnings} | (recorder - received - {'(?:<\\w+>|\\w+)_written'}) | reader
    assert len(node_warnings) >= 6 and len(recorder) >= 12 and len(reader) >= 4, (node_warnings, recorder, reader)
    missing = sorted(key for key in expected if not re.search(f'`{key}`', robustness))
    assert not missing, f'counters not in the README Robustness section: {missing}'


def test_node_defaults_are_the_core_defaults() -> None:
    """Each rule in one home (issue 13): the node's defaults for core settings come from the core's dataclasses."""
    import dataclasses

    pytest.importorskip('rclpy')
    from actial_ros.nodes.spatial_reasoner_parameters import PARAMETERS, SpatialReasonerSettings

    values = {param.name: param.default for param in PARAMETERS}
    config = SpatialReasonerSettings.from_values(values).reasoner_config()
    default = type(config)()
    # Everything but the node's own question-rate bound (min_pair_interval_s) is the core's default.
    assert dataclasses.replace(config.pair_policy, min_pair_interval_s=0.0) == type(config.pair_policy)()
    assert config.match_policy == type(config.match_policy)()
    assert config.thresholds == type(config.thresholds)()
    assert (config.max_in_flight, config.max_queue, config.max_request_age_s) == (
        default.max_in_flight,
        default.max_queue,
        default.max_request_age_s,
    )
    assert config.limits.max_frames == type(config.limits)().max_frames
