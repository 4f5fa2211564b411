"""Posed image sources: LLFF, COLMAP, transforms.json captures, rosbag2 recordings, object directories.

Every adapter gives a :class:`~actial_ros.sources.base.PosedCapture` (one object: posed views whose
images load on demand). ``pycolmap`` and ``rosbags`` are imported only when a model or a bag is opened.
Finding, opening, writing and exporting bags (what the ``rosbag`` adapter builds on) is :mod:`actial_ros.bags`.
"""

from __future__ import annotations

from actial_ros.sources.base import CaptureRef, PosedCapture, PosedView, SourceKind, SourceOptions
from actial_ros.sources.colmap import ColmapCapture
from actial_ros.sources.detection import detect_capture_kind
from actial_ros.sources.discovery import discover, open_capture, parse_source
from actial_ros.sources.llff import CaptureView, LlffCapture, LlffPosedCapture
from actial_ros.sources.objects import find_objects
from actial_ros.sources.rosbag import RosbagCapture
from actial_ros.sources.transforms import TransformsCapture

__all__ = [
    'CaptureRef',
    'CaptureView',
    'ColmapCapture',
    'LlffCapture',
    'LlffPosedCapture',
    'PosedCapture',
    'PosedView',
    'RosbagCapture',
    'SourceKind',
    'SourceOptions',
    'TransformsCapture',
    'detect_capture_kind',
    'discover',
    'find_objects',
    'open_capture',
    'parse_source',
]
