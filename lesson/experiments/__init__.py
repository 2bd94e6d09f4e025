"""The deep-neural-networks lesson's experiments, run on this project's data as MLflow runs.

Each experiment logs one parent run and one child run per variant (a loss function, a dropout
keep-probability, an L2 coefficient, ...). Children of one experiment log identical metric names,
so the MLflow UI's compare view lines them up; the parent carries the comparison charts.
"""
