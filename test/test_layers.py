"""The layering that import-linter cannot see (pyproject.toml [tool.importlinter] holds the rest).

``training/`` is installed as ``actial_ros.training`` through setup.py's ``package_dir``, outside the
``actial_ros/`` folder that import-linter scans, so its contracts cannot name it. This test holds the rule
"training imports the core, never the reverse" (robots need no torch) by reading every import of
``actial_ros/``.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / 'actial_ros'


def _imports(path: Path) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f'{node.module}.{alias.name}') for alias in node.names]
    return found


def test_the_package_never_imports_training() -> None:
    offenders = [
        f'{path.relative_to(PACKAGE.parent)}:{line}: {name}'
        for path in sorted(PACKAGE.rglob('*.py'))
        for line, name in _imports(path)
        if name == 'actial_ros.training' or name.startswith('actial_ros.training.')
    ]
    assert not offenders, 'actial_ros/ must not import actial_ros.training:\n' + '\n'.join(offenders)
