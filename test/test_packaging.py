"""The wheel installs actial_ros (with training/ as actial_ros.training), its launch and config files,
and the ament index marker; nothing else at top level."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_wheel_layout(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            '-m',
            'pip',
            'wheel',
            '--quiet',
            '--no-deps',
            '--no-build-isolation',
            '-w',
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob('actial_ros-*.whl')
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split('/')[0] for name in names}
    stem = wheel.name.split('-py')[0]  # actial_ros-0.1.0
    assert top_level <= {'actial_ros', f'{stem}.dist-info', f'{stem}.data'}, top_level
    assert 'actial_ros/training/__init__.py' in names
    assert not any(name.startswith('training/') for name in names)
    data = [name.split('.data/data/', 1)[1] for name in names if '.data/data/' in name]
    assert 'share/actial_ros/launch/spatial_reasoner.launch.py' in data
    assert 'share/actial_ros/config/spatial_reasoner.yaml' in data
    assert 'share/ament_index/resource_index/packages/actial_ros' in data
    assert 'share/actial_ros/package.xml' in data
    entry_points = next(n for n in names if n.endswith('entry_points.txt'))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    scripts = (
        'actial-ros =',
        'actial-ros-train =',
        'spatial_reasoner =',
        'capture_replay =',
        'bag_recorder =',
        'sim_rig =',
        'bag_replay =',
    )
    for script in scripts:
        assert script in text
