"""Offline scoring of whole files and Spark DataFrames with a registered model: the numbers of
``POST /v1/score``, a chunk at a time."""
