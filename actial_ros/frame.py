"""Core data types: camera intrinsics, a posed camera frame and a pair of frames (no ROS, no torch)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from actial_ros.errors import ImageError, PoseError
from actial_ros.geometry import RelativePose

__all__ = ['CameraIntrinsics', 'Frame', 'Pair']


@dataclass(frozen=True, slots=True)
class CameraIntrinsics:
    """Pinhole intrinsics of an image (as in ``sensor_msgs/CameraInfo.k``), in pixels.

    Attributes:
        fx, fy: focal lengths (pixels).
        cx, cy: principal point (pixels, origin at the top-left pixel corner convention of OpenCV).
        width, height: image size (pixels) these intrinsics belong to.

    Raises:
        PoseError: on construction, for non-finite or non-positive focal lengths or sizes.
    """

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def __post_init__(self) -> None:
        values = (self.fx, self.fy, self.cx, self.cy)
        if not all(math.isfinite(v) for v in values) or self.fx <= 0 or self.fy <= 0:
            raise PoseError(f'invalid intrinsics fx={self.fx} fy={self.fy} cx={self.cx} cy={self.cy}')
        if self.width <= 0 or self.height <= 0:
            raise PoseError(f'invalid image size {self.width}x{self.height}')

    @classmethod
    def from_matrix(cls, k: npt.ArrayLike, *, width: int, height: int) -> CameraIntrinsics:
        """Build from a ``3x3`` matrix (or the 9 row-major values of ``CameraInfo.k``)."""
        matrix = np.asarray(k, dtype=np.float64).reshape(3, 3)
        return cls(
            fx=float(matrix[0, 0]),
            fy=float(matrix[1, 1]),
            cx=float(matrix[0, 2]),
            cy=float(matrix[1, 2]),
            width=int(width),
            height=int(height),
        )

    @property
    def matrix(self) -> npt.NDArray[np.float64]:
        """The ``(3, 3)`` float64 camera matrix ``K``."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]], dtype=np.float64)

    def scaled(self, width: int, height: int) -> CameraIntrinsics:
        """Intrinsics of the same camera for an image resized to ``width`` x ``height`` pixels."""
        sx = width / self.width
        sy = height / self.height
        return CameraIntrinsics(
            fx=self.fx * sx,
            fy=self.fy * sy,
            cx=self.cx * sx,
            cy=self.cy * sy,
            width=int(width),
            height=int(height),
        )


@dataclass(frozen=True, slots=True)
class Frame:
    """One camera image with its stamp, intrinsics and (when known) its pose.

    Attributes:
        image: ``(H, W, 3)`` ``uint8`` RGB array (C-contiguous).
        stamp_ns: header stamp in integer nanoseconds.
        intrinsics: pinhole intrinsics for ``image``'s size, or ``None`` when unknown.
        t_world_camera: ``(4, 4)`` float64 camera-to-world pose of the optical frame (world = ``odom``
            on a robot, the capture's frame offline), or ``None`` before odometry matching.
        camera_id: which camera (its name or frame id).
        name: a human-readable name (capture file name, bag stamp).

    Raises:
        ImageError: on construction, if ``image`` is not ``(H, W, 3)`` ``uint8``.
    """

    image: npt.NDArray[np.uint8] = field(repr=False)
    stamp_ns: int
    intrinsics: CameraIntrinsics | None = None
    t_world_camera: npt.NDArray[np.float64] | None = field(default=None, repr=False)
    camera_id: str = 'camera'
    name: str = ''

    def __post_init__(self) -> None:
        if self.image.dtype != np.uint8 or self.image.ndim != 3 or self.image.shape[2] != 3:
            raise ImageError(f'frame image must be (H, W, 3) uint8 RGB, got {self.image.shape} {self.image.dtype}')

    @property
    def nbytes(self) -> int:
        """Bytes held by the image array."""
        return int(self.image.nbytes)

    @property
    def height(self) -> int:
        """Image height in pixels."""
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        """Image width in pixels."""
        return int(self.image.shape[1])


@dataclass(frozen=True, slots=True)
class Pair:
    """Two frames to ask viewpoint questions about (frame 1 -> frame 2).

    Attributes:
        frame_1: the earlier view.
        frame_2: the later view.
        relative: relative pose from the frames' poses (odometry or capture), or ``None`` when a pose
            is unknown (then no ground truth can be given).
        pair_id: a counter unique within one process.
    """

    frame_1: Frame
    frame_2: Frame
    relative: RelativePose | None
    pair_id: int = 0
