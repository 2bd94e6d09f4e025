"""Dropout's keep-probability p swept from heavy dropout to none, on loan data.

One child run per p, with the L2 penalty off so that dropout is the only regulariser, and a wide
network trained for a fixed number of epochs so that p = 1.0 can over-fit. The parent's chart
shows the train-test gap against p: the lesson's under-fitting (small p) to over-fitting
(p = 1.0) picture.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from lesson.experiments.data import ExperimentError, ExperimentOptions, load_credit_split
from lesson.experiments.runs import ExperimentResult, Say
from lesson.experiments.sweep import SweepVariant, run_sweep, sweep_network
from models.network import NetworkConfig

KIND = "dropout"
DEFAULT_EXPERIMENT = "lesson-dropout"
KEEP_PROBABILITIES = (0.2, 0.3, 0.5, 0.7, 0.9, 1.0)
QUICK_EPOCHS = 2
DESCRIPTION = (
    "Dropout keep-probability p (the chance a hidden unit is kept; Keras rate = 1 - p) swept "
    "with no L2 penalty. Each child logs training and test log loss and AUC per epoch, measured "
    "with dropout off; the parent charts the final train-test gap against p."
)


@dataclass(frozen=True)
class DropoutOptions(ExperimentOptions):
    experiment: str = DEFAULT_EXPERIMENT
    keep_probabilities: tuple[float, ...] = KEEP_PROBABILITIES
    network: NetworkConfig = field(default_factory=sweep_network)


def run_dropout(options: DropoutOptions, say: Say) -> ExperimentResult:
    """One child run per keep-probability; the gap chart on the parent."""
    values = options.keep_probabilities
    if not values:
        raise ExperimentError("give at least one keep probability")
    if not all(0.0 < p <= 1.0 for p in values):
        raise ExperimentError(f"keep probabilities must lie in (0, 1], got {list(values)}")
    base = replace(options.network, l2=0.0)
    if options.quick:
        base = replace(base, epochs=QUICK_EPOCHS)
    split = load_credit_split(options.data, options.seed, options.target, options.positive_label)
    say(
        f"{KIND}: {split.data_file}, {len(split.y_train)} training and {len(split.y_test)} test "
        f"rows, {base.epochs} epochs per value, p in {list(values)}"
    )
    variants = [SweepVariant(f"keep_p={p:g}", p, replace(base, keep_probability=p)) for p in values]
    return run_sweep(
        kind=KIND,
        variable="keep_probability",
        variants=variants,
        split=split,
        options=options,
        description=DESCRIPTION,
        say=say,
    )
