"""The loop end to end: held-out credit_data rows scored through the service, their true outcomes
imported from the data's own Status (approved and reviewed loans only), ``loanrisk monitor``'s
figures checked against sklearn on the same rows; incomes halved give a PSI breach (exit 3)."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score, roc_curve
from sqlalchemy import insert, update
from typer.testing import CliRunner

from cli import app
from service.audit import decisions, make_engine
from service.audit.schema import shadow_scores
from tests.conftest import CREDIT_DATA, ClientFactory, TrainedStore, applicant_payload
from training.data import load_dataset, stratified_split

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def score_held_out(client, frame: pd.DataFrame, names: list[str]) -> list[dict]:  # type: ignore[no-untyped-def]
    results = []
    for start in range(0, len(frame), 200):
        chunk = frame.iloc[start : start + 200]
        body = {"applicants": [applicant_payload(row, names) for _, row in chunk.iterrows()]}
        answer = client.post("/v1/score/batch", json=body)
        assert answer.status_code == 200, answer.text
        results += answer.json()["results"]
    return results


def gauge(text: str, name: str, **labels: str) -> float | None:
    """The value of the series ``name{labels}`` of the served champion in Prometheus text, or
    None when it is absent."""
    from prometheus_client.parser import text_string_to_metric_families

    wanted = {"name": "loan-default", "alias": "champion", **labels}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == wanted:
                return sample.value
    return None


def run_loop(
    store: TrainedStore, make_client: ClientFactory, tmp_path: Path, halve_income: bool
) -> tuple[pd.DataFrame, str, object]:
    """Score the held-out rows, spread their decisions over 60 days, import approved and
    reviewed loans' outcomes; the scored frame (with request ids), the audit URL, the import."""
    dataset = load_dataset(CREDIT_DATA)  # what the store was trained on
    held_out = dataset.frame.iloc[stratified_split(dataset.y, 0).test].reset_index(drop=True)
    if halve_income:
        held_out["Income"] = held_out["Income"] / 2
    names = dataset.contract.names
    with make_client() as client:
        results = score_held_out(client, held_out, names)
    held_out["request_id"] = [r["request_id"] for r in results]
    held_out["decision"] = [r["decision"] for r in results]
    held_out["p"] = [r["probability_of_default"] for r in results]
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    engine = make_engine(url)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    with engine.begin() as connection:  # decided over 60 days: two 30-day windows
        for i, request_id in enumerate(held_out["request_id"]):
            connection.execute(
                update(decisions)
                .where(decisions.c.request_id == request_id)
                .values(created_at=start + timedelta(hours=i * 60 * 24 / len(held_out)))
            )
    engine.dispose()
    lent = held_out[held_out["decision"] != "decline"]
    file = tmp_path / "outcomes.csv"
    pd.DataFrame(
        {
            "request_id": lent["request_id"],
            "defaulted": np.where(lent["Status"] == "bad", "true", "false"),
            "observed_at": "2025-12-31",
        }
    ).to_csv(file, index=False)
    imported = CliRunner().invoke(
        app, ["outcomes", "import", str(file), "--json"], env={"LOANRISK_AUDIT_DB_URL": url}
    )
    return held_out, url, imported


def test_monitor_figures_match_a_direct_computation(
    use_trained_store: TrainedStore,
    make_client: ClientFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    held_out, url, imported = run_loop(use_trained_store, make_client, tmp_path, False)
    assert imported.exit_code == 0, imported.output
    summary = json.loads(imported.output)
    lent = held_out[held_out["decision"] != "decline"]
    assert summary["recorded"] == len(lent) and summary["unknown"] == []
    # The monitoring run goes to its own store; the registry stays the trained one.
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", use_trained_store.uri)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'monitoring.db'}")
    ran = CliRunner().invoke(
        app, ["monitor", "--window", "30d", "--json"], env={"LOANRISK_AUDIT_DB_URL": url}
    )
    assert ran.exit_code in (0, 3), ran.output
    (report,) = json.loads(ran.output.strip().splitlines()[-1])
    y = (lent["Status"] == "bad").to_numpy().astype(int)
    p = lent["p"].to_numpy()
    fpr, tpr, _ = roc_curve(y, p)
    assert report["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert report["ks"] == pytest.approx(np.max(tpr - fpr), abs=1e-12)
    assert report["observed_to_expected"] == pytest.approx(y.sum() / p.sum(), rel=1e-12)
    assert report["outcomes"] == len(lent) and report["applications"] == len(held_out)
    # Discrimination is held to the version's AUC on the test applicants it would lend to: these
    # held-out rows are its test split, scored by the same model (float32 rounding aside, which
    # could move a row across the threshold: one row moves the AUC by less than 0.01).
    from service.config import Settings

    cutoff = Settings().decline_at
    below = held_out[held_out["p"] < cutoff]
    y_below = (below["Status"] == "bad").to_numpy().astype(int)
    assert report["reference_auc"] == pytest.approx(roc_auc_score(y_below, below["p"]), abs=0.01)
    assert report["reference_auc_on"] == f"test applicants below the decline threshold {cutoff:g}"
    assert report["checks"]["stability"] in ("ok", "watch")
    assert max(report["feature_psi"].values()) < 0.25

    from mlflow import MlflowClient

    client = MlflowClient()
    (run,) = client.search_runs(
        [client.get_experiment_by_name("loan-default-monitoring").experiment_id]
    )
    assert run.data.tags["model_version"] == report["model_version"]
    assert run.data.metrics["total_auc"] == pytest.approx(report["auc"])
    assert len(client.get_metric_history(run.info.run_id, "window_auc")) == 2

    # The service publishes the run's figures for the version it serves, read at start-up.
    with make_client() as service:
        text = service.get("/metrics").text
    version = report["model_version"]
    assert gauge(text, "loanrisk_backtest_auc", version=version) == pytest.approx(report["auc"])
    assert gauge(text, "loanrisk_backtest_outcomes", version=version) == len(lent)
    for check, status in report["checks"].items():
        published = gauge(text, "loanrisk_backtest_status", version=version, check=check)
        # A check with too few outcomes (n/a) is not published.
        assert published == {"ok": 0, "watch": 1, "breach": 2, "n/a": None}[status]

    # A challenger in the shadow: its scores written as the service will write them.
    challenger = "99"
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(
            insert(shadow_scores),
            [
                {
                    "request_id": r,
                    "model_name": "loan-default",
                    "model_version": challenger,
                    "alias": "challenger",
                    "probability_of_default": q,
                    "decision": "approve" if q < 0.15 else "decline" if q >= 0.35 else "review",
                    "scored_at": datetime.now(UTC),
                }
                for r, q in zip(held_out["request_id"], np.sqrt(held_out["p"]), strict=True)
            ],
        )
    engine.dispose()
    compared = CliRunner().invoke(
        app,
        ["monitor", "--compare", report["model_version"], challenger],
        env={"LOANRISK_AUDIT_DB_URL": url},
    )
    assert compared.exit_code == 0, compared.output
    # sqrt is monotone: the same ranking, so the same AUC and a zero difference.
    assert f"AUC champion {roc_auc_score(y, p):.4f}" in compared.output
    assert "difference (challenger - champion) +0.0000" in compared.output
    assert "selection effect" in compared.output


def test_incomes_halved_breach_stability_exit_3_and_on_metrics(
    use_trained_store: TrainedStore,
    make_client: ClientFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, url, imported = run_loop(use_trained_store, make_client, tmp_path, True)
    assert imported.exit_code == 0, imported.output
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", use_trained_store.uri)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'monitoring.db'}")
    with make_client() as service:
        # No back-test yet: nothing published, nothing failed.
        assert "loanrisk_backtest_" not in service.get("/metrics").text
        ran = CliRunner().invoke(app, ["monitor", "--json"], env={"LOANRISK_AUDIT_DB_URL": url})
        assert ran.exit_code == 3, ran.output
        (report,) = json.loads(ran.output.strip().splitlines()[-1])
        assert report["checks"]["stability"] == "breach"
        assert report["feature_psi"]["Income"] > 0.25
        # A scheduler's alert sees the same breach once the service reads the run again.
        assert service.post("/v1/admin/reload").status_code == 200
        text = service.get("/metrics").text
    version = report["model_version"]
    assert gauge(text, "loanrisk_backtest_status", version=version, check="stability") == 2
    assert gauge(text, "loanrisk_backtest_status", version=version, check="overall") == 2
    assert gauge(
        text, "loanrisk_backtest_feature_psi", version=version, feature="Income"
    ) == pytest.approx(report["feature_psi"]["Income"])


def empty_audit_store(tmp_path: Path) -> str:
    """The URL of an audit store as the service makes it, with no decisions yet."""
    from service.audit.migrations import upgrade

    url = f"sqlite:///{tmp_path / 'audit.db'}"
    upgrade(url)
    return url


def test_an_unknown_id_in_the_file_exits_1(tmp_path: Path) -> None:
    url = empty_audit_store(tmp_path)
    file = tmp_path / "outcomes.csv"
    file.write_text("request_id,defaulted,observed_at\nnope,true,2025-01-01\nx,maybe,2025-01-01\n")
    ran = CliRunner().invoke(
        app, ["outcomes", "import", str(file)], env={"LOANRISK_AUDIT_DB_URL": url}
    )
    assert ran.exit_code == 1
    assert "unknown request id: nope" in ran.output
    assert "row 2: defaulted" in ran.output
    missing = tmp_path / "bad.csv"
    missing.write_text("request_id,defaulted\n")
    assert (
        CliRunner()
        .invoke(app, ["outcomes", "import", str(missing)], env={"LOANRISK_AUDIT_DB_URL": url})
        .exit_code
        == 2
    )


def test_an_id_twice_in_the_file_is_refused_on_each_row_exit_1(tmp_path: Path) -> None:
    """Which of two rows for one id is right cannot be known: neither is stored, each is named."""
    url = empty_audit_store(tmp_path)
    file = tmp_path / "outcomes.csv"
    file.write_text(
        "request_id,defaulted,observed_at\n"
        "a,true,2025-01-01\nb,true,2025-01-01\na,false,2025-01-01\na,true,2025-01-01\n"
    )
    ran = CliRunner().invoke(
        app, ["outcomes", "import", str(file), "--json"], env={"LOANRISK_AUDIT_DB_URL": url}
    )
    assert ran.exit_code == 1
    summary = json.loads(ran.stdout)
    assert summary["unknown"] == ["b"]  # only b reached the database
    assert summary["invalid"] == [
        {"row": 1, "field": "request_id", "message": "repeated in row 3"},
        {"row": 3, "field": "request_id", "message": "repeats row 1"},
        {"row": 4, "field": "request_id", "message": "repeats row 1"},
    ]
    text = CliRunner().invoke(
        app, ["outcomes", "import", str(file)], env={"LOANRISK_AUDIT_DB_URL": url}
    )
    assert text.exit_code == 1
    assert "  row 3: request_id: repeats row 1\n" in text.output
