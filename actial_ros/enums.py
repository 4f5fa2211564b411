"""Enumerations shared by the whole package (question types, labels, drop reasons, answer statuses)."""

from __future__ import annotations

import sys
from enum import Enum

__all__ = [
    'BAG_STORAGES',
    'IMAGE_TRANSPORTS',
    'QOS_CHOICES',
    'QOS_NAMES',
    'AnswerStatus',
    'DropReason',
    'QuestionType',
    'StrEnum',
    'ViewpointLabel',
]

IMAGE_TRANSPORTS: tuple[str, ...] = ('raw', 'compressed')
"""Image transports of the nodes' ``image_transport`` parameters: ``raw`` (sensor_msgs/Image) or ``compressed``
(sensor_msgs/CompressedImage, JPEG or PNG)."""
QOS_NAMES: tuple[str, ...] = ('sensor_data', 'reliable')
"""QoS profile names of the nodes' ``*_qos`` parameters: ``sensor_data`` (best effort, volatile, keep last) and
``reliable`` (:func:`actial_ros.nodes.qos.qos_profile` builds them)."""
QOS_CHOICES: str = f'{QOS_NAMES[0]!r} (best effort) or {QOS_NAMES[1]!r}'
""":data:`QOS_NAMES` as the ``*_qos`` parameters' descriptions name them."""
BAG_STORAGES: tuple[str, ...] = ('mcap', 'sqlite3')
"""rosbag2 storage plugins the bag recorder writes."""

if sys.version_info >= (3, 11):
    from enum import StrEnum  # novermin (3.11+ only, behind the version check)
else:  # Python 3.10 (ROS 2 Humble): the same behaviour, as the standard library defines it in 3.11

    class StrEnum(str, Enum):
        """Enum whose members are strings and print as their value (``enum.StrEnum`` of Python 3.11)."""

        __str__ = str.__str__
        __format__ = str.__format__  # type: ignore[assignment]


class QuestionType(StrEnum):
    """The three Actial viewpoint question types (../shared/notes/ACTIAL.md)."""

    EGO_TRANSLATION = 'ego_translation'
    """Did the camera move left or right, from the camera's perspective."""
    OBJECT_TRANSLATION = 'object_translation'
    """The same movement seen from the object's perspective (mirror of ego translation)."""
    ROTATION = 'rotation'
    """Did the camera rotate (yaw) left or right."""


class ViewpointLabel(StrEnum):
    """Label vocabulary of every viewpoint question."""

    LEFT = 'left'
    RIGHT = 'right'
    NONE = 'none'
    """No movement (translation questions) or no rotation (rotation question)."""


class DropReason(StrEnum):
    """Why a message, frame, pair or request was dropped. Every drop is counted under one of these."""

    # Delivery: messages a publisher sent that never reached a callback (gaps in its sequence numbers)
    DDS_LOST = 'dds_lost'
    # Image ingestion
    BAD_IMAGE = 'bad_image'
    NO_CAMERA_INFO = 'no_camera_info'
    NO_EXTRINSIC = 'no_extrinsic'
    BAD_CAMERA_INFO = 'bad_camera_info'
    CAMERA_INFO_SIZE_MISMATCH = 'camera_info_size_mismatch'
    # Odometry and matching
    BAD_ODOMETRY = 'bad_odometry'
    ODOMETRY_OUT_OF_ORDER = 'odometry_out_of_order'
    ODOMETRY_DUPLICATE = 'odometry_duplicate'
    NO_ODOMETRY = 'no_odometry'
    ODOMETRY_GAP = 'odometry_gap'
    ODOMETRY_TIMEOUT = 'odometry_timeout'
    TIME_RESET = 'time_reset'
    TIME_OUTLIER = 'time_outlier'
    OLD_TIMELINE = 'old_timeline'
    DUPLICATE_FRAME = 'duplicate_frame'
    # Buffer bounds
    BUFFER_BYTES = 'buffer_bytes'
    PENDING_FULL = 'pending_full'
    INGEST_QUEUE_FULL = 'ingest_queue_full'
    # Requests
    QUEUE_FULL = 'queue_full'
    STALE = 'stale'
    BACKEND_ERROR = 'backend_error'
    SHUTDOWN = 'shutdown'
    # Bugs (never expected): an exception escaped a callback or an ingest/worker job; logged with its
    # traceback, counted, and the node goes on.
    INTERNAL_ERROR = 'internal_error'


class AnswerStatus(StrEnum):
    """Values of the ``status`` field of an answer record (``~/answers`` JSON, demo JSONL)."""

    ANSWERED = 'answered'
    """The backend gave a valid option letter."""
    UNPARSED = 'unparsed'
    """The backend replied but no option letter could be read (counted as wrong)."""
    ABSTAINED = 'abstained'
    """The backend chose not to answer (e.g. too few inliers); excluded from accuracy."""
    ERROR = 'error'
    """No reply could be obtained (server down, timeout); excluded from accuracy."""
