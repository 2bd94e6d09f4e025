"""What one training run is asked to do: :class:`TrainOptions`, read by every stage."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.calibration import CalibrationMethod
from models.network import NetworkConfig
from models.settings import TrainingSettings
from training.data import BUNDLED_DATA
from training.fairness import AIR_SCREEN, DEFAULT_MIN_AIR
from training.registry import model_name


@dataclass(frozen=True)
class TrainOptions:
    """One run's inputs. The experiment and the registered name default to
    ``LOANRISK_EXPERIMENT`` and ``LOANRISK_MODEL_NAME``, read when the options are built."""

    data: Path = BUNDLED_DATA
    target: str | None = None
    positive_label: str | None = None
    schema: Path | None = None
    experiment: str = field(default_factory=lambda: TrainingSettings().experiment)
    seed: int = 0
    # None: the default recipe for the size of the training split (NetworkConfig.for_rows), with
    # ``network_overrides`` applied on top.
    network: NetworkConfig | None = None
    network_overrides: dict[str, Any] = field(default_factory=dict)
    register_as: str = field(default_factory=model_name)
    calibration: CalibrationMethod = "platt"
    # None: the cutoff with the largest KS gap on the validation split.
    threshold: float | None = None
    gate_margin: float = 0.0
    force_promote: bool = False
    # None: fairness is reported, not gated (docs/fairness.md, "Why the gate is off by default");
    # R: a version whose fairness_air_min is below R (or cannot be measured) is held back.
    min_air: float | None = DEFAULT_MIN_AIR
    # Groups whose adverse impact ratio is below this are named in the run's summary.
    air_screen: float = AIR_SCREEN
