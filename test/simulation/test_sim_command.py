"""``actial-ros sim``: options to rig parameters, and the offline ``--bag`` mode (no ROS)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from actial_ros.cli import main
from actial_ros.commands.sim import configure_parser, rig_values_from_args
from actial_ros.errors import ConfigError
from actial_ros.simulation.mount import camera_mount
from actial_ros.simulation.record import read_pose_record


def _values(*argv: str) -> dict[str, Any]:
    parser = argparse.ArgumentParser()
    configure_parser(parser)
    return rig_values_from_args(parser.parse_args(list(argv)))


def test_options_map_onto_rig_parameters() -> None:
    assert _values() == {}
    values = _values(
        '--trajectory',
        'arc',
        '--duration',
        '4',
        '--size',
        '160x120',
        '--depth',
        '--objects',
        'a.urdf',
        'b.obj;scale=2',
        '-p',
        'light_direction:=[1, 0, 1]',
        '-p',
        'floor:=checker',
        '--realtime-factor',
        '0',
    )
    assert values == {
        'trajectory': 'arc',
        'duration_s': 4.0,
        'width': 160,
        'height': 120,
        'depth': True,
        'objects': ['a.urdf', 'b.obj;scale=2'],
        'light_direction': [1, 0, 1],
        'floor': 'checker',
        'real_time_factor': 0.0,
    }
    mounted = _values('--camera-pitch', '25', '--camera-height', '0.4')
    expected = camera_mount((0.0, 0.0, 0.4), pitch_down_deg=25.0)
    assert mounted['extrinsic_translation'] == [0.0, 0.0, 0.4]
    from actial_ros.geometry import base_to_optical_extrinsic

    rebuilt = base_to_optical_extrinsic(mounted['extrinsic_translation'], mounted['extrinsic_rotation_xyzw'])
    np.testing.assert_allclose(rebuilt, expected, atol=1e-12)
    with pytest.raises(ConfigError, match='WIDTHxHEIGHT'):
        _values('--size', '320')
    with pytest.raises(ConfigError, match='NAME:=VALUE'):
        _values('-p', 'floor=checker')


def test_sim_bag_offline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip('pybullet')
    bag, record = tmp_path / 'bag', tmp_path / 'record.jsonl'
    status = main(
        [
            'sim',
            '--bag',
            str(bag),
            '--duration',
            '1',
            '--rate',
            '5',
            '--step-rate',
            '10',
            '--odometry-rate',
            '5',
            '--size',
            '64x48',
            '--camera-pitch',
            '20',
            '--camera-height',
            '0.3',
            '--record',
            str(record),
            '-p',
            'objects:=["duck_vhacd.urdf"]',
        ]
    )
    out = capsys.readouterr()
    assert status == 0, out.err
    assert 'wrote 6 frames' in out.out and '/camera/image_raw 6' in out.out
    assert 'extrinsic_rotation_xyzw:=' in out.err  # the reasoner's matching parameters
    assert (bag / 'metadata.yaml').is_file() and list(bag.glob('*.mcap'))
    run = read_pose_record(record)
    assert run.complete and len(run) == 6
    np.testing.assert_allclose(run.extrinsic, camera_mount((0.0, 0.0, 0.3), pitch_down_deg=20.0), atol=1e-9)
    assert [o['name'] for o in run.meta['scene']['objects']] == ['duck_vhacd.urdf']


def test_sim_bag_refuses_endless_and_bad_values(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip('pybullet')
    assert main(['sim', '--bag', str(tmp_path / 'b')]) == 2
    assert 'finite run' in capsys.readouterr().err
    assert main(['sim', '--bag', str(tmp_path / 'c'), '--duration', '1', '--rate', '7']) == 2
    assert 'divide' in capsys.readouterr().err
