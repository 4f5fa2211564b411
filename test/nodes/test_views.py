"""The shipped views (config/actial_ros.rviz, config/foxglove_layout.json) name only topics the spatial_reasoner node
really has, with the types it gives them: a renamed topic breaks this test, not the user's view (issue 22)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

rclpy = pytest.importorskip('rclpy')
from ros_harness import Checker, start, stop  # noqa: E402

pytestmark = pytest.mark.ros

REPO = Path(__file__).resolve().parents[2]

RVIZ_TYPES = {
    'rviz_default_plugins/Image': 'sensor_msgs/msg/Image',
    'rviz_default_plugins/MarkerArray': 'visualization_msgs/msg/MarkerArray',
}
FOXGLOVE_TYPES = {
    'Image': 'sensor_msgs/msg/Image',
    '3D': 'visualization_msgs/msg/MarkerArray',
    'DiagnosticSummary': 'diagnostic_msgs/msg/DiagnosticArray',
    'RawMessages': 'actial_ros_msgs/msg/ViewpointAnswer',
}


def rviz_topics(path: Path) -> dict[str, str]:
    """``{topic: message type}`` of every display of an RViz 2 config that subscribes to a topic."""
    config = yaml.safe_load(path.read_text())
    topics = {}
    for display in config['Visualization Manager']['Displays']:
        if 'Topic' in display:
            topics[display['Topic']['Value']] = RVIZ_TYPES[display['Class']]
    return topics


def foxglove_topics(path: Path) -> dict[str, str]:
    """``{topic: message type}`` of every panel of a Foxglove layout that shows a topic."""
    layout = json.loads(path.read_text())
    topics: dict[str, str] = {}
    for panel_id, config in layout['configById'].items():
        kind = panel_id.split('!')[0]
        named = [
            config.get('imageMode', {}).get('imageTopic'),
            config.get('topicToRender'),
            config.get('topicPath'),
            *config.get('topics', {}),
        ]
        for topic in filter(None, named):
            topics[str(topic)] = FOXGLOVE_TYPES[kind]
    panels = set(layout['configById'])

    def leaves(node: Any) -> set[str]:
        return {node} if isinstance(node, str) else leaves(node['first']) | leaves(node['second'])

    assert leaves(layout['layout']) == panels  # every panel placed, no placed panel without a config
    return topics


def test_the_shipped_views_name_the_nodes_topics(ros_env: dict[str, str], rclpy_context: Any, tmp_path: Path) -> None:
    views = {
        'rviz': rviz_topics(REPO / 'config' / 'actial_ros.rviz'),
        'foxglove': foxglove_topics(REPO / 'config' / 'foxglove_layout.json'),
    }
    assert '/spatial_reasoner/pair_image' in views['rviz'] and '/spatial_reasoner/markers' in views['rviz']
    assert '/diagnostics' in views['foxglove'] and '/camera/image_raw' in views['foxglove']
    node = start('actial_ros.nodes.spatial_reasoner', {'backend': 'geometry'}, ros_env, tmp_path / 'node.log')
    checker = Checker(rclpy_context)
    try:
        graph: dict[str, set[str]] = {}
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline:
            checker.spin_for(0.5)
            graph = {}
            for query in (
                checker.node.get_publisher_names_and_types_by_node,
                checker.node.get_subscriber_names_and_types_by_node,
            ):
                try:
                    found = query('spatial_reasoner', '/')
                except Exception:  # the node is not discovered yet
                    found = []
                for topic, types in found:
                    graph.setdefault(topic, set()).update(types)
            if '/spatial_reasoner/markers' in graph and '/camera/image_raw' in graph:
                break
        for view, topics in views.items():
            for topic, kind in topics.items():
                assert kind in graph.get(topic, set()), (view, topic, kind, sorted(graph))
    finally:
        checker.close()
        stop(node)
