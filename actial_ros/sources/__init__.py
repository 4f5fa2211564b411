"""Posed image sources: LLFF, COLMAP, transforms.json captures, rosbag2 recordings, object directories.

Every adapter gives a :class:`~actial_ros.sources.base.PosedCapture` (one object: posed views whose
images load on demand). ``pycolmap`` and ``rosbags`` are imported only when a model or a bag is opened.
"""

from __future__ import annotations

from actial_ros.sources.base import CaptureRef, PosedCapture, PosedView, SourceKind, SourceOptions
from actial_ros.sources.colmap import ColmapCapture
from actial_ros.sources.detection import detect_capture_kind
from actial_ros.sources.discovery import discover, open_capture, parse_source
from actial_ros.sources.llff import CaptureView, LlffCapture, LlffPosedCapture
from actial_ros.sources.objects import find_objects
from actial_ros.sources.rosbag import RosbagCapture, SplitBagWriter, write_capture_bag
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
    'SplitBagWriter',
    'TransformsCapture',
    'detect_capture_kind',
    'discover',
    'find_objects',
    'open_capture',
    'parse_source',
    'write_capture_bag',
]
