"""What a window's AUC is held to: the version's AUC on the test applicants it would lend to."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from monitoring.backtest import VersionInfo, lending_cutoff, reference_auc


def test_the_reference_is_the_test_auc_below_the_decline_threshold() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 2000)
    y = (rng.uniform(0, 1, 2000) < p).astype(int)
    info = VersionInfo(None, 0.9, (p, y))
    auc, on = reference_auc(info, 0.35, min_per_class=10)
    lent = p < 0.35
    assert auc == pytest.approx(roc_auc_score(y[lent], p[lent]))
    assert auc < roc_auc_score(y, p)  # the lent are harder to rank than everyone
    assert on == "test applicants below the decline threshold 0.35"
    # Without saved scores, a recorded policy, or enough of each outcome: the test AUC.
    assert reference_auc(VersionInfo(None, 0.9), 0.35, 10) == (0.9, "all test applicants")
    assert reference_auc(info, None, 10) == (0.9, "all test applicants")
    assert reference_auc(info, 0.01, 10) == (0.9, "all test applicants")


def test_the_cutoff_is_the_policy_most_decisions_were_made_under() -> None:
    rows = pd.DataFrame({"policy": [{"decline_at": 0.3}, {"decline_at": 0.4}, {"decline_at": 0.4}]})
    assert lending_cutoff(rows) == 0.4
    assert lending_cutoff(pd.DataFrame({"policy": [None, None]})) is None
    assert lending_cutoff(pd.DataFrame({"x": [1]})) is None
