"""A generated loan file for the fair-lending tests: a protected attribute drives a strong proxy
input, and the outcome depends on the other inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

GRADES = "ABCDE"


def proxy_loans(rows: int = 3000, seed: int = 0, group_effect: float = 0.7) -> pd.DataFrame:
    """Applicants in two groups (``group``, A 60 % / B 40 %, to be declared protected).

    ``district`` is the proxy: group A lives in D0-D4 and group B in D5-D9, except a random 10 %
    spread over all ten. The default odds depend on ``income``, ``debt`` and ``grade`` (drawn
    independently of the group) and on an unrecorded factor that differs by group (log-odds
    ``group_effect`` higher for B): a model can only reach it through the district, which it
    then uses against group B. Without the district, its inputs say nothing of the group.
    """
    rng = np.random.default_rng(seed)
    group = rng.choice(["A", "B"], size=rows, p=[0.6, 0.4])
    in_b = group == "B"
    district = np.where(
        rng.random(rows) < 0.1, rng.integers(0, 10, rows), rng.integers(0, 5, rows) + 5 * in_b
    )
    income = rng.lognormal(8.0, 0.7, rows)
    debt = rng.gamma(2.0, 1.0, rows)
    grade = rng.integers(0, len(GRADES), rows)
    logit = -1.7 * (np.log(income) - 8.0) + 0.6 * (debt - 2.0) + 0.5 * grade + group_effect * in_b
    logit += np.log(0.25 / 0.75) - np.median(logit)
    default = rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))
    return pd.DataFrame(
        {
            "income": income.round(0),
            "debt": debt.round(2),
            "grade": [GRADES[g] for g in grade],
            "district": [f"D{d}" for d in district],
            "group": group,
            "outcome": np.where(default, "bad", "good"),
        }
    )


def write_proxy_loans(directory: Path, rows: int = 3000, seed: int = 0) -> Path:
    """Write ``proxy_loans`` as ``proxy_loans.csv`` with a schema declaring ``group`` protected."""
    path = directory / "proxy_loans.csv"
    proxy_loans(rows, seed).to_csv(path, index=False)
    schema = {"target": "outcome", "positive_label": "bad", "protected": ["group"]}
    (directory / "proxy_loans.schema.json").write_text(json.dumps(schema))
    return path
