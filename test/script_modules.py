"""A script that is no package module (a benchmark under benchmarks/, a launch file), loaded by its path for a test."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

__all__ = ['load_script']


def load_script(path: Path, name: str) -> ModuleType:
    """The module that executing ``path`` gives, registered in ``sys.modules`` as ``name`` (dataclasses and pickling
    look their module up there).

    Raises:
        FileNotFoundError: ``path`` does not exist; anything the script raises while it runs.
    """
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
