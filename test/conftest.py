"""Shared fixtures: an isolated loopback ROS 2 environment and paths to the real captures."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from captures import SAMPLE_CAPTURE
from hypothesis import settings

from actial_ros.dds import local_ros_environment

# A fresh Hugging Face datasets cache for every test session, set before anything imports `datasets`.
# `load_dataset` keys its Arrow cache by data-file path and mtime only, so a cache left in ~/.cache by an
# earlier run on the same machine (same pytest tmp path) was served instead of the shards a test had just
# written (a CI run read rows of a build made from another checkout).
_DATASETS_CACHE = tempfile.mkdtemp(prefix='actial-test-hf-datasets-')
os.environ['HF_DATASETS_CACHE'] = _DATASETS_CACHE
atexit.register(shutil.rmtree, _DATASETS_CACHE, ignore_errors=True)


# Hypothesis (the fuzz suites): reproducible examples (derandomize: CI and a developer see the same
# ones), no per-example deadline (a 2-core CI machine running DDS tests beside it is slow), no example
# database written into the checkout.
settings.register_profile('actial', derandomize=True, deadline=None, database=None)
settings.load_profile(os.environ.get('HYPOTHESIS_PROFILE', 'actial'))

# One DDS domain per test session, derived from the process id so that parallel runs on one machine
# do not see each other; discovery stays on loopback (ENVIRONMENT.md: Kilted honours
# ROS_AUTOMATIC_DISCOVERY_RANGE, not ROS_LOCALHOST_ONLY).
_TEST_DOMAIN_ID = 120 + os.getpid() % 100


@pytest.fixture(scope='session')
def ros_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for ROS processes of this test session (also applied to this process)."""
    env = local_ros_environment(
        domain_id=_TEST_DOMAIN_ID,
        base={k: v for k, v in os.environ.items() if k != 'FASTDDS_DEFAULT_PROFILES_FILE'},
        profile_dir=tmp_path_factory.mktemp('dds'),
    )
    os.environ.update(env)
    return env


@pytest.fixture
def rclpy_context(ros_env: dict[str, str]) -> Iterator[Any]:
    """An initialised rclpy context (shut down after the test)."""
    rclpy = pytest.importorskip('rclpy')
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        yield context
    finally:
        context.try_shutdown()


@pytest.fixture
def publisher(rclpy_context: Any) -> Iterator[Any]:
    """A plain rclpy node of the test's own, to publish from (destroyed after the test)."""
    from rclpy.node import Node

    node = Node('actial_test_publisher', context=rclpy_context)
    yield node
    node.destroy_node()


@pytest.fixture(scope='session')
def sample_capture() -> Path:
    """The small real capture bundled with the repository."""
    assert SAMPLE_CAPTURE.is_dir(), f'missing bundled capture {SAMPLE_CAPTURE}'
    return SAMPLE_CAPTURE
