"""The README's package layout names every module of actial_ros and training (so that a newcomer finds a thing
by its name there, and a new module cannot be left out of it)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_layout_table_names_every_module() -> None:
    readme = (REPO / 'README.md').read_text()
    table = readme[readme.index('## Package layout') :]
    table = table[: table.index('\n## ')]
    named = {
        part.removesuffix('.py')
        for quoted in re.findall(r'`([^`]+)`', table)
        for part in re.split(r'[\s,/()]+', quoted)
    }
    modules = [
        path
        for root in ('actial_ros', 'training')
        for path in sorted((REPO / root).rglob('*.py'))
        if path.name != '__init__.py'
    ]
    assert len(modules) > 80
    missing = [str(path.relative_to(REPO)) for path in modules if path.stem not in named]
    assert missing == [], f'add these to the README package layout: {missing}'
