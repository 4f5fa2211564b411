"""The pybullet side of the simulation: one DIRECT (headless, CPU) physics client per world.

pybullet is the optional ``sim`` extra (``pip install 'actial_ros[sim]'``); it is imported only here, when
a world is created, so the rest of :mod:`actial_ros.simulation` (camera model, trajectories, pose
record) works without it. Every pybullet call in this package passes the world's ``physicsClientId``,
so several worlds can live in one process.
"""

from __future__ import annotations

import importlib
import shutil
import tempfile
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

from actial_ros.errors import ConfigError

__all__ = ['SimWorld', 'import_pybullet', 'pybullet_data_path']


def import_pybullet() -> ModuleType:
    """Import and return the ``pybullet`` module.

    Raises:
        ConfigError: pybullet is not installed (with the install hint).
    """
    try:
        module: ModuleType = importlib.import_module('pybullet')
    except ImportError as error:  # pragma: no cover - the sim extra is installed in the dev venv
        raise ConfigError("the simulation needs pybullet: pip install 'actial_ros[sim]'") from error
    return module


def pybullet_data_path() -> Path:
    """Directory of the models shipped with pybullet (``pybullet_data``: plane, duck, teddy, mug, ...).

    Raises:
        ConfigError: pybullet (and with it pybullet_data) is not installed.
    """
    import_pybullet()
    import pybullet_data

    return Path(pybullet_data.getDataPath())


class SimWorld:
    """A pybullet DIRECT client (no GUI, no GPU) with ``pybullet_data`` on its search path and a private
    temporary directory (generated textures). Use as a context manager, or call :meth:`close`.

    Attributes:
        pb: the pybullet module.
        client: the physics client id to pass as ``physicsClientId``.
        scratch: a temporary directory removed by :meth:`close`.
    """

    def __init__(self) -> None:
        self.pb: Any = import_pybullet()
        self.client: int = int(self.pb.connect(self.pb.DIRECT))
        if self.client < 0:  # pragma: no cover - DIRECT never fails in practice
            raise ConfigError('could not start a pybullet DIRECT client')
        self.pb.setAdditionalSearchPath(str(pybullet_data_path()), physicsClientId=self.client)
        self.scratch = Path(tempfile.mkdtemp(prefix='actial_sim_'))
        self._closed = False

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """``pybullet.<name>(*args, physicsClientId=client, **kwargs)``."""
        return getattr(self.pb, name)(*args, physicsClientId=self.client, **kwargs)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` ran."""
        return self._closed

    def close(self) -> None:
        """Disconnect the client and remove the scratch directory (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            self.pb.disconnect(physicsClientId=self.client)
        finally:
            shutil.rmtree(self.scratch, ignore_errors=True)

    def __enter__(self) -> SimWorld:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
