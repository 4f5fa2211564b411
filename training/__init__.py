"""Off-robot tooling (installed as :mod:`actial_ros.training`): dataset building, SFT, GRPO, evaluation.

Imports the core (:mod:`actial_ros`); the core never imports this package.
"""
