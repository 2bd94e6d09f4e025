"""Seeding, deterministic TensorFlow ops, and the record of what produced a run."""

from __future__ import annotations

import os
import platform
import random
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

PROJECT_DIR = Path(__file__).resolve().parent.parent
RECORDED_PACKAGES = (
    "tensorflow-cpu",
    "tensorflow",
    "keras",
    "scikit-learn",
    "mlflow",
    "lightgbm",
    "numpy",
    "pandas",
)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow, and make TensorFlow's kernels deterministic.

    With deterministic ops the same seed and data give the same weights, hence the same metrics,
    on the same machine; the cost on small dense networks is negligible.
    """
    from models.network import import_keras

    keras = import_keras()
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()


def package_versions() -> dict[str, str]:
    """Installed versions of the libraries that determine a model's numbers."""
    versions = {}
    for package in RECORDED_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _git(*args: str) -> str | None:
    try:
        completed = subprocess.run(
            ["git", *args],
            cwd=PROJECT_DIR,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return completed.stdout.strip() if completed.returncode == 0 else None


def git_state() -> dict[str, Any]:
    """The commit of the training code, and whether the working tree had uncommitted changes."""
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "commit": commit or "unknown",
        "dirty": None if status is None else bool(status),
    }


def environment_record(data_sha256: str, seed: int) -> dict[str, Any]:
    """Everything needed to reproduce a run on this machine: data, code, libraries, platform."""
    return {
        "data_sha256": data_sha256,
        "seed": seed,
        "git": git_state(),
        "packages": package_versions(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "tensorflow_op_determinism": True,
    }
