"""Evaluation of a checkpoint or a served model (``actial-ros-train evaluate``, :mod:`.evaluate`) on the
viewpoint test split and the spatial benchmarks' local files (:mod:`.benchmarks`)."""
