"""Dynamic batching: concurrent single-applicant requests share one vectorised assessment."""

import asyncio
from pathlib import Path

import httpx
import pandas as pd
import pytest

from models.risk_model import RiskModel
from service.app import create_app
from service.config import Settings
from tests.conftest import README_APPLICANT, TrainedStore, applicant_payload


async def score_concurrently(
    settings: Settings, applicants: list[dict]
) -> tuple[list[tuple[int, dict]], bytes, int, RiskModel]:
    """POST every applicant at once to the app; the answers, /metrics and the audit count."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            responses = await asyncio.gather(
                *(client.post("/v1/score", json=applicant) for applicant in applicants)
            )
            metrics = (await client.get("/metrics")).content
        audited = app.state.audit.count()
        model = app.state.model_store.current.risk_model
    return [(r.status_code, r.json()) for r in responses], metrics, audited, model


def test_concurrent_requests_share_a_pass_and_get_their_own_answers(
    use_tiny_store: TrainedStore, credit_frame: pd.DataFrame, tmp_path: Path
) -> None:
    settings = Settings(audit_db_url=f"sqlite:///{tmp_path / 'audit.db'}", reload_interval_s=0)
    sample = credit_frame.sample(24, random_state=3)
    applicants = [applicant_payload(row, list(README_APPLICANT)) for _, row in sample.iterrows()]

    answers, metrics, audited, model = asyncio.run(score_concurrently(settings, applicants))

    assert [status for status, _ in answers] == [200] * len(applicants)
    assert audited == len(applicants)
    assert len({body["request_id"] for _, body in answers}) == len(applicants)
    # Fewer passes than requests: some were assessed together.
    passes = _sample_value(metrics, "loanrisk_assessment_batch_size_count")
    assert _sample_value(metrics, "loanrisk_assessment_batch_size_sum") == len(applicants)
    assert passes < len(applicants)
    for applicant, (_, body) in zip(applicants, answers, strict=True):
        alone = model.assess([applicant])
        assert body["probability_of_default"] == pytest.approx(alone.probabilities[0], abs=1e-7)
        assert [r["feature"] for r in body["reason_codes"]] == [
            r["feature"] for r in alone.reasons[0]
        ]


def _sample_value(exposition: bytes, name: str) -> float:
    for line in exposition.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")
