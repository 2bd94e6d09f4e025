"""Scoring a Spark DataFrame with a registered model, on the executors, with ``mapInArrow``.

The driver resolves the model once and ships its directory (JSON and ``.npz`` files, ~100 KB) to
every executor with ``SparkContext.addFile``; each executor's Python worker loads it once (cached
by directory) and scores Arrow record batches with the same code as ``loanrisk score``
(:class:`batch.chunks.ChunkScorer`): NumPy only, TensorFlow is never imported on an executor.

Executors need this project's ``batch``, ``models`` and ``service`` packages importable (the
loanrisk wheel installed on the cluster's Python, or shipped with ``spark.submit.pyFiles``); in
local mode they are the driver's own. The names are generic: an executor whose ``models`` or
``service`` is another project's refuses to score, naming both (:func:`require_own_packages`).
(``mlflow.pyfunc.spark_udf`` loads the code shipped inside the model under a private name, so it
needs none of this: ``models/pyfunc_model.py``.)

Measured on the 2-core machine (FACTS.md): the 1M-row file scored with ``mapInPandas`` over the
NumPy model in about 10 s per pass on ``local[2]``; ``mapInArrow`` skips the pandas conversion.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from batch.chunks import RESULT_COLUMNS, ChunkScorer

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from batch.files import Summary
    from models.contract import FeatureContract

# Rows handed to the scorer at a time (Spark's spark.sql.execution.arrow.maxRecordsPerBatch
# decides what arrives; larger batches are cut to this).
SPARK_CHUNK_ROWS = 65_536
ERROR_COLUMN = "error"  # null on scored rows; the service's message on refused ones
DETAILS_COLUMN = "details"

# Per executor Python worker: model directory -> (path, reasons) scorer. Spark reuses its Python
# workers between tasks (spark.python.worker.reuse, on by default), so a model loads once each.
_SCORERS: dict[tuple[str, int | None, str, str, tuple[str, ...]], ChunkScorer] = {}


def _scorer(
    directory: str, reasons: int | None, name: str, version: str, ids: tuple[str, ...]
) -> ChunkScorer:
    key = (directory, reasons, name, version, ids)
    scorer = _SCORERS.get(key)
    if scorer is None:
        from batch.service_path import ServicePath

        require_own_packages()

        scorer = ChunkScorer(
            ServicePath(Path(directory), reasons), name, version, ids, row_numbers=False
        )
        _SCORERS[key] = scorer
    return scorer


def require_own_packages() -> None:
    """Refuse to score when ``models`` or ``service`` on this Python are not this project's.

    The names are common: an executor whose path has another ``models`` (a Django app, another
    project's) would otherwise import it in place of ours and fail obscurely, or, for an older
    loanrisk, score with older code. Raises ``RuntimeError`` naming both places.
    """
    import models
    import service

    home = Path(__file__).resolve().parent.parent
    for module in (models, service):
        found = getattr(module, "__file__", None)
        if found is None or Path(found).resolve().parent.parent != home:
            raise RuntimeError(
                f"this Python's `{module.__name__}` package is {found or module}, not loanrisk's "
                f"(beside {home / 'batch'}): put the loanrisk wheel first on the executors' "
                "path, or rename the other package"
            )


def output_schema(df: DataFrame, id_columns: Sequence[str]) -> Any:
    """The id columns as in ``df``, the columns of ``loanrisk score``, then error and details."""
    from pyspark.sql.types import DoubleType, StringType, StructField, StructType

    spark_types = {pa.float64(): DoubleType(), pa.string(): StringType()}
    fields = [df.schema[name] for name in id_columns]
    fields += [StructField(name, spark_types[kind], True) for name, kind in RESULT_COLUMNS]
    fields += [StructField(ERROR_COLUMN, StringType(), True)]
    fields += [StructField(DETAILS_COLUMN, StringType(), True)]
    return StructType(fields)


def score_spark(
    df: DataFrame,
    model_uri: str = "models:/loan-default@champion",
    reasons: int | None = None,
    id_columns: Sequence[str] = (),
) -> DataFrame:
    """Score every row of ``df`` on the executors.

    Returns one row per input row: ``id_columns``, ``probability_of_default`` (double),
    ``score`` (double), ``risk_band``, ``decision``, ``reason_codes`` (a JSON array, as
    ``POST /v1/score`` answers it), ``model_name``, ``model_version``, and ``error`` and
    ``details``: null for a scored row; for a row the service would refuse, its 422 message and
    details (JSON), the result columns then null. ``df``'s other columns are ignored. Raises
    :class:`batch.service_path.ModelNotFound` on the driver when the model cannot be resolved,
    ``KeyError`` for an id column ``df`` lacks, and :class:`batch.files.ScoringInputError` when
    ``df`` lacks a column for any of the model's inputs (:func:`batch.files.require_inputs`).
    """
    from pyspark import SparkFiles

    from batch.files import require_inputs
    from batch.service_path import resolve_model

    spark = df.sparkSession
    for name in id_columns:
        df.schema[name]  # KeyError on the driver, not on an executor
    source = resolve_model(model_uri, Path(tempfile.mkdtemp(prefix="loanrisk-spark-")))
    # Shipped by name: on a cluster each executor gets its own copy; SparkFiles finds it there.
    # A directory of the same name cannot be added twice to one SparkContext, so the name carries
    # the model version.
    shipped = f"loanrisk-{source.name}-{source.version}-{source.directory.stat().st_mtime_ns}"
    if shipped not in _added(spark):
        copy = source.directory.parent / shipped  # addFile copies a symlink, not its target
        shutil.copytree(source.directory, copy, dirs_exist_ok=True)
        spark.sparkContext.addFile(str(copy), recursive=True)
    ids = tuple(id_columns)
    name, version = source.name, source.version
    inputs = _contract(source.directory)
    require_inputs(inputs, df.columns, "the DataFrame", f"{name} version {version}")
    wanted = [*ids, *inputs.names]

    def score_batches(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        scorer = _scorer(SparkFiles.get(shipped), reasons, name, version, ids)
        for batch in batches:
            for start in range(0, batch.num_rows, SPARK_CHUNK_ROWS):
                yield from _scored_batches(scorer, batch.slice(start, SPARK_CHUNK_ROWS), ids)

    return df.select(*wanted).mapInArrow(score_batches, output_schema(df, ids))


def _scored_batches(
    scorer: ChunkScorer, batch: pa.RecordBatch, ids: tuple[str, ...]
) -> Iterator[pa.RecordBatch]:
    good, bad = scorer.score(batch)
    count = good.num_rows
    nulls = pa.nulls(count, pa.string())
    yield from (
        good.append_column(ERROR_COLUMN, nulls).append_column(DETAILS_COLUMN, nulls).to_batches()
    )
    if bad.num_rows:
        n = bad.num_rows
        columns = [bad.column(name) for name in ids]
        columns += [pa.nulls(n, kind) for _, kind in RESULT_COLUMNS]
        columns += [bad.column(ERROR_COLUMN), bad.column(DETAILS_COLUMN)]
        names = [*ids, *(name for name, _ in RESULT_COLUMNS), ERROR_COLUMN, DETAILS_COLUMN]
        yield from pa.Table.from_arrays(columns, names=names).to_batches()


def _contract(directory: Path) -> FeatureContract:
    from models.contract import FeatureContract
    from models.risk_model import CONTRACT_FILE

    return FeatureContract.load(directory / CONTRACT_FILE)


def _added(spark: SparkSession) -> set[str]:
    """Names of the files already added to this SparkContext."""
    listed = spark.sparkContext._jsc.sc().listFiles()
    return {Path(str(listed.apply(i))).name for i in range(listed.size())}


def score_spark_files(
    input_path: Path,
    output: Path,
    model_uri: str,
    reasons: int | None,
    id_columns: Sequence[str],
    rejects: Path | None,
) -> Summary:
    """``loanrisk score --engine spark``: read a file with Spark, score it, write directories.

    The output and rejects are Spark output directories (part files) at ``output`` and
    ``rejects`` (default ``<output stem>.rejects.csv``), in the format of their suffixes. The
    session is ``SparkSession.builder.getOrCreate()``: ``spark-submit``'s configuration, or
    ``local[*]`` when run directly.
    """
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    from batch.files import Summary, default_rejects_path, file_format

    started = time.perf_counter()
    rejects = rejects or default_rejects_path(output)
    kind = file_format(input_path)
    # Run locally, Python workers run this environment's Python (pyspark 4.3's local mode did not
    # honour the spark.pyspark.python setting; it does this variable).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = SparkSession.builder.appName("loanrisk-score").getOrCreate()
    if kind == "parquet":
        df = spark.read.parquet(str(input_path))
    else:  # every field as text, as loanrisk score reads CSV
        df = spark.read.option("header", True).option("inferSchema", False).csv(str(input_path))
    scored = score_spark(df, model_uri, reasons, id_columns).cache()
    good = scored.where(F.col(ERROR_COLUMN).isNull()).drop(ERROR_COLUMN, DETAILS_COLUMN)
    bad = scored.where(F.col(ERROR_COLUMN).isNotNull()).select(
        *id_columns, ERROR_COLUMN, DETAILS_COLUMN
    )
    _write(good, output)
    _write(bad, rejects)
    counts = scored.groupBy(F.col(ERROR_COLUMN).isNull().alias("ok")).count().collect()
    by = {row["ok"]: row["count"] for row in counts}
    first = good.select("model_name", "model_version").head(1)
    scored.unpersist()
    return Summary(
        rows=sum(by.values()),
        scored=by.get(True, 0),
        rejected=by.get(False, 0),
        seconds=time.perf_counter() - started,
        output=output,
        rejects=rejects,
        model_name=first[0]["model_name"] if first else model_uri,
        model_version=first[0]["model_version"] if first else "",
    )


def _write(df: DataFrame, path: Path) -> None:
    from batch.files import file_format

    writer = df.write.mode("overwrite")
    if file_format(path) == "parquet":
        writer.parquet(str(path))
    else:
        writer.option("header", True).csv(str(path))
