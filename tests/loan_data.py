"""Small generated loan datasets for fast tests: mixed types, missing values, heavy tails."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd


def make_loans(rows: int = 600, seed: int = 0, positive_rate: float = 0.25) -> pd.DataFrame:
    """Applicants whose default odds depend on income, amount, grade and (weakly) state.

    ``age`` is generated independently of the outcome and is meant to be declared protected.
    """
    rng = np.random.default_rng(seed)
    income = rng.lognormal(mean=8.0, sigma=0.8, size=rows)
    amount = rng.lognormal(mean=7.0, sigma=1.0, size=rows)
    grade = rng.choice(list("ABCDEFG"), size=rows, p=[0.2, 0.2, 0.2, 0.15, 0.1, 0.1, 0.05])
    state = rng.choice([f"S{i:02d}" for i in range(50)], size=rows)
    term = rng.choice(["36", "60"], size=rows)
    age = rng.integers(19, 75, size=rows)
    grade_effect = {g: i * 0.45 for i, g in enumerate("ABCDEFG")}
    state_effect = {f"S{i:02d}": (i % 5 - 2) * 0.1 for i in range(50)}
    logit = (
        -0.9 * (np.log(income) - 8.0)
        + 0.5 * (np.log(amount) - 7.0)
        + np.array([grade_effect[g] for g in grade])
        + np.array([state_effect[s] for s in state])
        + 0.3 * (term == "60")
    )
    # Shift the intercept so the default rate is about ``positive_rate``.
    intercept = np.log(positive_rate / (1 - positive_rate)) - np.median(logit)
    default = rng.random(rows) < 1.0 / (1.0 + np.exp(-(logit + intercept)))
    frame = pd.DataFrame(
        {
            "income": income.round(0),
            "amount": amount.round(0),
            "grade": grade,
            "state": state,
            "term": term,
            "age": age,
            "outcome": np.where(default, "bad", "good"),
        }
    )
    frame.loc[rng.random(rows) < 0.05, "income"] = np.nan
    return frame


def write_loans(directory: Path, rows: int = 600, seed: int = 0, name: str = "loans") -> Path:
    """Write the generated data as CSV with a sibling schema declaring target and protected age."""
    path = directory / f"{name}.csv"
    make_loans(rows, seed).to_csv(path, index=False)
    schema = {"target": "outcome", "positive_label": "bad", "protected": ["age"]}
    (directory / f"{name}.schema.json").write_text(json.dumps(schema))
    return path
