"""rclpy messages the package's publishers build: Header, Image, CameraInfo, Odometry.

The field values come from the ROS-free core (:func:`actial_ros.imaging.rgb_to_image_fields`,
:func:`actial_ros.message_fields.camera_info_fields`, :func:`actial_ros.message_fields.pose_fields`); the rosbag
writers build the same messages as CDR in :mod:`actial_ros.bags.cdr`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from nav_msgs.msg import Odometry
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from actial_ros.frame import CameraIntrinsics
from actial_ros.imaging import ImageFields
from actial_ros.message_fields import camera_info_fields, ns_to_stamp, pose_fields

__all__ = ['camera_info_msg', 'header_msg', 'image_msg', 'odometry_msg']


def header_msg(stamp_ns: int, frame_id: str) -> Header:
    """A ``std_msgs/Header`` stamped ``stamp_ns`` (nanoseconds) in ``frame_id``."""
    header = Header()
    header.stamp.sec, header.stamp.nanosec = ns_to_stamp(stamp_ns)
    header.frame_id = frame_id
    return header


def image_msg(fields: ImageFields, header: Header) -> Image:
    """A ``sensor_msgs/Image`` with ``fields`` (any encoding) and ``header``."""
    image = Image()
    image.header = header
    image.height, image.width = fields.height, fields.width
    image.encoding, image.is_bigendian, image.step = fields.encoding, fields.is_bigendian, fields.step
    image.data = fields.data
    return image


def camera_info_msg(intrinsics: CameraIntrinsics, header: Header) -> CameraInfo:
    """A ``sensor_msgs/CameraInfo`` of an undistorted pinhole camera (:func:`camera_info_fields`)."""
    info = CameraInfo()
    info.header = header
    for name, value in camera_info_fields(intrinsics).items():
        setattr(info, name, value)
    return info


def odometry_msg(
    t_odom_base: npt.ArrayLike,
    header: Header,
    child_frame_id: str,
    *,
    linear_velocity: npt.ArrayLike = (0.0, 0.0, 0.0),
    angular_velocity: npt.ArrayLike = (0.0, 0.0, 0.0),
) -> Odometry:
    """A ``nav_msgs/Odometry`` holding ``T_odom_base`` (``(4, 4)``, metres) with zero covariance.

    ``header.frame_id`` is the odometry frame; ``linear_velocity`` (m/s) and ``angular_velocity`` (rad/s)
    fill the twist, in ``child_frame_id``.
    """

    msg = Odometry()
    msg.header = header
    msg.child_frame_id = child_frame_id
    (x, y, z), (qx, qy, qz, qw) = pose_fields(t_odom_base)
    position, orientation = msg.pose.pose.position, msg.pose.pose.orientation
    position.x, position.y, position.z = x, y, z
    orientation.x, orientation.y, orientation.z, orientation.w = qx, qy, qz, qw
    linear, angular = msg.twist.twist.linear, msg.twist.twist.angular
    linear.x, linear.y, linear.z = (float(v) for v in np.ravel(linear_velocity))
    angular.x, angular.y, angular.z = (float(v) for v in np.ravel(angular_velocity))
    return msg
