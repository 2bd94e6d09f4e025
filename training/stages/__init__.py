"""The stages of ``loanrisk train``, one module each, run in this order by
:func:`training.train.train`:

1. :mod:`.prepare`  read and validate the data, split it, settle the recipe, record the environment
2. :mod:`.fit`      fit preprocessing, the network (or seed ensemble) and the calibrator
3. :mod:`.evaluate` score the splits, choose the threshold, measure; fit and measure the baselines
4. :mod:`.review`   what a reviewer weighs: feature influence, outcomes by group, the promotion gate
5. :mod:`.document` the model's metadata, the figures, the model card, the reproducibility record
6. :mod:`.register` log the model on the run, register a version, point the gate's alias at it

Each stage takes the frozen results of the stages before it and hands on its own (a frozen
dataclass); each records what it did on the active MLflow run.
"""
