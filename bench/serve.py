"""Serving benchmark: this service against `mlflow models serve` and a no-op FastAPI ceiling.

One run on one machine: trains a model on credit_data into a temporary MLflow store, registers it,
then starts each server in turn on the same registered version and drives it with the same
single-applicant request and the same load generator (wrk when installed, else an asyncio client),
at each concurrency, for a fixed duration. Prints one table with the ratios, the median time of a
1,000-applicant batch, start-up time until ready, and resident memory.

    python -m bench.serve [--duration 10] [--concurrency 1,16] [--workers 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pandas as pd

from cli.waiting import wait_until_ready

PROJECT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
APPLICANT = {
    "Seniority": 9,
    "Home": "rent",
    "Time": 60,
    "Records": "no",
    "Job": "freelance",
    "Expenses": 73,
    "Income": 129,
    "Assets": 0,
    "Debt": 0,
    "Amount": 800,
    "Price": 846,
}


@dataclass
class LoadResult:
    concurrency: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int


@dataclass
class BatchTimes:
    """Median round trip of a 1,000-applicant batch, by client."""

    median_ms: float  # http.client
    httpx_median_ms: float
    repeats: int


@dataclass
class ServerResult:
    name: str
    ready_s: float
    rss_mb: float
    loads: list[LoadResult] = field(default_factory=list)
    batch_1000: BatchTimes | None = None
    # With --shadow: the service's own counts after the load (loanrisk_shadow_* on /metrics),
    # so that a shadow paused over its budget cannot pass for a cheap one.
    shadow_counts: dict[str, float] | None = None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants (workers)."""
    total = 0
    pids = [pid]
    while pids:
        current = pids.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
            pids.extend(int(c) for c in children)
        except (FileNotFoundError, AttributeError, ProcessLookupError):
            continue
    return total / 1024


def start(
    command: list[str], env: dict[str, str], ready_url: str, log_path: Path
) -> tuple[subprocess.Popen[bytes], float]:
    started = time.perf_counter()
    with log_path.open("wb") as out:
        process = subprocess.Popen(
            command, env={**os.environ, **env}, stdout=out, stderr=out, cwd=PROJECT
        )
    try:
        wait_until_ready(ready_url, process, timeout=180, interval=0.05)
    except RuntimeError:
        raise RuntimeError(f"{command[0]} exited early; see {log_path}") from None
    except TimeoutError:
        process.kill()
        raise TimeoutError(f"{ready_url} not ready; see {log_path}") from None
    return process, time.perf_counter() - started


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


def _duration_ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def run_wrk(url: str, body: dict, concurrency: int, duration: int, workdir: Path) -> LoadResult:
    script = workdir / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(json.dumps(body))}\n"
    )
    threads = min(concurrency, 2)
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{concurrency}",
            f"-d{duration}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _duration_ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _duration_ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = 0
    if match := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors += int(match.group(1))
    if match := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    ):
        errors += sum(int(g) for g in match.groups())
    return LoadResult(concurrency, rps, p50, p99, errors, total)


async def _asyncio_load(url: str, body: dict, concurrency: int, duration: int) -> LoadResult:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + duration

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            try:
                response = await client.post(url, json=body)
                if response.status_code >= 300:
                    errors += 1
            except httpx.HTTPError:
                errors += 1
            latencies.append((time.perf_counter() - began) * 1000)

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=30.0, limits=limits) as client:
        began = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]  # noqa: E731
    return LoadResult(
        concurrency, len(latencies) / elapsed, pick(0.5), pick(0.99), errors, len(latencies)
    )


def drive(url: str, body: dict, concurrency: int, duration: int, workdir: Path) -> LoadResult:
    # A short warm-up so first-request costs (imports, caches, JIT-like paths) are not measured.
    if shutil.which("wrk"):
        run_wrk(url, body, concurrency, 2, workdir)
        return run_wrk(url, body, concurrency, duration, workdir)
    asyncio.run(_asyncio_load(url, body, concurrency, 2))
    return asyncio.run(_asyncio_load(url, body, concurrency, duration))


BATCH_REPEATS = 50


def batch_medians_ms(url: str, applicants: list[dict], repeats: int = BATCH_REPEATS) -> BatchTimes:
    """Median round trip of one batch request, from two clients taking turns on kept-alive
    connections; the body is encoded once, outside the timing.

    The standard library's ``http.client`` is the lean one (it reads the 0.7 MB answer in a few
    large reads, as wrk is lean for the load runs); httpx, the project's client, handles the HTTP
    in pure Python and adds time of its own: both are reported.
    """
    body = json.dumps({"applicants": applicants}).encode()
    headers = {"content-type": "application/json"}
    target = urlsplit(url)
    lean = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=60)

    def post_lean() -> None:
        lean.request("POST", target.path, body=body, headers=headers)
        response = lean.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"batch answered {response.status}")

    times: dict[str, list[float]] = {"http.client": [], "httpx": []}
    with httpx.Client(timeout=60.0) as client:

        def post_httpx() -> None:
            client.post(url, content=body, headers=headers).raise_for_status()

        posts = [("http.client", post_lean), ("httpx", post_httpx)]
        try:
            for _ in range(3):  # warm up: the connections, and the reason-message caches
                for _, post in posts:
                    post()
            for round_ in range(repeats):
                # Each client goes first every other round: the server's work after an answer
                # (counting the batch into the metrics) then falls before either equally often.
                for name, post in posts if round_ % 2 == 0 else posts[::-1]:
                    began = time.perf_counter()
                    post()
                    times[name].append((time.perf_counter() - began) * 1000)
        finally:
            lean.close()
    return BatchTimes(
        statistics.median(times["http.client"]), statistics.median(times["httpx"]), repeats
    )


def sample_applicants(count: int) -> list[dict]:
    frame = pd.read_csv(PROJECT / "data" / "credit_data.csv").drop(
        columns=["Status", "Age", "Marital"]
    )
    rows = frame.sample(count, replace=True, random_state=0)
    return [
        {
            k: (None if pd.isna(v) else (v.item() if hasattr(v, "item") else v))
            for k, v in row.items()
        }
        for row in rows.to_dict(orient="records")
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per load run")
    parser.add_argument("--concurrency", default="1,16", help="comma-separated connection counts")
    parser.add_argument("--workers", type=int, default=1, help="server worker processes, all three")
    parser.add_argument("--epochs", type=int, default=200, help="training epochs (early stopping)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--shadow",
        action="store_true",
        help="register the trained version again as `challenger` and serve it in the shadow "
        "(LOANRISK_SHADOW_ALIAS): the cost of scoring every applicant twice",
    )
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    generator = "wrk" if shutil.which("wrk") else "asyncio client (wrk not installed)"

    with tempfile.TemporaryDirectory(prefix="loanrisk-bench-") as tmp:
        workdir = Path(tmp)
        uri = f"sqlite:///{workdir / 'mlflow.db'}"
        env = {"MLFLOW_TRACKING_URI": uri, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        log(f"training the benchmark model into {uri} ...")
        subprocess.run(
            [
                str(BIN / "loanrisk"),
                "train",
                "--epochs",
                str(args.epochs),
                "--experiment",
                "bench",
                "--force-promote",
            ],
            env={**os.environ, **env},
            cwd=workdir,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        import mlflow

        from models.registered import download_registered
        from models.risk_model import CONTRACT_FILE

        mlflow.set_tracking_uri(uri)
        model_dir = download_registered("loan-default", workdir / "model", alias="champion")
        shadow_env = {}
        if args.shadow:
            from mlflow import MlflowClient

            # A second version of the same artifacts: the challenger costs what the champion
            # costs to score (probability only), which is what the shadow's price is.
            client = MlflowClient(tracking_uri=uri, registry_uri=uri)
            champion = client.get_model_version_by_alias("loan-default", "champion")
            source = client.get_model_version_download_uri("loan-default", champion.version)
            challenger = client.create_model_version("loan-default", source=source)
            client.set_registered_model_alias("loan-default", "challenger", challenger.version)
            shadow_env = {"LOANRISK_SHADOW_ALIAS": "challenger"}
            log(f"version {challenger.version} serves in the shadow as `challenger`")
        contract = model_dir / CONTRACT_FILE

        servers: dict[str, tuple[list[str], dict[str, str], str, str, dict[str, Any]]] = {
            "loanrisk serve": (
                [str(BIN / "loanrisk"), "serve"],
                {
                    "LOANRISK_AUDIT_DB_URL": f"sqlite:///{workdir / 'audit.db'}",
                    "LOANRISK_REQUEST_LOG": "false",
                    "LOANRISK_WORKERS": str(args.workers),
                    "LOANRISK_RELOAD_INTERVAL_S": "0",
                    **shadow_env,
                },
                "/ready",
                "/v1/score",
                APPLICANT,
            ),
            "mlflow models serve": (
                [
                    str(BIN / "mlflow"),
                    "models",
                    "serve",
                    "-m",
                    "models:/loan-default@champion",
                    "--env-manager",
                    "local",
                    "--host",
                    "127.0.0.1",
                    "--workers",
                    str(args.workers),
                ],
                {},
                "/ping",
                "/invocations",
                {"dataframe_records": [APPLICANT]},
            ),
            "no-op FastAPI (ceiling)": (
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "bench.noop_app:create_app",
                    "--factory",
                    "--host",
                    "127.0.0.1",
                    "--workers",
                    str(args.workers),
                    "--log-level",
                    "warning",
                ],
                {"BENCH_CONTRACT": str(contract)},
                "/health",
                "/v1/score",
                APPLICANT,
            ),
        }
        results: list[ServerResult] = []
        for name, (command, extra_env, ready, path, body) in servers.items():
            port = free_port()
            command = [*command, "--port", str(port)]
            run_env = {**env, **extra_env, "LOANRISK_PORT": str(port)}
            log(f"starting {name} on port {port} ...")
            process, ready_s = start(
                command, run_env, f"http://127.0.0.1:{port}{ready}", workdir / f"{port}.log"
            )
            try:
                result = ServerResult(name, ready_s, 0.0)
                for concurrency in levels:
                    log(f"  {name}: concurrency {concurrency} for {args.duration}s ...")
                    result.loads.append(
                        drive(
                            f"http://127.0.0.1:{port}{path}",
                            body,
                            concurrency,
                            args.duration,
                            workdir,
                        )
                    )
                if name == "loanrisk serve":
                    result.batch_1000 = batch_medians_ms(
                        f"http://127.0.0.1:{port}/v1/score/batch", sample_applicants(1000)
                    )
                    if args.shadow:
                        result.shadow_counts = shadow_counts(f"http://127.0.0.1:{port}/metrics")
                result.rss_mb = tree_rss_mb(process.pid)
                results.append(result)
            finally:
                stop(process)

    report(results, levels, generator, args)


def shadow_counts(url: str) -> dict[str, float]:
    """Applicants decided, scored in the shadow, and not scored in it by reason, from /metrics."""
    counts: dict[str, float] = {}
    for line in httpx.get(url, timeout=30).text.splitlines():
        for prefix, key in (
            ("loanrisk_decisions_total{", "decided"),
            ("loanrisk_shadow_scored_total ", "shadow scored"),
            ("loanrisk_shadow_failures_total{", "shadow not scored"),
        ):
            if line.startswith(prefix):
                label = line[line.find('"') + 1 : line.rfind('"')] if "{" in prefix else ""
                name = f"{key} ({label})" if key == "shadow not scored" else key
                counts[name] = counts.get(name, 0.0) + float(line.split()[-1])
    return counts


def report(
    results: list[ServerResult], levels: list[int], generator: str, args: argparse.Namespace
) -> None:
    ours, mlflow_serve, ceiling = results
    print(
        f"\nServing benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
        f"load generator: {generator}, {args.duration}s per run, {args.workers} worker(s) each\n"
    )
    print("| server | concurrency | requests/s | p50 ms | p99 ms | errors |")
    print("|---|---:|---:|---:|---:|---:|")
    for result in results:
        for load in result.loads:
            print(
                f"| {result.name} | {load.concurrency} | {load.requests_per_s:,.0f} | "
                f"{load.p50_ms:.2f} | "
                f"{load.p99_ms:.2f} | {load.errors} |"
            )
    print("\n| concurrency | loanrisk / mlflow models serve | loanrisk / no-op ceiling |")
    print("|---:|---:|---:|")
    for i, concurrency in enumerate(levels):
        a, b, c = (
            ours.loads[i].requests_per_s,
            mlflow_serve.loads[i].requests_per_s,
            ceiling.loads[i].requests_per_s,
        )
        print(f"| {concurrency} | {a / b:.1f}x | {a / c:.2f}x |")
    print("\n| server | ready after (s) | resident memory (MB) |")
    print("|---|---:|---:|")
    for result in results:
        print(f"| {result.name} | {result.ready_s:.1f} | {result.rss_mb:,.0f} |")
    batch = ours.batch_1000
    assert batch is not None
    print(
        f"\n1,000-applicant batch (POST /v1/score/batch, median of {batch.repeats}, kept-alive "
        f"connection): {batch.median_ms:.1f} ms with http.client "
        f"({batch.httpx_median_ms:.1f} ms with httpx, which adds time of its own)"
    )
    if ours.shadow_counts is not None:
        print(
            "\nShadow (from the service's /metrics after the runs): "
            + ", ".join(f"{k} {v:,.0f}" for k, v in ours.shadow_counts.items())
        )
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))


if __name__ == "__main__":
    main()
