"""Scale benchmark: a whole loan book through synth, file scoring, Spark and training, one table.

One run on one machine, every measurement in its own process (peak resident memory is that
process's own, from ``wait4``):

1. ``loanrisk synth`` writes a SYNTHETIC book of ``--rows`` applicants: rows per second.
2. ``loanrisk train`` on the bundled credit_data registers the default model in a temporary
   MLflow store; ``loanrisk score`` scores credit_data resampled to ``--rows`` rows with it,
   without and with 4 reason codes (rows/s as ``loanrisk score`` reports it, peak memory),
   beside Keras ``Model.predict`` on the same model and rows, and ``loanrisk score --engine
   spark`` on a local Spark (same cores).
3. Training speed: seconds per epoch per million rows for the default network of a book this size
   (``NetworkConfig.for_rows``: one member, as ``loanrisk train`` fits it), beside Keras ``fit``
   with default settings and scikit-learn's ``MLPClassifier`` of the same architecture, on the same
   ``--epoch-rows`` encoded rows.
4. ``loanrisk train --epochs 2`` on the book: peak memory and wall time.

    python -m bench.scale [--rows 1000000] [--big-rows 0] [--epoch-rows 200000]
                          [--no-spark] [--no-train] [--json out.json]

``--big-rows 10000000`` adds a second book for file scoring's memory at that size (and training
on it with ``--train-big``). Absolute times depend on the machine and its load; compare the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
MODEL = "models:/loan-default@champion"
RATE = re.compile(r"\(([\d,]+) rows/s\)")
SCORED = re.compile(r"scored ([\d,]+) of ([\d,]+) rows")
# loanrisk score's exit code when the output was written and some rows were refused.
EXIT_REJECTS = 1


def credit_book(rows: int, path: Path, seed: int = 0) -> Path:
    """The bundled credit_data resampled (with replacement) to ``rows`` rows, with a ``loan_id``:
    a book the model trained on credit_data scores. Rows credit_data has with a missing value in
    a field the service requires are refused as the service would refuse them."""
    import numpy as np
    import pandas as pd

    from training.data import BUNDLED_DATA

    source = pd.read_csv(BUNDLED_DATA)
    picked = np.random.default_rng(seed).integers(0, len(source), rows)
    book = source.iloc[picked].reset_index(drop=True)
    book.insert(0, "loan_id", [f"CR-{i:010d}" for i in range(rows)])
    book.to_parquet(path, index=False)
    return path


@dataclass
class Row:
    """One line of the table: what was measured, the figure, its unit, peak memory, a note."""

    measure: str
    value: float
    unit: str
    peak_mb: float | None = None
    note: str = ""


class Rows(list[Row]):
    """The table's rows; each is logged as it is measured, so a long run shows its progress."""

    def append(self, row: Row) -> None:
        super().append(row)
        peak = "" if row.peak_mb is None else f", peak {row.peak_mb:,.0f} MB"
        log(f"  {row.measure}: {row.value:,.2f} {row.unit}{peak} {row.note}".rstrip())


@dataclass
class Ran:
    """A finished child process: its output, wall seconds and peak resident memory (MB)."""

    stdout: str
    stderr: str
    seconds: float
    peak_mb: float


def log(message: str) -> None:
    print(f"[bench-scale] {message}", file=sys.stderr, flush=True)


# Runs the command as its own child and writes that child's peak resident memory (KB) to a file.
# Measured through this small launcher because Linux keeps a process's peak across exec: a
# command started straight from this benchmark inherited the benchmark's own peak (every figure
# read 2,938 MB, the size of the benchmark after building a 10M-row book), whereas the
# launcher's fork starts from the launcher's ~10 MB.
# A command killed by a signal kills the launcher with it (an out-of-memory kill reads as one);
# the launcher passes SIGINT and SIGTERM on rather than leaving the command running alone.
PEAK_LAUNCHER = """
import os, signal, sys
pid = os.fork()
if pid == 0:
    os.execvpe(sys.argv[2], sys.argv[2:], os.environ)
for sig in (signal.SIGINT, signal.SIGTERM):
    signal.signal(sig, lambda number, frame: os.kill(pid, number))
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as peak:
    peak.write(str(usage.ru_maxrss))
code = os.waitstatus_to_exitcode(status)
if code < 0:
    signal.signal(-code, signal.SIG_DFL)
    os.kill(os.getpid(), -code)
sys.exit(code)
"""


def run(command: list[str], env: dict[str, str], cwd: Path, ok: tuple[int, ...] = (0,)) -> Ran:
    """Run ``command`` to the end; raise CalledProcessError (with its output) if its exit code is
    not in ``ok``. Its peak resident memory is its own (``wait4`` in :data:`PEAK_LAUNCHER`), not
    counting its descendants: a Spark JVM is not counted."""
    started = time.perf_counter()
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.NamedTemporaryFile(suffix=".peak") as peak,
    ):
        process = subprocess.run(
            [sys.executable, "-c", PEAK_LAUNCHER, peak.name, *command],
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=err,
            check=False,
        )
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
        peak_kb = float(Path(peak.name).read_text() or "nan")
    if process.returncode not in ok:
        raise subprocess.CalledProcessError(process.returncode, command, stdout, stderr)
    return Ran(stdout=stdout, stderr=stderr, seconds=seconds, peak_mb=peak_kb / 1024)


def score_command(
    loanrisk: str, book: Path, output: Path, reasons: int, engine: str = "local"
) -> list[str]:
    """``loanrisk score`` of a credit book with the benchmark's model, keyed by ``loan_id``."""
    return [
        *(loanrisk, "score", "--engine", engine, "--input", str(book), "--output", str(output)),
        *("--model", MODEL, "--reasons", str(reasons), "--id-column", "loan_id"),
    ]


def scored_note(text: str) -> str:
    """ "N of M rows scored" from ``loanrisk score``'s summary."""
    found = SCORED.search(text)
    return f"{found.group(1)} of {found.group(2)} rows scored" if found else "summary not found"


def reported_rate(text: str) -> float:
    """The rows/s figure ``loanrisk synth`` / ``loanrisk score`` print."""
    found = RATE.search(text)
    if found is None:
        raise ValueError(f"no rows/s in the output: {text[-600:]!r}")
    return float(found.group(1).replace(",", ""))


# --- measurements run in a child process (python -m bench.scale --child KIND ...) -------------


def _encoded_book(path: Path, rows: int) -> tuple[Any, Any, Any, int]:
    """The first ``rows`` of a synthetic book, checked and encoded as training would encode them:
    (float32 matrix, 0/1 outcomes, the default network recipe for a book of the whole file's
    training split, the rows of that split)."""
    import pyarrow.parquet as pq

    from models.network import NetworkConfig
    from models.preprocessing import Preprocessor
    from training.data import load_dataset

    dataset = load_dataset(path)
    features = dataset.features.iloc[:rows]
    x = Preprocessor.fit(features, dataset.contract).transform(features)
    n_train = int(pq.ParquetFile(path).schema_arrow.metadata.get(b"book_rows", b"0")) * 6 // 10
    return x, dataset.y[:rows], NetworkConfig.for_rows(n_train), n_train


def head_of_book(book: Path, rows: int, path: Path) -> Path:
    """The first ``rows`` rows of ``book`` as their own file with its schema, the whole book's row
    count kept in the file's metadata (``book_rows``: the network recipe depends on it)."""
    import pyarrow.parquet as pq

    table = pq.read_table(book)
    metadata = {**(table.schema.metadata or {}), b"book_rows": str(table.num_rows).encode()}
    pq.write_table(table.slice(0, rows).replace_schema_metadata(metadata), path)
    shutil.copy(
        book.with_name(f"{book.stem}.schema.json"), path.with_name(f"{path.stem}.schema.json")
    )
    return path


def child_epochs(kind: str, path: Path, rows: int) -> dict[str, Any]:
    """Seconds of one training epoch over ``rows`` rows (the fastest of two: the first includes
    tracing), for ``kind``: ``loanrisk`` (fit_member, the default recipe), ``keras-default``
    (the same network, ``compile("adam", "binary_crossentropy")`` and ``fit`` with Keras's
    defaults: batch 32, one step per call), ``mlp-default`` / ``mlp-1024`` (``MLPClassifier`` of
    the same hidden layers, its default batch of 200 / the recipe's batch)."""
    import numpy as np

    x, y, config, config_rows = _encoded_book(path, rows)
    config = type(config)(**{**asdict(config), "epochs": 2, "early_stopping_patience": 0})
    times: list[float] = []
    if kind.startswith("mlp"):
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier

        batch = "auto" if kind == "mlp-default" else config.batch_size
        model = MLPClassifier(
            hidden_layer_sizes=config.hidden_units, batch_size=batch, max_iter=1, random_state=0
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            for _ in range(2):
                started = time.perf_counter()
                model.partial_fit(x, y, classes=[0, 1]) if times else model.fit(x, y)
                times.append(time.perf_counter() - started)
        return {"seconds": min(times), "batch": 200 if batch == "auto" else batch}
    from models.network import build_network, import_keras

    keras: Any = import_keras()
    callback: Any = keras.callbacks.Callback

    class Timer(callback):
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            times.append(time.perf_counter() - self.started)

    if kind == "loanrisk":
        import training.fit
        from training.fit import fit_member, steps_per_execution

        split = int(len(y) * 0.8)
        # Steps per graph call as `loanrisk train` picks them for the whole book's training
        # split, not for these timed rows (a 1M-row book's 600,000 rows take 32 per call; the
        # 160,000 timed here alone would take 1).
        book_steps = steps_per_execution(config_rows, config.batch_size)
        training.fit.steps_per_execution = lambda rows, batch_size: book_steps
        # fit_member's own callbacks report per epoch; the timer joins them through Keras.
        original = keras.Model.fit

        def timed_fit(self: Any, *args: Any, **kwargs: Any) -> Any:
            kwargs["callbacks"] = [*kwargs.get("callbacks", []), Timer()]
            return original(self, *args, **kwargs)

        keras.Model.fit = timed_fit
        fit_member(x, y, x[split:], y[split:], config, seed=0, log_to_mlflow=False)
        keras.Model.fit = original
        return {
            "seconds": min(times),
            "batch": config.batch_size,
            "steps_per_execution": book_steps,
        }
    model = build_network(x.shape[1], config, seed=0, prior=float(np.mean(y)))
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(x, y.astype(np.float32), epochs=2, verbose=0, callbacks=[Timer()])
    return {"seconds": min(times), "batch": 32}


def child_keras_predict(model_dir: Path, path: Path) -> dict[str, Any]:
    """Rows per second of the model's saved Keras network through ``Model.predict`` (default
    settings) on the book's rows, preprocessing included, reading the file excluded."""
    import pandas as pd

    from models.contract import FeatureContract
    from models.network import import_keras
    from models.preprocessing import Preprocessor
    from models.risk_model import CONTRACT_FILE, KERAS_FILE, PREPROCESSING_FILE

    keras = import_keras()
    contract = FeatureContract.load(model_dir / CONTRACT_FILE)
    preprocessor = Preprocessor.load(model_dir / PREPROCESSING_FILE)
    network = keras.models.load_model(model_dir / KERAS_FILE, compile=False)
    frame = pd.read_parquet(path, columns=contract.names)
    started = time.perf_counter()
    network.predict(preprocessor.transform(frame), verbose=0)
    seconds = time.perf_counter() - started
    return {"rows_per_s": len(frame) / seconds}


def child_main(kind: str, arguments: list[str]) -> None:
    if kind == "book":
        credit_book(int(arguments[0]), Path(arguments[1]))
        return
    if kind == "predict":
        result = child_keras_predict(Path(arguments[0]), Path(arguments[1]))
    else:
        result = child_epochs(kind, Path(arguments[0]), int(arguments[1]))
    print(json.dumps(result))


# --- the run ---------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the synthetic book")
    parser.add_argument(
        "--big-rows", type=int, default=0, help="a second, larger book for scoring memory (0: none)"
    )
    parser.add_argument("--train-big", action="store_true", help="also train on the larger book")
    parser.add_argument(
        "--epoch-rows", type=int, default=200_000, help="rows of the per-epoch timings"
    )
    parser.add_argument("--no-spark", action="store_true", help="skip Spark scoring")
    parser.add_argument("--no-train", action="store_true", help="skip loanrisk train on the book")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args.child[0], args.child[1:])
        return

    started = time.perf_counter()
    rows = Rows()
    with tempfile.TemporaryDirectory(prefix="loanrisk-bench-scale-") as tmp:
        work = Path(tmp)
        uri = f"sqlite:///{work / 'mlflow.db'}"
        env = {
            **os.environ,
            "MLFLOW_TRACKING_URI": uri,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONPATH": str(PROJECT),
        }
        loanrisk = str(BIN / "loanrisk")

        books = {args.rows: work / "book.parquet"}
        if args.big_rows:
            books[args.big_rows] = work / "book_big.parquet"
        for n, path in books.items():
            log(f"loanrisk synth --rows {n:,} ...")
            ran = run([loanrisk, "synth", "--rows", str(n), "--output", str(path)], env, work)
            rows.append(
                Row(
                    f"synth {n:,} rows",
                    reported_rate(ran.stdout + ran.stderr),
                    "rows/s",
                    ran.peak_mb,
                )
            )
        book = books[args.rows]

        log("loanrisk train on credit_data (the model file scoring uses) ...")
        run(
            [loanrisk, "train", "--experiment", "bench", "--force-promote"],
            env,
            work,
        )
        import mlflow

        from models.registered import download_registered

        mlflow.set_tracking_uri(uri)
        model_dir = download_registered("loan-default", work / "model", alias="champion")

        # Built in a child: this process stays small while it waits for the measured ones.
        scoring_books = {}
        for n in books:
            scoring_books[n] = work / f"credit_book_{n}.parquet"
            run(
                [
                    sys.executable,
                    "-m",
                    "bench.scale",
                    "--child",
                    "book",
                    str(n),
                    str(scoring_books[n]),
                ],
                env,
                work,
            )
        for n, path in scoring_books.items():
            for reasons in (0, 4):
                log(f"loanrisk score {n:,} rows, {reasons} reason codes ...")
                output = work / f"scored_{n}_{reasons}.parquet"
                ran = run(
                    score_command(loanrisk, path, output, reasons), env, work, (0, EXIT_REJECTS)
                )
                rows.append(
                    Row(
                        f"file scoring {n:,} rows, {reasons} reason codes",
                        reported_rate(ran.stdout + ran.stderr),
                        "rows/s",
                        ran.peak_mb,
                        f"loanrisk score; {scored_note(ran.stdout + ran.stderr)}",
                    )
                )
                output.unlink(missing_ok=True)
        book_for_scoring = scoring_books[args.rows]

        log("Keras Model.predict on the same model and rows ...")
        ran = run(
            [
                sys.executable,
                "-m",
                "bench.scale",
                "--child",
                "predict",
                str(model_dir),
                str(book_for_scoring),
            ],
            env,
            work,
        )
        result = json.loads(ran.stdout.strip().splitlines()[-1])
        rows.append(
            Row(
                f"Keras Model.predict {args.rows:,} rows",
                result["rows_per_s"],
                "rows/s",
                ran.peak_mb,
                "preprocessing + predict(), defaults; file read excluded",
            )
        )

        if not args.no_spark:
            log("loanrisk score --engine spark (local, same cores) ...")
            try:
                spark_output = work / "spark_scored.parquet"
                command = score_command(loanrisk, book_for_scoring, spark_output, 0, "spark")
                ran = run(command, env, work, (0, EXIT_REJECTS))
                rows.append(
                    Row(
                        f"Spark local scoring {args.rows:,} rows, 0 reason codes",
                        reported_rate(ran.stdout + ran.stderr),
                        "rows/s",
                        None,
                        f"loanrisk score --engine spark, session start included; "
                        f"{scored_note(ran.stdout + ran.stderr)}",
                    )
                )
            except (subprocess.CalledProcessError, ValueError) as exc:
                reason = getattr(exc, "stderr", "") or str(exc)
                rows.append(Row("Spark local scoring", float("nan"), "rows/s", None, "failed"))
                log(f"Spark scoring failed: {reason.strip().splitlines()[-1:]} ")

        epoch_rows = min(args.epoch_rows, args.rows)
        head = head_of_book(book, epoch_rows, work / "book_head.parquet")
        for kind, label in (
            ("loanrisk", "training epoch, loanrisk default network"),
            ("keras-default", "training epoch, Keras fit defaults"),
            ("mlp-default", "training epoch, MLPClassifier defaults"),
            ("mlp-1024", "training epoch, MLPClassifier batch 1024"),
        ):
            log(f"{label} on {epoch_rows:,} rows ...")
            ran = run(
                [sys.executable, "-m", "bench.scale", "--child", kind, str(head), str(epoch_rows)],
                env,
                work,
            )
            result = json.loads(ran.stdout.strip().splitlines()[-1])
            note = f"batch {result['batch']}"
            if "steps_per_execution" in result:
                note += f", {result['steps_per_execution']} steps per call"
            rows.append(
                Row(
                    label,
                    result["seconds"] * 1_000_000 / epoch_rows,
                    "s/epoch/1M rows",
                    None,
                    f"{note}; timed on {epoch_rows:,} rows",
                )
            )

        if not args.no_train:
            targets = [(args.rows, book)]
            if args.train_big and args.big_rows:
                targets.append((args.big_rows, books[args.big_rows]))
            for n, path in targets:
                log(f"loanrisk train --epochs 2 on {n:,} rows ...")
                ran = run(
                    [
                        loanrisk,
                        "train",
                        "--data",
                        str(path),
                        "--epochs",
                        "2",
                        "--experiment",
                        "bench-scale",
                    ],
                    env,
                    work,
                )
                rows.append(
                    Row(
                        f"loanrisk train {n:,} rows, 2 epochs",
                        ran.seconds,
                        "s wall",
                        ran.peak_mb,
                        "3-member ensemble, baselines, evaluation, registration",
                    )
                )
        shutil.rmtree(work / "mlartifacts", ignore_errors=True)

    total = time.perf_counter() - started
    print(table(rows, total))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "date": datetime.now(UTC).isoformat(timespec="seconds"),
                    "cpus": os.cpu_count(),
                    "load_average": os.getloadavg(),
                    "seconds": total,
                    "rows": [asdict(r) for r in rows],
                },
                indent=2,
            )
            + "\n"
        )


def table(rows: list[Row], total: float) -> str:
    """The results as a Markdown table, with the date, the machine's load and the run time."""
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    lines = [
        f"bench-scale {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, "
        f"load average {load}, {total:.0f} s",
        "",
        "| measure | value | unit | peak memory | note |",
        "|---|---:|---|---:|---|",
    ]
    for r in rows:
        value = f"{r.value:,.0f}" if r.value >= 100 else f"{r.value:.2f}"
        peak = "" if r.peak_mb is None else f"{r.peak_mb:,.0f} MB"
        lines.append(f"| {r.measure} | {value} | {r.unit} | {peak} | {r.note} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
