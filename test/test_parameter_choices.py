"""Choice parameters have one rule (ParameterSpec.choices, checked by ParameterSpec.check / check_choices) for
every node, the simulator and the commands: image transports, QoS names, bag storages, the rig's on_end."""

from __future__ import annotations

import pytest

from actial_ros.enums import BAG_STORAGES, IMAGE_TRANSPORTS, QOS_NAMES
from actial_ros.errors import ConfigError
from actial_ros.nodes.spatial_reasoner_parameters import PARAMETERS
from actial_ros.parameter_spec import ParameterSpec, alternatives, check_choices
from actial_ros.simulation.parameters import RIG_PARAMETERS, rig_config_from_values


def test_a_value_outside_the_choices_is_refused_with_them_named() -> None:
    spec = ParameterSpec('image_transport', 'raw', 'transport', choices=IMAGE_TRANSPORTS)
    spec.check('compressed')
    with pytest.raises(ConfigError, match=r"^image_transport must be 'raw' or 'compressed', got 'theora'$"):
        spec.check('theora')
    with pytest.raises(ConfigError, match=r"^left\.image_transport must be 'raw' or 'compressed', got 'x'$"):
        spec.check('x', name='left.image_transport')
    ParameterSpec('anything', 'a', 'free text').check('whatever')  # no choices: nothing to check
    assert alternatives(('a', 'b', 'c')) == "'a', 'b' or 'c'" and alternatives(('a',)) == "'a'"


def test_the_tables_declare_their_choices() -> None:
    by_name = {spec.name: spec for spec in PARAMETERS}
    assert by_name['image_transport'].choices == IMAGE_TRANSPORTS
    assert by_name['image_qos'].choices == by_name['odometry_qos'].choices == QOS_NAMES
    check_choices(PARAMETERS, {spec.name: spec.default for spec in PARAMETERS})  # every default is a choice
    with pytest.raises(ConfigError, match="odometry_qos must be 'sensor_data' or 'reliable', got 'best_effort'"):
        check_choices(PARAMETERS, {'odometry_qos': 'best_effort'})
    rig = {spec.name: spec for spec in RIG_PARAMETERS}
    assert rig['image_qos'].choices == QOS_NAMES and rig['on_end'].choices == ('hold', 'exit')
    with pytest.raises(ConfigError, match="on_end must be 'hold' or 'exit', got 'stop'"):
        rig_config_from_values({'on_end': 'stop'})
    assert BAG_STORAGES == ('mcap', 'sqlite3')


def test_ros_describes_the_choices() -> None:
    pytest.importorskip('rclpy')
    from actial_ros.nodes.descriptors import parameter_descriptor

    spec = ParameterSpec('storage', 'mcap', 'storage', choices=BAG_STORAGES)
    assert parameter_descriptor(spec).additional_constraints == 'one of: mcap, sqlite3'
