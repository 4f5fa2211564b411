"""The command layer: one module per ``actial-ros`` subcommand, each with ``configure_parser(parser)`` and
``run(args) -> exit status``, above the nodes (a command may start a node; nothing below imports a
command). :mod:`actial_ros.cli` dispatches to them.

So far: :mod:`actial_ros.commands.sim` (``actial-ros sim``). The other subcommands are still written in
:mod:`actial_ros.cli` (issue 13: the rest of the command layer).
"""
