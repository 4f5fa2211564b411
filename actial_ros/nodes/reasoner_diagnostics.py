"""The ``/diagnostics`` of ``spatial_reasoner``: what the node reports once a period, built from the engine's
statistics (``diagnostic_updater``, ROS's library for this, has no wheel in the package index here, so the
``DiagnosticArray`` is built with ``diagnostic_msgs`` directly).

Statuses, each a ``DiagnosticStatus`` with ``hardware_id`` ``actial_ros`` and its values as strings:

* ``<node>: ingest``: message rates (per second since the last report), frames posed, pairs, buffer use, what
  the node rendered for people (pair images, marker arrays, the report's pairs and bytes), every drop by
  reason (``drop_<reason>``) and warning (``warn_<key>``), cumulative; WARN with the drops new since the last
  report in its message (also logged as a warning).
* ``<node>: backend``: health, consecutive failures, requests in flight, queued and done, whether idle, the last
  error; ERROR while unhealthy.
* ``<node>: accuracy``: answer latency p50/p95 (seconds) and, per question type, the running accuracy against
  odometry with its counts.
* ``<node>: camera <id>``, one per camera: its topic, images received and their rate, whether CameraInfo
  arrived, frames posed, buffer use, pairs, questions and accuracy of its pairs, its drops (DDS losses
  included); WARN without images or CameraInfo.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from actial_ros.backends.base import Backend
from actial_ros.enums import DropReason
from actial_ros.pairing import CameraStats
from actial_ros.reasoner import SpatialReasoner

__all__ = ['CameraReport', 'ReasonerDiagnostics', 'diagnostic_status']


@dataclass(frozen=True)
class CameraReport:
    """What the node itself knows of one camera (the engine knows the rest).

    Attributes:
        camera_id: the camera's name.
        image_topic: its image topic.
        received: images received on it so far.
        has_camera_info: whether its CameraInfo arrived.
        dds_lost: messages DDS lost on the way to it (sequence gaps).
    """

    camera_id: str
    image_topic: str
    received: int
    has_camera_info: bool
    dds_lost: int = 0


def diagnostic_status(name: str, level: bytes, message: str, values: Mapping[str, Any]) -> DiagnosticStatus:
    """A ``DiagnosticStatus`` of the package (``hardware_id`` ``actial_ros``), every value as a string."""
    status = DiagnosticStatus(name=name, message=message, hardware_id='actial_ros', level=level)
    status.values = [KeyValue(key=key, value=str(value)) for key, value in values.items()]
    return status


class ReasonerDiagnostics:
    """Builds the node's ``DiagnosticArray`` each period, keeping what rates and new drops are measured against.

    Args:
        name: the node's name, the statuses' prefix.
        clock: monotonic seconds (rates are per second of it).
    """

    def __init__(self, *, name: str = 'spatial_reasoner', clock: Callable[[], float] = time.monotonic) -> None:
        self._name = name
        self._clock = clock
        self._last = (clock(), 0, 0)
        self._reported_drops: dict[str, int] = {}
        self._last_received: dict[str, int] = {}

    def array(
        self,
        *,
        engine: SpatialReasoner,
        backend: Backend,
        cameras: Sequence[CameraReport],
        rendered: Mapping[str, int],
        warnings: Mapping[str, int],
    ) -> tuple[DiagnosticArray, dict[str, int]]:
        """The array (header stamp left to the caller) and the drops new since the last call, by reason.

        Args:
            engine: the reasoner (statistics, scores, buffer).
            backend: its backend (health).
            cameras: the node's cameras.
            rendered: counters of what the node rendered for people (``pair_images_published``, ...).
            warnings: the node's own warnings (added to the engine's).
        """
        stats = engine.stats()
        now = self._clock()
        last_time, last_images, last_odom = self._last
        period = max(now - last_time, 1e-9)
        self._last = (now, stats.images_received, stats.odometry_received)
        new_drops = {k: v - self._reported_drops.get(k, 0) for k, v in stats.drops.items()}
        new_drops = {k: v for k, v in new_drops.items() if v}
        self._reported_drops = dict(stats.drops)

        ingest_values: dict[str, Any] = {
            'cameras': ' '.join(camera.camera_id for camera in cameras),
            'images_received': stats.images_received,
            'image_rate_hz': f'{(stats.images_received - last_images) / period:.2f}',
            'odometry_received': stats.odometry_received,
            'odometry_rate_hz': f'{(stats.odometry_received - last_odom) / period:.2f}',
            'frames_posed': stats.frames_posed,
            'pairs_made': stats.pairs_made,
            'buffer_frames': stats.buffer['frames'],
            'buffer_pending': stats.buffer['pending'],
            'buffer_bytes': stats.buffer['bytes'],
            'odometry_samples': stats.buffer['odometry'],
            **rendered,
        }
        ingest_values.update({f'drop_{k}': v for k, v in sorted(stats.drops.items())})
        all_warnings = {**stats.warnings, **warnings}
        ingest_values.update({f'warn_{k}': v for k, v in sorted(all_warnings.items())})
        health = backend.health()
        backend_values = {
            'backend': backend.name,
            'healthy': health.ok,
            'message': health.message,
            'consecutive_failures': health.consecutive_failures,
            'in_flight': stats.in_flight,
            'queued': stats.questions_queued,
            'requests_done': stats.requests_done,
            'idle': engine.idle(),
            'last_error': stats.last_error,
        }
        p50, p95 = engine.scores.latency_percentiles(50, 95)
        accuracy_values: dict[str, Any] = {
            'latency_p50_s': '' if p50 is None else f'{p50:.4f}',
            'latency_p95_s': '' if p95 is None else f'{p95:.4f}',
        }
        for kind, score in sorted(engine.scores.scores().items()):
            accuracy = score.accuracy
            accuracy_values[f'{kind}.accuracy'] = '' if accuracy is None else f'{accuracy:.4f}'
            for name in ('asked', 'answered', 'unparsed', 'abstained', 'errors', 'scored', 'correct'):
                accuracy_values[f'{kind}.{name}'] = getattr(score, name)

        array = DiagnosticArray()
        array.status = [
            diagnostic_status(
                f'{self._name}: ingest',
                DiagnosticStatus.WARN if new_drops else DiagnosticStatus.OK,
                'drops: ' + ', '.join(f'{k}={v}' for k, v in new_drops.items()) if new_drops else 'ok',
                ingest_values,
            ),
            diagnostic_status(
                f'{self._name}: backend',
                DiagnosticStatus.OK if health.ok else DiagnosticStatus.ERROR,
                health.message,
                backend_values,
            ),
            diagnostic_status(
                f'{self._name}: accuracy', DiagnosticStatus.OK, 'running accuracy against odometry', accuracy_values
            ),
            *self._camera_statuses(engine, cameras, period),
        ]
        return array, new_drops

    def _camera_statuses(
        self, engine: SpatialReasoner, cameras: Sequence[CameraReport], period: float
    ) -> list[DiagnosticStatus]:
        """One status per camera: image rate, frames posed, pairs, drops and accuracy of its pairs."""
        per_camera = engine.buffer.camera_stats()
        scores = engine.scores.camera_scores()
        statuses = []
        for camera in cameras:
            camera_id = camera.camera_id
            rate = (camera.received - self._last_received.get(camera_id, 0)) / period
            self._last_received[camera_id] = camera.received
            stats = per_camera.get(camera_id, CameraStats())
            drops = dict(stats.drops)
            score = scores.get(camera_id)
            accuracy = None if score is None else score.accuracy
            values: dict[str, Any] = {
                'image_topic': camera.image_topic,
                'images_received': camera.received,
                'image_rate_hz': f'{rate:.2f}',
                'has_camera_info': camera.has_camera_info,
                'frames_posed': stats.posed,
                'buffer_frames': stats.frames,
                'buffer_pending': stats.pending,
                'pairs_completed': stats.pairs,
                'questions': 0 if score is None else score.asked,
                'accuracy': '' if accuracy is None else f'{accuracy:.4f}',
            }
            if camera.dds_lost:
                drops = {**drops, DropReason.DDS_LOST.value: camera.dds_lost}
            values.update({f'drop_{k}': v for k, v in sorted(drops.items())})
            healthy = camera.received and camera.has_camera_info
            level = DiagnosticStatus.OK if healthy else DiagnosticStatus.WARN
            message = 'ok' if healthy else ('no images' if not camera.received else 'no camera_info')
            statuses.append(diagnostic_status(f'{self._name}: camera {camera_id}', level, message, values))
        return statuses
