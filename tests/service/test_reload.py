"""Reloading the champion: swaps, refusals and their counts, against a real registry."""

import pytest
from mlflow import MlflowClient

from service import model_store
from tests.conftest import (
    README_APPLICANT,
    ClientFactory,
    TrainedStore,
    champion_source,
    register_source,
)


@pytest.fixture
def registry(tiny_store: TrainedStore, mlflow_store: str) -> str:
    """A fresh registry whose champion (version 1) is the session's tiny model."""
    source = champion_source(tiny_store.uri)
    register_source(source)
    return source


def test_admin_reload_swaps_to_a_new_champion(registry: str, make_client: ClientFactory) -> None:
    with make_client() as client:
        assert client.post("/v1/score", json=README_APPLICANT).json()["model"]["version"] == "1"
        unchanged = client.post("/v1/admin/reload").json()
        assert unchanged["outcome"] == "unchanged"
        register_source(registry)  # version 2 becomes champion
        reloaded = client.post("/v1/admin/reload").json()
        assert reloaded["outcome"] == "loaded" and reloaded["model"]["version"] == "2"
        answer = client.post("/v1/score", json=README_APPLICANT).json()
        assert answer["model"]["version"] == "2"
        assert client.get("/ready").json()["model"]["version"] == "2"
        metrics = client.get("/metrics").text
    assert 'loanrisk_model_reloads_total{outcome="loaded"} 2.0' in metrics
    assert 'loanrisk_model_reloads_total{outcome="unchanged"} 1.0' in metrics
    assert 'loanrisk_model_info{alias="champion",name="loan-default",version="2"} 1.0' in metrics
    assert "loanrisk_model_version 2.0" in metrics


@pytest.mark.slow
def test_a_version_with_another_contract_is_refused_and_the_old_one_keeps_serving(
    registry: str,
    dti_store: TrainedStore,
    make_client: ClientFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with make_client() as client:
        register_source(champion_source(dti_store.uri))  # version 2: other features
        refused = client.post("/v1/admin/reload").json()
        assert refused["outcome"] == "refused_contract"
        assert "different feature contract" in refused["message"]
        answer = client.post("/v1/score", json=README_APPLICANT)
        assert answer.status_code == 200 and answer.json()["model"]["version"] == "1"
        assert client.get("/ready").status_code == 200
        # The refusal is remembered for that version: the next checks neither download it again
        # nor log it again, and still answer why.
        loads = []
        original = model_store.load_version
        monkeypatch.setattr(
            model_store, "load_version", lambda *a, **k: loads.append(a) or original(*a, **k)
        )
        again = client.post("/v1/admin/reload").json()
        assert again["outcome"] == "refused_contract" and loads == []
        assert "different feature contract" in again["message"]
        metrics = client.get("/metrics").text
    assert 'loanrisk_model_reloads_total{outcome="refused_contract"} 2.0' in metrics


def test_a_version_that_fails_to_load_is_refused(
    registry: str, make_client: ClientFactory, tmp_path
) -> None:
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "MLmodel").write_text("not a model\n")
    with make_client() as client:
        register_source(str(broken))
        outcome = client.post("/v1/admin/reload").json()
        assert outcome["outcome"] == "failed_load"
        assert client.post("/v1/score", json=README_APPLICANT).json()["model"]["version"] == "1"


def test_removing_the_alias_keeps_the_loaded_model(
    registry: str, make_client: ClientFactory
) -> None:
    with make_client() as client:
        MlflowClient().delete_registered_model_alias("loan-default", "champion")
        assert client.post("/v1/admin/reload").json()["outcome"] == "failed_no_alias"
        assert client.get("/ready").status_code == 200
        assert client.post("/v1/score", json=README_APPLICANT).status_code == 200


def test_a_service_started_without_champion_picks_one_up(
    tiny_store: TrainedStore, mlflow_store: str, make_client: ClientFactory
) -> None:
    with make_client() as client:
        assert client.get("/ready").status_code == 503
        register_source(champion_source(tiny_store.uri))
        assert client.post("/v1/admin/reload").json()["outcome"] == "loaded"
        assert client.get("/ready").status_code == 200
        assert client.post("/v1/score", json=README_APPLICANT).status_code == 200


def test_the_poller_reloads_on_its_own(registry: str, make_client: ClientFactory) -> None:
    import time

    with make_client(reload_interval_s=0.2) as client:
        register_source(registry)
        deadline = time.monotonic() + 30
        version = "1"
        while version != "2" and time.monotonic() < deadline:
            time.sleep(0.2)
            version = client.get("/ready").json()["model"]["version"]
    assert version == "2"
