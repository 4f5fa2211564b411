"""What every benchmark says of the machine its figures came from (no dependencies: loaded by path or imported)."""

from __future__ import annotations

import platform
from pathlib import Path

__all__ = ['cpu_model']


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``'s first ``model name``; elsewhere :func:`platform.processor`, else the
    architecture, else ``'unknown CPU'``)."""
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or 'unknown CPU'
