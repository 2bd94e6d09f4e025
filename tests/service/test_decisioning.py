import math

import numpy as np
import pytest
from pydantic import ValidationError

from service.config import Settings
from service.decisioning import Policy


@pytest.fixture
def policy() -> Policy:
    return Policy.from_settings(Settings())


def odds_to_probability(good_to_bad: float) -> float:
    return 1.0 / (1.0 + good_to_bad)


def test_base_odds_score_the_base_points(policy: Policy) -> None:
    assert policy.scores(np.array([odds_to_probability(50)]))[0] == pytest.approx(600.0)


def test_doubling_the_odds_adds_the_points_to_double(policy: Policy) -> None:
    probabilities = np.array([odds_to_probability(o) for o in (25, 50, 100, 200)])
    assert policy.scores(probabilities).tolist() == pytest.approx([580.0, 600.0, 620.0, 640.0])


def test_custom_scaling_follows_the_settings() -> None:
    policy = Policy.from_settings(
        Settings(score_base_points=500, score_base_odds=10, score_points_to_double_odds=40)
    )
    expected = 500 + 40 / math.log(2) * math.log(20 / 10)
    assert policy.scores(np.array([odds_to_probability(20)]))[0] == pytest.approx(
        expected, abs=0.01
    )


def test_scores_stay_finite_at_certainty(policy: Policy) -> None:
    assert np.isfinite(policy.scores(np.array([0.0, 1.0]))).all()


def test_bands_use_upper_bounds(policy: Policy) -> None:
    probabilities = np.array([0.0, 0.0499, 0.05, 0.15, 0.34, 0.35, 0.99, 1.0])
    assert policy.risk_bands(probabilities) == ["A", "A", "B", "C", "D", "E", "E", "E"]


def test_decisions_follow_the_thresholds(policy: Policy) -> None:
    assert policy.decisions(np.array([0.149, 0.15, 0.349, 0.35])) == [
        "approve",
        "review",
        "review",
        "decline",
    ]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"risk_bands": "A:0.5,B:0.3,C:1.0"},
        {"risk_bands": "A:0.5,B:0.9"},
        {"risk_bands": "A0.5,B:1.0"},
        {"risk_bands": ":0.5,B:1.0"},
        {"approve_below": 0.5, "decline_at": 0.4},
    ],
)
def test_inconsistent_policy_settings_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValidationError):
        Settings(**kwargs)


def test_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOANRISK_API_KEYS", " k1, k2 ,,")
    monkeypatch.setenv("LOANRISK_DECLINE_AT", "0.5")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    settings = Settings()
    assert [key.name for key in settings.api_key_list] == ["key-1", "key-2"]
    assert [key.key for key in settings.api_key_list] == ["k1", "k2"]
    assert settings.decline_at == 0.5
    assert settings.mlflow_tracking_uri == "http://mlflow:5000"


def test_many_probabilities_get_what_each_gets_alone(policy: Policy) -> None:
    # apply() switches to NumPy beyond a few; both paths must agree value for value, the band
    # and threshold edges included.
    edges = [0.0, 1e-12, 0.05, 0.1, 0.15, 0.2, 0.35, 1 - 1e-12, 1.0]
    probabilities = edges + np.random.default_rng(0).uniform(0, 1, 500).tolist()
    scores, bands, decisions = policy.apply(probabilities)
    assert scores == [policy.score(p) for p in probabilities]
    assert bands == [policy.risk_band(p) for p in probabilities]
    assert decisions == [policy.decision(p) for p in probabilities]
    assert policy.apply(probabilities[:3]) == (scores[:3], bands[:3], decisions[:3])
