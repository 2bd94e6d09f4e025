"""Prometheus metrics: traffic, latency, model version, reloads, predictions and drift (PSI)."""

from __future__ import annotations

import bisect
import collections
import itertools
import math
import threading
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from models.few import FEW_ROWS
from models.reference import TrainingReference

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)
PROBABILITY_BUCKETS = (0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.7, 1.0)
# PSI over fewer recent applicants than this is noise, so it is not published.
MIN_PSI_SAMPLE = 50


class ManyValuesHistogram(Collector):
    """A histogram observed many values at a time, exposed like prometheus_client's own.

    ``Histogram.observe`` takes a lock and searches the buckets per value: ~1.4 µs each, 1.4 ms
    for a 1,000-applicant batch. Here a batch's values are counted into buckets with NumPy.
    """

    def __init__(self, name: str, documentation: str, buckets: Sequence[float]) -> None:
        self.name = name
        self.documentation = documentation
        self.bounds = [*buckets, math.inf]
        self._bounds = np.asarray(self.bounds)
        self._counts = [0] * len(self.bounds)  # per bucket, not cumulative
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe_many(self, values: Sequence[float]) -> None:
        if len(values) <= FEW_ROWS:  # NumPy's per-call cost would dominate: see models.few
            indices = [bisect.bisect_left(self.bounds, value) for value in values]
            with self._lock:
                for index in indices:
                    self._counts[index] += 1
                self._sum += sum(values)
            return
        counts = np.bincount(
            np.searchsorted(self._bounds, values, side="left"), minlength=len(self.bounds)
        ).tolist()
        total = float(np.sum(values))
        with self._lock:
            self._counts = [a + b for a, b in zip(self._counts, counts, strict=True)]
            self._sum += total

    def collect(self) -> Iterator[HistogramMetricFamily]:
        with self._lock:
            counts, total = list(self._counts), self._sum
        cumulative = list(itertools.accumulate(counts))
        yield HistogramMetricFamily(
            self.name,
            self.documentation,
            buckets=[
                (floatToGoString(bound), count)
                for bound, count in zip(self.bounds, cumulative, strict=True)
            ],
            sum_value=total,
        )


class ServiceMetrics:
    """One registry per application, so several apps (tests, workers) never share counters."""

    def __init__(self, psi_window: int) -> None:
        self.registry = CollectorRegistry()
        labels = ["route", "method", "status"]
        self.requests = Counter(
            "loanrisk_http_requests_total", "HTTP requests", labels, registry=self.registry
        )
        self.latency = Histogram(
            "loanrisk_http_request_duration_seconds",
            "HTTP request latency",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.model_info = Gauge(
            "loanrisk_model_info",
            "The model version being served (value 1)",
            ["name", "version", "alias"],
            registry=self.registry,
        )
        self.model_version = Gauge(
            "loanrisk_model_version", "Registry version number being served", registry=self.registry
        )
        self.reloads = Counter(
            "loanrisk_model_reloads_total",
            "Registry checks by outcome (loaded, unchanged, refused_*, failed_*)",
            ["outcome"],
            registry=self.registry,
        )
        self.probability = ManyValuesHistogram(
            "loanrisk_probability_of_default",
            "Predicted probabilities of default",
            PROBABILITY_BUCKETS,
        )
        self.registry.register(self.probability)
        self.assessment_batch = Histogram(
            "loanrisk_assessment_batch_size",
            "Single-applicant requests assessed together in one vectorised pass",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.decisions = Counter(
            "loanrisk_decisions_total", "Decisions by outcome", ["decision"], registry=self.registry
        )
        self.audit_failures = Counter(
            "loanrisk_audit_failures_total",
            "Requests refused because the audit write failed",
            registry=self.registry,
        )
        # A challenger scored in the shadow (service.shadow): applicants it scored, applicants it
        # did not by reason, and its registry checks (the champion's are ``reloads``).
        self.shadow_scored = Counter(
            "loanrisk_shadow_scored_total",
            "Applicants the shadow challenger scored (stored in shadow_scores)",
            registry=self.registry,
        )
        self.shadow_failures = Counter(
            "loanrisk_shadow_failures_total",
            "Applicants the shadow challenger did not score, by reason (no_challenger, contract, "
            "error, paused); their requests were answered all the same",
            ["reason"],
            registry=self.registry,
        )
        self.shadow_reloads = Counter(
            "loanrisk_shadow_reloads_total",
            "Registry checks of the shadow challenger's alias by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.shadow_info = Gauge(
            "loanrisk_shadow_model_info",
            "The challenger version scored in the shadow (value 1)",
            ["name", "version", "alias"],
            registry=self.registry,
        )
        self.feature_psi = Gauge(
            "loanrisk_feature_psi",
            "Population stability index of each input, recent window vs training",
            ["feature"],
            registry=self.registry,
        )
        self.score_psi = Gauge(
            "loanrisk_score_psi",
            "Population stability index of predicted probabilities, recent window vs training",
            registry=self.registry,
        )
        self._window_records: deque[Mapping[str, Any]] = deque(maxlen=psi_window)
        self._window_probabilities: deque[float] = deque(maxlen=psi_window)
        self._lock = threading.Lock()
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._decision_children: dict[str, Any] = {}

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        children = self._request_children.get(key)
        if children is None:
            # labels() hashes and locks on every call; the set of (route, method, status) is
            # small, so each pair of children is looked up once.
            labels = (route, method, str(status))
            children = self.requests.labels(*labels), self.latency.labels(*labels)
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_scores(
        self,
        records: Sequence[Mapping[str, Any]],
        probabilities: Sequence[float],
        decisions: Sequence[str],
    ) -> None:
        self.probability.observe_many(probabilities)
        for decision, count in collections.Counter(decisions).items():
            counter = self._decision_children.get(decision)
            if counter is None:
                counter = self._decision_children[decision] = self.decisions.labels(decision)
            counter.inc(count)
        with self._lock:
            self._window_records.extend(records)
            self._window_probabilities.extend(probabilities)

    def model_loaded(self, name: str, version: str, alias: str) -> None:
        self.model_info.clear()
        self.model_info.labels(name, version, alias).set(1)
        try:
            self.model_version.set(float(version))
        except ValueError:
            self.model_version.set(-1)
        with self._lock:
            # Scores from another version are not comparable with the new training reference.
            self._window_probabilities.clear()

    def shadow_loaded(self, name: str, version: str, alias: str) -> None:
        self.shadow_info.clear()
        self.shadow_info.labels(name, version, alias).set(1)

    def render(self, reference: TrainingReference | None) -> bytes:
        """The exposition text, with PSI computed over the recent window first."""
        with self._lock:
            records = list(self._window_records)
            probabilities = list(self._window_probabilities)
        if reference is not None and len(records) >= MIN_PSI_SAMPLE:
            for feature, value in reference.feature_psi(records).items():
                self.feature_psi.labels(feature).set(value)
        if reference is not None and len(probabilities) >= MIN_PSI_SAMPLE:
            self.score_psi.set(reference.score_psi(probabilities))
        return generate_latest(self.registry)
