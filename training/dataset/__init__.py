"""Dataset building: the Viewpoint-100K rows from multi-view captures and rosbags (``actial-ros-train
build-viewpoint``, :mod:`.build`).

Settings (:mod:`.build_config`), the plan of pairs and splits (:mod:`.plan`, :mod:`.pair_selection`), the rows and
their questions (:mod:`.viewpoint`, :mod:`.schema`), chains of thought (:mod:`.cot`, :mod:`.teacher`), parquet
shards (:mod:`.shards`), their counters (:mod:`.shard_stats`) and the build report (:mod:`.report`). Imports no
torch (contract in pyproject.toml): the ``build`` extra installs without it.
"""
