"""The less-discriminatory-alternative search's pieces, without training: the table, the verdict,
the moved thresholds, the reduced contract and the figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.training.fairness_data import write_proxy_loans
from training.lda import _Line, frontier_plot, lda_table, moved_thresholds, verdict, without
from training.stages.options import TrainOptions
from training.stages.prepare import prepare


def line(name: str, kind: str, auc: float, air: float | None, approval: float = 0.6) -> _Line:
    metrics = {"test_roc_auc": auc, "test_approval_rate": approval, "test_bad_rate_approved": 0.1}
    if air is not None:
        metrics["fairness_air_min"] = air
    dropped = (name.removeprefix("drop "),) if kind == "drop" else ()
    return _Line(name, kind, dropped, 0.3, metrics)


def test_table_marks_alternatives_within_the_tolerance_with_a_higher_air() -> None:
    table = lda_table(
        [
            line("baseline", "baseline", 0.800, 0.70),
            line("drop zip", "drop", 0.796, 0.90),  # within 0.005, fairer
            line("drop income", "drop", 0.790, 0.95),  # fairer, too costly
            line("drop debt", "drop", 0.801, 0.65),  # better AUC, less fair
            line("drop age proxy", "drop", 0.800, None),  # AIR not measurable: never higher
            line("threshold 0.400", "threshold", 0.800, 0.75, approval=0.7),
        ],
        tolerance=0.005,
    ).set_index("alternative")
    assert table["less_discriminatory"].to_dict() == {
        "baseline": False,
        "drop zip": True,
        "drop income": False,
        "drop debt": False,
        "drop age proxy": False,
        "threshold 0.400": True,
    }
    assert table.loc["drop zip", "auc_change"] == pytest.approx(-0.004)
    assert table.loc["drop zip", "air_change"] == pytest.approx(0.2)
    assert table.loc["drop zip", "dropped"] == "zip"


def test_the_verdict_names_a_retrained_alternative_before_a_threshold_move() -> None:
    lines = [
        line("baseline", "baseline", 0.800, 0.70),
        line("drop zip", "drop", 0.797, 0.85),
        line("threshold 0.450", "threshold", 0.800, 0.95, approval=0.8),
    ]
    text, found = verdict(lda_table(lines, 0.005), 0.005)
    assert found == "drop zip"
    assert text.startswith("less discriminatory alternative found: drop zip (test AUC 0.7970")
    assert "a threshold move also qualifies: threshold 0.450" in text
    assert "approval rate 0.800" in text and "baseline test AUC 0.8000" in text
    only_move, found = verdict(lda_table([lines[0], lines[2]], 0.005), 0.005)
    assert found == "threshold 0.450" and "default rate among approved" in only_move


def test_the_verdict_says_when_there_is_none() -> None:
    lines = [line("baseline", "baseline", 0.800, 0.70), line("drop zip", "drop", 0.780, 0.90)]
    text, found = verdict(lda_table(lines, 0.005), 0.005)
    assert found is None
    assert text.startswith("no less discriminatory alternative: none of the 1 alternatives")
    # A looser tolerance accepts it.
    assert verdict(lda_table(lines, 0.03), 0.03)[1] == "drop zip"


def test_moved_thresholds_move_the_validation_approval_rate() -> None:
    p = np.linspace(0.0, 1.0, 1001)[:-1]  # 1000 evenly spread scores
    thresholds = moved_thresholds(p, 0.5)  # approves 0.5
    rates = [float(np.mean(p < t)) for t in thresholds]
    assert rates == pytest.approx([0.40, 0.45, 0.55, 0.60], abs=0.002)
    # Near the edge, moves outside 5 %-95 % approval are not tried.
    assert len(moved_thresholds(p, 0.08)) == 2


def test_without_moves_inputs_to_the_dropped_columns_and_keeps_the_split(tmp_path: Path) -> None:
    prepared = prepare(TrainOptions(data=write_proxy_loans(tmp_path, rows=400)))
    reduced = without(prepared, ("district",))
    assert "district" not in reduced.contract.names
    assert reduced.contract.names == [n for n in prepared.contract.names if n != "district"]
    assert "district" in reduced.contract.dropped and reduced.contract.protected == ("group",)
    assert list(reduced.rows("train").columns) == reduced.contract.names
    assert np.array_equal(reduced.split.test, prepared.split.test)
    assert "district" in prepared.contract.names  # the original is unchanged


def test_frontier_figure_is_a_png(tmp_path: Path) -> None:
    table = lda_table(
        [
            line("baseline", "baseline", 0.800, 0.70),
            line("drop zip", "drop", 0.797, 0.85),
            line("threshold 0.450", "threshold", 0.800, 0.75),
        ],
        0.005,
    )
    path = frontier_plot(table, 0.005, tmp_path / "frontier.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
