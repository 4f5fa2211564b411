"""Regenerate config/spatial_reasoner.yaml from the node's PARAMETERS (run from the repo root:
``.venv/bin/python scripts/generate_reasoner_config.py``). test/test_config.py checks they agree."""

import json
from pathlib import Path

from actial_ros.nodes.spatial_reasoner_parameters import PARAMETERS

lines = [
    '# Parameters of the spatial_reasoner node: every one, with its default. Generated from',
    '# actial_ros/nodes/spatial_reasoner_parameters.py (PARAMETERS); test/test_config.py checks they agree.',
    '# (read-only) ones need a restart; the others can be changed live and are validated on change.',
    'spatial_reasoner:',
    '  ros__parameters:',
]
for p in PARAMETERS:
    v = p.default
    val = json.dumps(v).replace('"', "'")
    if isinstance(v, bool):
        val = 'true' if v else 'false'
    ro = ' (read-only)' if p.read_only else ''
    lines.append(f'    # {p.description}{ro}')
    lines.append(f'    {p.name}: {val}')
lines += [
    '    # Further cameras (none by default). Each name gets its own parameters, e.g.:',
    '    # additional_cameras: [left]',
    "    # left.image_topic: '/left/image_raw'",
    "    # left.camera_info_topic: '/left/camera_info'",
    "    # left.image_transport: 'raw'",
    '    # left.extrinsic_translation: [0.0, 0.1, 0.3]',
    '    # left.extrinsic_rotation_xyzw: [-0.5, 0.5, -0.5, 0.5]',
]
Path('config/spatial_reasoner.yaml').write_text('\n'.join(lines) + '\n')
