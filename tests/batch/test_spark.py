"""Spark scoring gives the rows ``loanrisk score`` gives; MLflow's spark_udf works on the model."""

from __future__ import annotations

import logging
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.conftest import TrainedStore

pytestmark = [pytest.mark.spark, pytest.mark.slow]

MODEL_URI = "models:/loan-default@champion"


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    """One local[2] session for the suite (starting the JVM takes seconds)."""
    if shutil.which("java") is None:
        pytest.fail("Spark needs Java 17: install openjdk-17-jre-headless")
    from pyspark.sql import SparkSession

    # Python workers run this environment's Python (the spark.pyspark.python setting was not
    # honoured by pyspark 4.3's local mode; the variable is).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (
        SparkSession.builder.master("local[2]")
        .appName("loanrisk-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "500")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    # py4j logs its connections closing at INFO from __del__, after pytest has closed the
    # streams: "--- Logging error ---" tracebacks at the end of every run.
    logging.getLogger("py4j").setLevel(logging.WARNING)
    yield session
    session.stop()


@pytest.fixture(scope="session")
def loan_book(credit_frame: pd.DataFrame) -> pd.DataFrame:
    """A few thousand credit_data applicants with ids, a column the model ignores and bad rows."""
    frame = pd.concat([credit_frame] * 1, ignore_index=True).head(3000).astype({"Income": object})
    frame.insert(0, "loan_id", [f"L{i:05d}" for i in range(len(frame))])
    frame["branch"] = "south"
    frame.loc[[5, 1234], "Income"] = ["-3", "plenty"]
    return frame


def test_spark_rows_equal_file_scoring(
    use_trained_store: TrainedStore, spark, loan_book: pd.DataFrame, tmp_path: Path
) -> None:
    from batch.files import score_file
    from batch.service_path import ServicePath, resolve_model
    from batch.spark import score_spark

    source = tmp_path / "book.csv"
    loan_book.to_csv(source, index=False)
    model = resolve_model(MODEL_URI, tmp_path)
    summary = score_file(
        source,
        tmp_path / "scored.parquet",
        ServicePath(model.directory),
        model.name,
        model.version,
        id_columns=["loan_id"],
    )
    assert summary.rejected == 2
    expected = pq.read_table(summary.output).to_pandas().drop(columns="row").set_index("loan_id")
    expected_rejects = pd.read_csv(summary.rejects).set_index("loan_id")

    df = spark.read.option("header", True).csv(str(source)).repartition(3)
    got = score_spark(df, MODEL_URI, id_columns=["loan_id"]).toPandas().set_index("loan_id")
    refused = got[got["error"].notna()]
    assert sorted(refused.index) == sorted(expected_rejects.index)
    assert refused["error"].to_dict() == expected_rejects["error"].to_dict()
    scored = got[got["error"].isna()].drop(columns=["error", "details"]).loc[expected.index]
    pd.testing.assert_series_equal(
        scored["probability_of_default"], expected["probability_of_default"], atol=1e-7, rtol=0
    )
    for column in ("risk_band", "decision", "model_name", "model_version"):
        assert scored[column].tolist() == expected[column].tolist()
    assert (scored["score"] - expected["score"]).abs().max() <= 0.011

    from batch.files import ScoringInputError

    with pytest.raises(ScoringInputError, match=r"lacks 1 of the .* 'Income' \(optional"):
        score_spark(df.drop("Income"), MODEL_URI, id_columns=["loan_id"])


def test_executors_do_not_import_tensorflow(
    use_trained_store: TrainedStore, spark, loan_book
) -> None:
    from batch.spark import score_spark

    df = spark.createDataFrame(loan_book.head(50).astype({"Income": str}))
    scored = score_spark(df, MODEL_URI, reasons=0)

    def modules(batches):
        import sys

        import pyarrow as pa

        for batch in batches:
            yield pa.RecordBatch.from_pydict(
                {"rows": [batch.num_rows], "tensorflow": ["tensorflow" in sys.modules]}
            )

    seen = scored.mapInArrow(modules, "rows long, tensorflow boolean").collect()
    assert sum(row["rows"] for row in seen) == 50
    assert not any(row["tensorflow"] for row in seen)


def test_mlflow_spark_udf_scores_the_registered_model(
    use_trained_store: TrainedStore, spark, credit_frame: pd.DataFrame
) -> None:
    import mlflow
    from pyspark.sql import functions as F

    from models.mlflow_flavor import use_tracking

    use_tracking()
    rows = credit_frame.drop(columns=["Status"]).dropna().head(200)
    predict = mlflow.pyfunc.spark_udf(spark, MODEL_URI, env_manager="local")
    df = spark.createDataFrame(rows)
    got = df.withColumn("p", predict(F.struct(*rows.columns))).select("p").toPandas()["p"]
    reference = mlflow.pyfunc.load_model(MODEL_URI).predict(rows)["probability_of_default"]
    assert got.to_numpy() == pytest.approx(reference.to_numpy(), abs=1e-6)


def test_an_executor_with_another_models_package_refuses_to_score(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import types

    from batch.spark import require_own_packages

    require_own_packages()  # this project's own: nothing to say
    theirs = types.ModuleType("models")
    theirs.__file__ = str(tmp_path / "django_app" / "models" / "__init__.py")
    monkeypatch.setitem(sys.modules, "models", theirs)
    with pytest.raises(RuntimeError, match=r"`models` package is .*django_app.*not loanrisk's"):
        require_own_packages()
