"""actial_ros: Actial's viewpoint reasoning for ROS 2 robots.

The core (this package without :mod:`actial_ros.nodes`) imports neither rclpy nor torch.
"""

__version__ = '0.1.0'
