"""The command layer: one module per ``actial-ros`` subcommand, each with ``configure_parser(parser)`` and
``run(args) -> exit status``, above the nodes (a command may start a node; nothing below imports a
command). :mod:`actial_ros.cli` dispatches to them: :mod:`~actial_ros.commands.demo`,
:mod:`~actial_ros.commands.reasoner`, :mod:`~actial_ros.commands.replay`, :mod:`~actial_ros.commands.sim`,
:mod:`~actial_ros.commands.serve`, :mod:`~actial_ros.commands.fastdds_profile`; :mod:`~actial_ros.commands.ros_args`
holds what they share. (``actial-ros-train`` is :mod:`actial_ros.training.cli`, with the same shape.)
"""
