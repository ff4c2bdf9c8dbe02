"""``hello-load bench``: how close our API gets to a bare gRPC server, and how we compare to ghz.

1. Starts the echo server (``hello_loadtest.echo``) on 127.0.0.1 and sweeps
   it with constant-rate runs at rising rates; the same for our API when
   ``--api-target`` names a running one (``hello-dev up``, or
   ``loadtest/run-bench.sh`` which does it all). Each sweep stops at the first
   rate that misses p99 <= 50 ms, 0.1% errors or 95% of the offered rate.
2. With ``--bootstrap-servers``, runs our API at each ``--e2e-rates`` with
   verification and reports the end-to-end (accepted -> processed) p99.
3. Builds ghz from the Go module proxy (pinned, cached outside the repo) and
   runs it and hello-load against the echo server at the same fixed rate and
   at the same concurrency.

Every request loop is bounded: a fixed list of rates, a fixed duration per
step, and each call's deadline. All servers it starts listen on 127.0.0.1.

Known shortcoming: bench cannot start the API and Kafka itself, because
nothing shipped may import the dev tooling (see the import-linter contracts);
``loadtest/run-bench.sh`` starts them with ``hello-dev up`` around it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pathlib
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from hello_core.settings import KafkaSettings
from hello_loadtest import schedule
from hello_loadtest.execute import VerifyOptions, execute
from hello_loadtest.report import Report
from hello_loadtest.sweep import Criteria, Step, highest_held, ratio, relative_difference
from hello_loadtest.units import parse_duration
from hello_loadtest.worker import Target, WorkerPlan

logger = logging.getLogger(__name__)

GHZ_MODULE = "github.com/bojand/ghz/cmd/ghz"
GHZ_VERSION = "v0.120.0"
GHZ_BUILD_TIMEOUT_S = 900
ECHO_START_TIMEOUT_S = 30


def cache_dir() -> pathlib.Path:
    # Same rule as the dev tooling's cache (which shipped code may not import).
    explicit = os.environ.get("HELLO_CACHE_DIR")
    if explicit:
        return pathlib.Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = pathlib.Path(xdg).expanduser() if xdg else pathlib.Path.home() / ".cache"
    return base / "hello-platform"


def ensure_ghz() -> pathlib.Path:
    """The ghz binary, built with ``go install`` into the cache on first use."""
    bindir = cache_dir() / "ghz" / GHZ_VERSION
    binary = bindir / "ghz"
    if binary.exists():
        return binary
    go = shutil.which("go")
    if go is None:
        raise click.ClickException("ghz needs Go to build it; install Go or pass --no-ghz.")
    bindir.mkdir(parents=True, exist_ok=True)
    logger.warning("building ghz version=%s into=%s", GHZ_VERSION, bindir)
    subprocess.run(
        [go, "install", f"{GHZ_MODULE}@{GHZ_VERSION}"],
        env={**os.environ, "GOBIN": str(bindir)},
        check=True,
        timeout=GHZ_BUILD_TIMEOUT_S,
    )
    return binary


@contextlib.contextmanager
def echo_server() -> Iterator[str]:
    """The echo server in its own process (so it does not share our GIL)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "hello_loadtest.echo", "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = proc.stdout.readline().strip()
        if not port.isdigit():
            raise click.ClickException(f"the echo server did not start (exit {proc.poll()})")
        yield f"127.0.0.1:{port}"
    finally:
        if proc.stdout is not None:
            proc.stdout.close()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@dataclass(frozen=True, slots=True)
class BenchSettings:
    step_s: float
    warmup_s: float
    processes: int
    connections: int
    deadline_s: float = 1.0
    prime_s: float = 5.0


def _plan(scenario: schedule.Scenario, settings: BenchSettings) -> WorkerPlan:
    return WorkerPlan(
        scenario=scenario,
        workers=settings.processes,
        connections=settings.connections,
        deadline_s=settings.deadline_s,
        max_in_flight=2000,
    )


def _ms(value: float | None) -> str:
    return "      -" if value is None else f"{value:7.2f}"


def _step(report: Report, rate: float) -> Step:
    return Step(
        rate=rate,
        achieved_per_s=report.rates.achieved_per_s,
        p50_ms=report.latency_ms.p50_ms,
        p99_ms=report.latency_ms.p99_ms,
        error_rate=report.requests.error_rate,
        generator_limited=report.generator.limited,
    )


def sweep(
    address: str, rates: list[float], settings: BenchSettings, criteria: Criteria, console: Console
) -> list[Step]:
    steps = []
    if settings.prime_s > 0 and rates:
        # A cold pipeline (JIT, connections, producer batches) misses its first
        # step; a discarded run at the lowest rate warms it up.
        prime = schedule.constant(min(rates), settings.prime_s)
        execute(_plan(prime, settings), Target(address))
    for rate in sorted(rates):
        scenario = schedule.constant(rate, settings.step_s, warmup_s=settings.warmup_s)
        report = execute(_plan(scenario, settings), Target(address))
        step = _step(report, rate)
        steps.append(step)
        held = criteria.held(step)
        console.print(
            f"  {address} {rate:>6.0f}/s: sent {step.achieved_per_s:>7.1f}/s"
            f"  p50 {_ms(step.p50_ms)} ms  p99 {_ms(step.p99_ms)} ms"
            f"  errors {step.error_rate:.3%}  {'held' if held else 'MISSED'}"
            + ("  (generator-limited)" if step.generator_limited else "")
        )
        if not held:
            break
    return steps


def run_ghz(
    ghz: pathlib.Path, proto: pathlib.Path, address: str, args: list[str]
) -> dict[str, Any]:
    command = [
        str(ghz), "--insecure", "--proto", str(proto), "--call", "hello.HelloApi.SayHello",
        "--data", '{"name":"bench"}', "--connections", "1", "--timeout", "1s",
        "--format", "json", *args, address,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0 or not result.stdout.strip():
        raise click.ClickException(f"ghz failed: {result.stderr.strip()[:500]}")
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def _ghz_figures(data: dict[str, Any]) -> dict[str, float]:
    by_percent = {int(d["percentage"]): d["latency"] / 1e6 for d in data["latencyDistribution"]}
    ok = data.get("statusCodeDistribution", {}).get("OK", 0)
    return {
        "rate": round(data["rps"], 1),
        "p50_ms": round(by_percent[50], 3),
        "p99_ms": round(by_percent[99], 3),
        "ok": ok,
        "count": data["count"],
    }


def compare_with_ghz(
    address: str, proto: pathlib.Path, rate: float, concurrency: int, settings: BenchSettings
) -> list[dict[str, Any]]:
    ghz = ensure_ghz()
    duration = f"{settings.step_s:g}s"
    rows = []
    # The same fixed rate. ghz times each call from its actual send, so our
    # service time is the like-for-like figure; ours from the schedule is shown too.
    theirs = _ghz_figures(
        run_ghz(ghz, proto, address, ["--rps", f"{rate:g}", "-c", "50", "-z", duration])
    )
    ours = execute(
        _plan(schedule.constant(rate, settings.step_s, warmup_s=settings.warmup_s), settings),
        Target(address),
    )
    rows.append(_comparison(f"fixed rate {rate:g}/s", theirs, ours))
    # The same concurrency, as fast as the server answers (closed model on both sides).
    theirs = _ghz_figures(run_ghz(ghz, proto, address, ["-c", str(concurrency), "-z", duration]))
    closed = schedule.ClosedScenario(concurrency, settings.step_s, warmup_s=settings.warmup_s)
    ours = execute(_plan(closed, settings), Target(address))
    rows.append(_comparison(f"closed, {concurrency} in flight", theirs, ours))
    return rows


def _comparison(label: str, theirs: dict[str, float], ours: Report) -> dict[str, Any]:
    mine = {
        "rate": ours.rates.achieved_per_s,
        "p50_ms": ours.service_time_ms.p50_ms,
        "p99_ms": ours.service_time_ms.p99_ms,
    }
    return {
        "mode": label,
        "ghz": theirs,
        "hello_load": {
            **mine,
            "p99_from_schedule_ms": ours.latency_ms.p99_ms,
            "ok": ours.requests.ok,
            "generator_limited": ours.generator.limited,
        },
        "difference": {key: relative_difference(mine[key], theirs[key]) for key in mine},
    }


def end_to_end(
    address: str,
    kafka: KafkaSettings,
    topic: str,
    rates: list[float],
    settings: BenchSettings,
) -> list[dict[str, Any]]:
    rows = []
    for rate in rates:
        scenario = schedule.constant(rate, settings.step_s, warmup_s=settings.warmup_s)
        report = execute(
            _plan(scenario, settings),
            Target(address),
            verify=VerifyOptions(kafka, topic, timeout_s=30),
        )
        v = report.verification
        assert v is not None
        rows.append(
            {
                "rate": rate,
                "achieved_per_s": report.rates.achieved_per_s,
                "api_p99_ms": report.latency_ms.p99_ms,
                "e2e_p50_ms": v.e2e_latency_ms.p50_ms,
                "e2e_p99_ms": v.e2e_latency_ms.p99_ms,
                "lost": v.lost,
                "duplicates": v.duplicates,
                "generator_limited": report.generator.limited,
            }
        )
    return rows


def _floats(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise click.BadParameter(f"{text!r} is not a comma-separated list of rates") from exc


@click.command()
@click.option(
    "--rates",
    default="100,250,500,750,1000,1500,2000,2500,3000",
    show_default=True,
    help="Comma-separated rates of the sweeps (calls/s).",
)
@click.option("--step", "step_text", default="5s", show_default=True, help="Length of each step.")
@click.option("--warmup", "warmup_text", default="1s", show_default=True)
@click.option(
    "--prime",
    "prime_text",
    default="5s",
    show_default=True,
    help="Discarded run at the lowest rate before each sweep.",
)
@click.option("-p", "--processes", default=1, show_default=True, type=click.IntRange(1, 8))
@click.option("-c", "--connections", default=1, show_default=True, type=click.IntRange(1, 16))
@click.option("--max-p99-ms", default=50.0, show_default=True)
@click.option("--api-target", help="Our running API (host:port); without it only echo is swept.")
@click.option("--bootstrap-servers", help="Kafka of that API, for the end-to-end runs.")
@click.option("--output-topic", default="greetings", show_default=True)
@click.option("--e2e-rates", default="1000,2000", show_default=True)
@click.option("--ghz/--no-ghz", "with_ghz", default=True, help="Compare with ghz.")
@click.option("--ghz-rate", default=1000.0, show_default=True)
@click.option("--ghz-concurrency", default=50, show_default=True)
@click.option(
    "--proto",
    type=click.Path(exists=True, dir_okay=False, path_type=pathlib.Path),
    default="proto/hello.proto",
    show_default=True,
    help="For ghz.",
)
@click.option("--json-summary", type=click.Path(dir_okay=False, path_type=pathlib.Path))
def bench(
    rates: str, step_text: str, warmup_text: str, prime_text: str, processes: int, connections: int,
    max_p99_ms: float, api_target: str | None, bootstrap_servers: str | None, output_topic: str,
    e2e_rates: str, with_ghz: bool, ghz_rate: float, ghz_concurrency: int, proto: pathlib.Path,
    json_summary: pathlib.Path | None,
) -> None:  # fmt: skip
    """Sweep the echo server and our API with the same generator; compare with ghz."""
    logging.basicConfig(level=logging.WARNING)
    console = Console()
    settings = BenchSettings(
        parse_duration(step_text),
        parse_duration(warmup_text),
        processes,
        connections,
        prime_s=parse_duration(prime_text),
    )
    criteria = Criteria(max_p99_ms=max_p99_ms)
    summary: dict[str, Any] = {"settings": asdict(settings), "criteria": asdict(criteria)}
    began = time.monotonic()
    with echo_server() as echo:
        console.print(f"[bold]echo server[/] {echo}")
        echo_steps = sweep(echo, _floats(rates), settings, criteria, console)
        summary["echo"] = [asdict(s) for s in echo_steps]
        if with_ghz:
            summary["ghz"] = compare_with_ghz(echo, proto, ghz_rate, ghz_concurrency, settings)
    ours_steps: list[Step] = []
    if api_target:
        console.print(f"[bold]our API[/] {api_target}")
        ours_steps = sweep(api_target, _floats(rates), settings, criteria, console)
        summary["ours"] = [asdict(s) for s in ours_steps]
        if bootstrap_servers:
            kafka = KafkaSettings.model_validate(
                {"bootstrap_servers": bootstrap_servers, "client_id": "hello-load-bench"}
            )
            summary["end_to_end"] = end_to_end(
                api_target, kafka, output_topic, _floats(e2e_rates), settings
            )
    echo_best = highest_held(echo_steps, criteria)
    ours_best = highest_held(ours_steps, criteria) if api_target else None
    summary["highest_held"] = {
        "echo": echo_best,
        "ours": ours_best,
        "ratio_ours_to_echo": ratio(ours_best, echo_best),
    }
    summary["elapsed_s"] = round(time.monotonic() - began, 1)
    _print_summary(summary, console, max_p99_ms)
    if json_summary:
        json_summary.write_text(json.dumps(summary, indent=2) + "\n")


def _print_summary(summary: dict[str, Any], console: Console, max_p99_ms: float) -> None:
    best = summary["highest_held"]
    table = Table(title=f"highest rate holding p99 <= {max_p99_ms:g} ms (one run)")
    for column in ("echo", "ours", "ours / echo"):
        table.add_column(column, justify="right")
    table.add_row(*("-" if v is None else f"{v:g}" for v in (
        best["echo"], best["ours"], best["ratio_ours_to_echo"])))  # fmt: skip
    console.print(table)
    if "end_to_end" in summary:
        e2e = Table(title="end to end (accepted -> processed), our API")
        for column in ("rate", "sent/s", "API p99", "e2e p50", "e2e p99", "lost", "dups"):
            e2e.add_column(column, justify="right")
        for row in summary["end_to_end"]:
            e2e.add_row(
                f"{row['rate']:g}", f"{row['achieved_per_s']:.0f}", _ms(row['api_p99_ms']).strip(),
                _ms(row['e2e_p50_ms']).strip(), _ms(row['e2e_p99_ms']).strip(), str(row["lost"]),
                str(row["duplicates"]),
            )  # fmt: skip
        console.print(e2e)
    if "ghz" in summary:
        ghz = Table(title=f"hello-load vs ghz {GHZ_VERSION} against the echo server")
        for column in ("mode", "tool", "rate/s", "p50 ms", "p99 ms"):
            ghz.add_column(column, justify="right")
        for row in summary["ghz"]:
            for tool in ("ghz", "hello_load"):
                f = row[tool]
                ghz.add_row(row["mode"], tool, f"{f['rate']:.0f}", _ms(f['p50_ms']).strip(),
                            _ms(f['p99_ms']).strip())  # fmt: skip
            d = row["difference"]
            cells = ["-" if d[k] is None else f"{d[k]:+.1%}" for k in ("rate", "p50_ms", "p99_ms")]
            ghz.add_row(row["mode"], "difference", *cells)
        console.print(ghz)


if __name__ == "__main__":
    bench()
