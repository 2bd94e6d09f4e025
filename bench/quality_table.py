"""Run ``loanrisk benchmark --json`` on the bundled datasets and write docs/benchmarks.md.

Usage: ``.venv/bin/python bench/quality_table.py [--folds 5] [--seed 0]``. Each dataset runs in its
own ``loanrisk`` process, exactly as a user would run it; the table records the commands and the
date.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
LOANRISK = Path(sys.executable).with_name("loanrisk")
DATASETS = (
    ("data/credit_data.csv", "Status", "bad"),
    ("data/lending_club.csv", "Class", "bad"),
)
MODELS = (("dnn", "DNN (ours)"), ("logreg", "logistic regression"), ("lightgbm", "LightGBM"))


def run(data: str, target: str, positive: str, folds: int, seed: int) -> tuple[str, dict]:
    command = [
        "loanrisk",
        "benchmark",
        "--data",
        data,
        "--target",
        target,
        "--positive-label",
        positive,
        "--folds",
        str(folds),
        "--seed",
        str(seed),
        "--json",
    ]
    print(" ".join(command), file=sys.stderr)
    started = time.perf_counter()
    completed = subprocess.run(
        [str(LOANRISK), *command[1:]], cwd=PROJECT, capture_output=True, text=True, check=True
    )
    print(f"  {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return " ".join(command), json.loads(completed.stdout)


def table(results: list[tuple[str, dict]]) -> str:
    lines = [
        "| dataset | rows | default rate | model | AUC mean | AUC std | Brier | ECE | fit s/fold |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for _, result in results:
        best_baseline = max(result["models"][m]["auc_mean"] for m in ("logreg", "lightgbm"))
        for key, label in MODELS:
            row = result["models"][key]
            auc = f"{row['auc_mean']:.4f}"
            if key == "dnn":
                auc = f"**{auc}**" if row["auc_mean"] >= best_baseline else auc
            lines.append(
                f"| {result['dataset']} | {result['rows']} | {result['positive_rate']:.3f} | "
                f"{label} | {auc} | {row['auc_std']:.4f} | {row['brier_mean']:.4f} | "
                f"{row['ece_mean']:.4f} | {row['fit_seconds']:.1f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=PROJECT / "docs" / "benchmarks.md")
    args = parser.parse_args()
    results = [run(d, t, p, args.folds, args.seed) for d, t, p in DATASETS]
    verdicts = []
    for _, result in results:
        dnn = result["models"]["dnn"]["auc_mean"]
        best = max(result["models"][m]["auc_mean"] for m in ("logreg", "lightgbm"))
        verb = "beats" if dnn >= best else "does NOT beat"
        verdicts.append(
            f"- {result['dataset']}: the DNN {verb} the better baseline by {dnn - best:+.4f} AUC."
        )
    text = "\n".join(
        [
            "# Benchmarks",
            "",
            f"Measured {datetime.now(UTC):%Y-%m-%d} on {platform.machine()} "
            f"({platform.processor() or 'CPU'}, {_cores()} cores), with:",
            "",
            "```",
            *(command for command, _ in results),
            "```",
            "",
            f"Stratified {args.folds}-fold cross-validation, seed {args.seed}, the same folds for "
            "all three models. Protected columns (Age, Marital in credit_data) are excluded from "
            "every model's inputs. ECE: 10 equal-frequency bins on each test fold; with ~900 rows "
            "per fold even a perfectly calibrated model shows about 0.03 on credit_data. The DNN "
            "holds out a quarter of each training fold for early stopping and calibration; the "
            "baselines are fitted on all of it. `fit s/fold` is wall time on a shared machine.",
            "",
            table(results),
            "",
            *verdicts,
            "",
            "Regenerate with `.venv/bin/python bench/quality_table.py`.",
            "",
        ]
    )
    args.output.write_text(text)
    print(text)


def _cores() -> int:
    import os

    return os.cpu_count() or 1


if __name__ == "__main__":
    main()
