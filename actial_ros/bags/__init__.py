"""rosbag2 recordings below the sources: finding, opening, writing and exporting bags (no ROS install).

What lives where (one concept per module; each name has one home, imported from its module):

* :mod:`~actial_ros.bags.files`: which paths are a recording (``bag_parts``, ``is_rosbag``): a bag folder, a
  bare ``.mcap``/``.db3`` file or a split recording, and the storage files of one part.
* :mod:`~actial_ros.bags.reading`: opening one part, salvaging a part cut short (``open_part``), the default
  type store, messages per topic of a recording.
* :mod:`~actial_ros.bags.cdr`: the message types, the header stamp of a CDR message (read, rewritten) and
  the CDR builders of Odometry, CameraInfo, Image and CompressedImage messages.
* :mod:`~actial_ros.bags.recording`: ``recording.json`` beside a recording, written and read.
* :mod:`~actial_ros.bags.camera_specs`: the cameras a user names (``--camera``, ``--extrinsic``,
  ``--camera-file``) as :class:`~actial_ros.bags.camera_specs.BagCamera`.
* :mod:`~actial_ros.bags.writer`: :class:`~actial_ros.bags.writer.SplitBagWriter`, a recording split into
  parts by size within a disk budget (``bag_recorder``).
* :mod:`~actial_ros.bags.export`: posed captures exported as bags (``write_capture_bag``, ``write_rig_bag``).

Reading a recording as a posed capture (odometry as ground truth) is a source:
:class:`actial_ros.sources.rosbag.RosbagCapture`, with the cameras and topics it reads resolved in
:mod:`actial_ros.sources.bag_layout`. This package imports no source, node, rclpy or torch (import
contracts in ``pyproject.toml``); ``rosbags``, ``mcap`` and ``yaml`` are imported when a bag is opened or
written.
"""
