"""L2 weight decay swept from none to heavy, on loan data.

One child run per coefficient, with dropout off so that L2 is the only regulariser, on the same
wide network as the dropout sweep. The coefficient is Keras's: ``L2(c)`` adds ``c * sum(w**2)``
of each hidden layer's kernel to the mean batch loss. The lesson writes the penalty as
``lambda / (2n) * sum(w**2)`` over n training rows, so ``lambda = 2 * n * c``; every child logs
both. The parent's chart shows the train-test gap against c.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from lesson.experiments.data import ExperimentError, ExperimentOptions, load_credit_split
from lesson.experiments.runs import ExperimentResult, Say
from lesson.experiments.sweep import SweepVariant, run_sweep, sweep_network
from models.network import NetworkConfig

KIND = "l2"
DEFAULT_EXPERIMENT = "lesson-l2"
COEFFICIENTS = (0.0, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
QUICK_EPOCHS = 2
DESCRIPTION = (
    "L2 weight-decay coefficient c (Keras L2(c) on each hidden layer; the lesson's lambda = "
    "2 n c) swept with dropout off. Each child logs training and test log loss (penalty "
    "excluded) and AUC per epoch; the parent charts the final train-test gap against c."
)


@dataclass(frozen=True)
class L2Options(ExperimentOptions):
    experiment: str = DEFAULT_EXPERIMENT
    coefficients: tuple[float, ...] = COEFFICIENTS
    network: NetworkConfig = field(default_factory=sweep_network)


def run_l2(options: L2Options, say: Say) -> ExperimentResult:
    """One child run per L2 coefficient; the gap chart on the parent."""
    values = options.coefficients
    if not values:
        raise ExperimentError("give at least one L2 coefficient")
    if not all(math.isfinite(c) and c >= 0.0 for c in values):
        raise ExperimentError(f"L2 coefficients must be finite and >= 0, got {list(values)}")
    base = replace(options.network, keep_probability=1.0)
    if options.quick:
        base = replace(base, epochs=QUICK_EPOCHS)
    split = load_credit_split(options.data, options.seed, options.target, options.positive_label)
    n_train = len(split.y_train)
    say(
        f"{KIND}: {split.data_file}, {n_train} training and {len(split.y_test)} test rows, "
        f"{base.epochs} epochs per value, c in {list(values)}"
    )
    variants = [
        SweepVariant(
            f"l2={c:g}", c, replace(base, l2=c), {"lesson_lambda": round(2 * n_train * c, 10)}
        )
        for c in values
    ]
    return run_sweep(
        kind=KIND,
        variable="l2",
        variants=variants,
        split=split,
        options=options,
        description=DESCRIPTION,
        say=say,
    )
