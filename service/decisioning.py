"""Lending policy applied to a probability: score points, risk band, decision."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from service.config import Settings

Decision = Literal["approve", "review", "decline"]
# Keeps the odds finite for probabilities of exactly 0 or 1.
PROBABILITY_EPSILON = 1e-9


@dataclass(frozen=True)
class Policy:
    """Scorecard scaling, bands and thresholds, all from settings."""

    base_points: float
    base_odds: float
    points_to_double_odds: float
    bands: tuple[tuple[str, float], ...]
    approve_below: float
    decline_at: float

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            base_points=settings.score_base_points,
            base_odds=settings.score_base_odds,
            points_to_double_odds=settings.score_points_to_double_odds,
            bands=tuple(settings.parsed_bands()),
            approve_below=settings.approve_below,
            decline_at=settings.decline_at,
        )

    def scores(self, probabilities: np.ndarray) -> np.ndarray:
        """Points = offset + factor · ln(good:bad odds), factor = PDO / ln 2.

        With the defaults, odds of 50:1 score 600 and every doubling of the odds adds 20 points.
        """
        p = np.clip(
            np.asarray(probabilities, dtype=np.float64),
            PROBABILITY_EPSILON,
            1 - PROBABILITY_EPSILON,
        )
        factor = self.points_to_double_odds / math.log(2)
        offset = self.base_points - factor * math.log(self.base_odds)
        return np.round(offset + factor * np.log((1 - p) / p), 2)

    def risk_bands(self, probabilities: np.ndarray) -> list[str]:
        """The first band whose upper bound the probability is below (the last takes the rest)."""
        bounds = np.array([bound for _, bound in self.bands])
        index = np.searchsorted(bounds, np.asarray(probabilities), side="right")
        labels = [label for label, _ in self.bands]
        return [labels[min(i, len(labels) - 1)] for i in index.tolist()]

    def decisions(self, probabilities: np.ndarray) -> list[Decision]:
        out: list[Decision] = []
        for p in np.asarray(probabilities).tolist():
            if p < self.approve_below:
                out.append("approve")
            elif p >= self.decline_at:
                out.append("decline")
            else:
                out.append("review")
        return out
