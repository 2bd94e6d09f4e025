"""How a categorical value is read: one function per saved normalisation version.

The version is saved with the fitted preprocessing (``preprocessing.json``, key ``normalisation``)
and every path that encodes a category (training, the service, the pyfunc model, file scoring)
reads values through :func:`category_reader` of that version, so they cannot disagree.

Versions:

- ``0`` (models saved before normalisation existed; the default when the key is absent): a value
  is ``str(value)``; ``None`` and float NaN are missing. Exactly what those models were trained on.
- ``1``: surrounding whitespace is stripped (``"no        "`` is ``"no"``); every missing marker
  pandas or Arrow uses (``None``, NaN, ``pd.NA``, ``NaT``) is missing, as is a value that is empty
  once stripped; booleans read as ``"True"`` / ``"False"``. Case is kept: ``"Rent"`` and ``"rent"``
  stay two categories, because codes can be case-sensitive and folding case would rename the
  categories the bundled data already uses (the data report names columns whose values differ
  only in case, so a schema or a cleaned file can settle them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

NO_NORMALISATION = 0
STRIP_WHITESPACE = 1
# Written by every preprocessing fitted now.
CURRENT_NORMALISATION = STRIP_WHITESPACE
VERSIONS = (NO_NORMALISATION, STRIP_WHITESPACE)
# Key of a cleaned training frame's ``attrs`` mapping each column to its dtype as read from the
# file (pandas keeps ``attrs`` through selections); the pyfunc signature is typed from it.
READ_AS = "loanrisk_read_as"


def _read_v0(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    return str(value)


def _read_v1(value: Any) -> str | None:
    if value.__class__ is str:
        return value.strip() or None
    if value is None or value is pd.NA or value is pd.NaT or value != value:
        return None
    return str(value).strip() or None


def category_reader(version: int) -> Callable[[Any], str | None]:
    """The function reading one raw value as a category (``None`` when missing) under
    ``version``; ValueError for a version this code does not know (a model saved by newer code)."""
    if version == NO_NORMALISATION:
        return _read_v0
    if version == STRIP_WHITESPACE:
        return _read_v1
    raise ValueError(
        f"category normalisation version {version} is unknown (this code reads {list(VERSIONS)})"
    )


def normalise_categories(values: pd.Series, version: int = CURRENT_NORMALISATION) -> pd.Series:
    """A column's values as categories (object dtype, ``None`` for missing), under ``version``."""
    read = category_reader(version)
    return pd.Series([read(v) for v in values.tolist()], index=values.index, dtype=object)
