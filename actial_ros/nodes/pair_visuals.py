"""``~/pair_image`` and ``~/markers`` of ``spatial_reasoner``: something for a person to look at in RViz or
Foxglove, rendered only while someone subscribes.

* ``~/pair_image`` (sensor_msgs/Image, rgb8): each viewpoint answer's pair side by side with the
  question, answer, truth and verdict drawn on it (:func:`actial_ros.pair_view.render_pair_view`); header
  stamp: frame 2's stamp.
* ``~/markers`` (visualization_msgs/MarkerArray) in the odometry frame (the ``header.frame_id`` of the
  odometry messages, REP 105 ``odom`` when none came yet): for each of the last :data:`RECENT_PAIRS`
  pairs, an arrow per camera at the camera's centre along its optical axis (z of the optical frame), and
  a line between the two centres; coloured by the pair's answers (green: every scored answer correct,
  red: any wrong, grey: none scored). Marker ids: ``3 * pair_id + k``; namespace ``actial_pairs``.

Both are built on the engine's worker thread (:class:`actial_ros.reasoner.SpatialReasoner`
``on_pair_answer``), never in a subscription callback, and skipped at once when the topic has no
subscriber (:attr:`PairVisuals.published` counts what was rendered and published; the node reports it
in ``/diagnostics``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
from geometry_msgs.msg import Point
from scipy.spatial.transform import Rotation
from sensor_msgs.msg import Image
from visualization_msgs.msg import Marker, MarkerArray

from actial_ros.frame import Pair
from actial_ros.imaging import rgb_to_image_fields
from actial_ros.message_fields import ns_to_stamp
from actial_ros.pair_view import CORRECT_RGB, UNSCORED_RGB, WRONG_RGB, render_pair_view
from actial_ros.records import AnswerRecord

__all__ = ['MARKER_NAMESPACE', 'RECENT_PAIRS', 'PairVisuals', 'marker_pose']

RECENT_PAIRS = 20
"""Pairs shown on ``~/markers``."""
MARKER_NAMESPACE = 'actial_pairs'
_ARROW_LENGTH_M = 0.3
# An arrow marker points along its own x axis; the camera looks along its optical z axis.
_X_TO_Z = Rotation.from_euler('y', -90.0, degrees=True)


def marker_pose(t_world_camera: Any) -> tuple[tuple[float, float, float], tuple[float, float, float, float]]:
    """Position and orientation (x, y, z, w) of an arrow marker along a camera's optical axis.

    Args:
        t_world_camera: ``(4, 4)`` ``T_odom_camera_optical``.

    Returns:
        The camera centre (metres, odometry frame) and the quaternion whose x axis is the optical z axis.
    """
    matrix = np.asarray(t_world_camera, dtype=np.float64)
    rotation = Rotation.from_matrix(matrix[:3, :3]) * _X_TO_Z
    x, y, z = (float(v) for v in matrix[:3, 3])
    qx, qy, qz, qw = (float(v) for v in rotation.as_quat())
    return (x, y, z), (qx, qy, qz, qw)


def _colour(verdicts: list[bool | None]) -> tuple[float, float, float]:
    scored = [v for v in verdicts if v is not None]
    rgb = UNSCORED_RGB if not scored else (CORRECT_RGB if all(scored) else WRONG_RGB)
    return rgb[0] / 255.0, rgb[1] / 255.0, rgb[2] / 255.0


class PairVisuals:
    """Publishes the pair image and the pair markers (see the module docstring).

    Args:
        image_publisher: publisher of sensor_msgs/Image (``~/pair_image``).
        marker_publisher: publisher of visualization_msgs/MarkerArray (``~/markers``).
        odometry_frame: returns the odometry frame id to stamp markers with.
    """

    def __init__(self, *, image_publisher: Any, marker_publisher: Any, odometry_frame: Callable[[], str]) -> None:
        self._image_publisher = image_publisher
        self._marker_publisher = marker_publisher
        self._odometry_frame = odometry_frame
        self._lock = threading.Lock()
        self._recent: OrderedDict[int, tuple[Pair, list[bool | None]]] = OrderedDict()
        self._published = {'pair_images_published': 0, 'marker_arrays_published': 0}

    @property
    def published(self) -> dict[str, int]:
        """``pair_images_published`` and ``marker_arrays_published``: messages rendered and published so far
        (a copy; nothing is rendered while a topic has no subscriber)."""
        with self._lock:
            return dict(self._published)

    def on_pair_answer(self, pair: Pair, record: AnswerRecord) -> None:
        """Render and publish for one viewpoint answer (worker thread); nothing when nobody subscribes."""
        if self._image_publisher.get_subscription_count() > 0:
            self._image_publisher.publish(self._image(pair, record))
            with self._lock:
                self._published['pair_images_published'] += 1
        with self._lock:
            entry = self._recent.pop(pair.pair_id, (pair, []))
            entry[1].append(record.correct)
            self._recent[pair.pair_id] = entry
            while len(self._recent) > RECENT_PAIRS:
                self._recent.popitem(last=False)
            recent = list(self._recent.values())
        if self._marker_publisher.get_subscription_count() > 0:
            self._marker_publisher.publish(self._markers(recent))
            with self._lock:
                self._published['marker_arrays_published'] += 1

    @staticmethod
    def _image(pair: Pair, record: AnswerRecord) -> Image:
        view = render_pair_view(pair.frame_1.image, pair.frame_2.image, record)
        fields = rgb_to_image_fields(view, 'rgb8')
        msg = Image()
        msg.header.stamp.sec, msg.header.stamp.nanosec = ns_to_stamp(pair.frame_2.stamp_ns)
        msg.height, msg.width, msg.encoding, msg.is_bigendian, msg.step = (
            fields.height,
            fields.width,
            fields.encoding,
            0,
            fields.step,
        )
        msg.data = fields.data
        return msg

    def _markers(self, recent: list[tuple[Pair, list[bool | None]]]) -> MarkerArray:
        frame_id = self._odometry_frame() or 'odom'
        array = MarkerArray()
        for pair, verdicts in recent:
            r, g, b = _colour(verdicts)
            poses = [frame.t_world_camera for frame in (pair.frame_1, pair.frame_2)]
            if any(pose is None for pose in poses):
                continue
            for k, pose in enumerate(poses):
                marker = self._marker(frame_id, pair, 3 * pair.pair_id + k, Marker.ARROW, (r, g, b))
                (marker.pose.position.x, marker.pose.position.y, marker.pose.position.z), quaternion = marker_pose(pose)
                o = marker.pose.orientation
                o.x, o.y, o.z, o.w = quaternion
                marker.scale.x, marker.scale.y, marker.scale.z = _ARROW_LENGTH_M, 0.03, 0.03
                array.markers.append(marker)
            line = self._marker(frame_id, pair, 3 * pair.pair_id + 2, Marker.LINE_STRIP, (r, g, b))
            line.pose.orientation.w = 1.0
            line.scale.x = 0.01
            for pose in poses:
                assert pose is not None
                line.points.append(Point(x=float(pose[0, 3]), y=float(pose[1, 3]), z=float(pose[2, 3])))
            array.markers.append(line)
        return array

    @staticmethod
    def _marker(frame_id: str, pair: Pair, marker_id: int, kind: int, rgb: tuple[float, float, float]) -> Marker:
        marker = Marker()
        marker.header.frame_id = frame_id
        marker.header.stamp.sec, marker.header.stamp.nanosec = ns_to_stamp(pair.frame_2.stamp_ns)
        marker.ns = MARKER_NAMESPACE
        marker.id = marker_id
        marker.type = kind
        marker.action = Marker.ADD
        marker.color.r, marker.color.g, marker.color.b, marker.color.a = rgb[0], rgb[1], rgb[2], 1.0
        return marker
