import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from service.metrics import PROBABILITY_BUCKETS, ManyValuesHistogram
from tests.conftest import README_APPLICANT, applicant_payload


def test_requests_latency_and_predictions_are_exposed(client: TestClient) -> None:
    client.post("/v1/score", json=README_APPLICANT)
    client.post("/v1/score", json={"Debt": -1})
    text = client.get("/metrics").text
    assert 'loanrisk_http_requests_total{method="POST",route="/v1/score",status="200"} 1.0' in text
    assert 'loanrisk_http_requests_total{method="POST",route="/v1/score",status="422"} 1.0' in text
    assert "loanrisk_http_request_duration_seconds_bucket{" in text
    assert "loanrisk_probability_of_default_count 1.0" in text
    assert "loanrisk_decisions_total{" in text
    assert 'loanrisk_model_info{alias="champion",name="loan-default"' in text


def test_psi_is_published_once_enough_applicants_were_scored(
    client: TestClient, credit_frame: pd.DataFrame
) -> None:
    assert "loanrisk_feature_psi{" not in client.get("/metrics").text
    names = client.app.state.model_store.current.risk_model.contract.names
    applicants = [
        applicant_payload(r, names) for _, r in credit_frame.sample(200, random_state=0).iterrows()
    ]
    client.post("/v1/score/batch", json={"applicants": applicants})
    lines = client.get("/metrics").text.splitlines()
    psi = {
        line.split('"')[1]: float(line.rsplit(" ", 1)[1])
        for line in lines
        if line.startswith("loanrisk_feature_psi{")
    }
    assert set(psi) == set(names)
    assert max(psi.values()) < 0.25  # training-like traffic is stable
    score_psi = [
        float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith("loanrisk_score_psi ")
    ]
    assert score_psi and score_psi[0] < 0.25
    shifted = [{**a, "Home": "rent"} for a in applicants]
    client.post("/v1/score/batch", json={"applicants": shifted * 4})
    drifted = [
        float(line.rsplit(" ", 1)[1])
        for line in client.get("/metrics").text.splitlines()
        if line.startswith('loanrisk_feature_psi{feature="Home"}')
    ]
    assert drifted[0] > 0.25


def test_many_values_histogram_exposes_what_prometheus_own_would() -> None:
    # Counted many at a time with NumPy, a few at a time in Python; read like a Histogram.
    values = [0.0, 0.02, 0.05, 1.0, *np.random.default_rng(0).uniform(0, 1, 500).tolist()]
    own = CollectorRegistry()
    reference = Histogram("h", "doc", buckets=PROBABILITY_BUCKETS, registry=own)
    for value in values:
        reference.observe(value)
    ours = CollectorRegistry()
    many = ManyValuesHistogram("h", "doc", PROBABILITY_BUCKETS)
    ours.register(many)
    many.observe_many(values[:4])
    many.observe_many(values[4:])

    def samples(registry: CollectorRegistry) -> dict[str, float]:
        lines = generate_latest(registry).decode().splitlines()
        pairs = (line.rsplit(" ", 1) for line in lines if not line.startswith("#"))
        return {name: float(value) for name, value in pairs if "_created" not in name}

    expected, got = samples(own), samples(ours)
    assert got.pop("h_sum") == pytest.approx(expected.pop("h_sum"))
    assert got == expected
