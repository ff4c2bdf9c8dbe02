"""``hello-load``: the command line.

    hello-load constant --rate 200 --duration 30s
    hello-load ramp --from 10 --to 1000 --duration 2m --processes 2
    hello-load burst --base-rate 0 --spike-rate 500 --idle 5s --spike 1s --cycles 3
    hello-load soak --rate 100 --duration 1h --verify
    hello-load closed --concurrency 32 --duration 30s
    hello-load bench
    hello-load schema > loadtest/report.schema.json
    hello-load render report.json --html report.html

Exit codes: 0 passed, 1 a threshold failed, 2 bad options, 3 the run could
not be carried out (a worker failed, Kafka could not be read), 130
interrupted (Ctrl-C / SIGINT). The first Ctrl-C stops new calls, waits up
to the call deadline for those in flight and writes the reports, marked
interrupted; a second one stops at once, without a report.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import pathlib
import sys
import tempfile
from collections.abc import Callable
from typing import Any

import click
from pydantic import ValidationError
from rich.console import Console

from hello_core import logs
from hello_core.settings import load_settings
from hello_loadtest import schedule
from hello_loadtest.execute import VerifyOptions, execute
from hello_loadtest.kafka_reader import VerificationError
from hello_loadtest.names import name_generator
from hello_loadtest.progress import LiveProgress
from hello_loadtest.render import print_summary, write_json, write_plots
from hello_loadtest.report import Report, schema_text
from hello_loadtest.runner import RunError, RunInterrupted
from hello_loadtest.settings import LoadSettings
from hello_loadtest.stats import interval_for
from hello_loadtest.thresholds import (
    EXIT_RUN_FAILED,
    EXIT_USAGE,
    NEEDS_VERIFICATION,
    Thresholds,
    exit_code,
)
from hello_loadtest.units import parse_duration
from hello_loadtest.worker import Target, WorkerPlan

logger = logging.getLogger(__name__)

DEFAULT_TARGET = "127.0.0.1:50051"
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it


class Duration(click.ParamType[float]):
    name = "duration"

    def __init__(self, *, positive: bool = False) -> None:
        self.positive = positive

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, float | int):
            seconds = float(value)
        else:
            try:
                seconds = parse_duration(str(value))
            except ValueError as exc:
                self.fail(str(exc), param, ctx)
        if not math.isfinite(seconds):
            self.fail(f"{value!r} is not a finite duration", param, ctx)
        if self.positive and seconds <= 0:
            self.fail(f"{value!r} must be longer than 0", param, ctx)
        return seconds


class FiniteFloat(click.FloatRange):
    """A FloatRange that also refuses nan and inf, which click lets through."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


class HostPort(click.ParamType[str]):
    """host:port with a port in 1..65535; the host is not resolved here."""

    name = "host:port"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value).strip()
        host, sep, port = text.rpartition(":")
        bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        if (
            not sep
            or not bare
            or (":" in bare and not host.startswith("["))
            or any(c.isspace() or c in "/[]" for c in bare)
        ):
            self.fail(f"{value!r} is not host:port (e.g. 127.0.0.1:50051)", param, ctx)
        if not port.isascii() or not port.isdigit() or not 1 <= int(port) <= 65535:
            self.fail(f"{value!r} has no port in 1..65535", param, ctx)
        return text


DURATION = Duration()
RUN_LENGTH = Duration(positive=True)
# Far above what one machine's client processes can send; a typo such as
# 1e12 would otherwise build a schedule that never finishes.
MAX_RATE = 100_000.0
MAX_CONCURRENCY = 10_000
POSITIVE = FiniteFloat(min=0, min_open=True, max=MAX_RATE)
RATE = FiniteFloat(min=0, max=MAX_RATE)
FRACTION = FiniteFloat(min=0, max=1)

_THRESHOLD_OPTIONS = [
    ("--max-p50-ms", "Fail if p50 latency (ms) exceeds this."),
    ("--max-p99-ms", "Fail if p99 latency (ms) exceeds this."),
    ("--max-p999-ms", "Fail if p99.9 latency (ms) exceeds this."),
    ("--max-error-rate", "Fail if failed / completed calls exceeds this (0..1)."),
    ("--max-late-fraction", "Fail if the share of calls started late exceeds this (0..1)."),
    ("--min-achieved-ratio", "Fail if the achieved / target rate is below this (0..1)."),
    ("--max-lost", "Fail if more greetings than this are missing (needs --verify)."),
    ("--max-duplicates", "Fail if more duplicate greetings than this are read (needs --verify)."),
    ("--max-e2e-p99-ms", "Fail if the end-to-end p99 (ms) exceeds this (needs --verify)."),
]

_FRACTIONS = frozenset({"--max-error-rate", "--max-late-fraction", "--min-achieved-ratio"})


DEFAULT_LATE_THRESHOLD_S = 0.005  # --late-threshold, and what a closed run uses

# Options about a schedule of arrivals: a closed run has none, so `closed` does not offer them.
OPEN_MODEL_ONLY = frozenset(
    {"--arrivals", "--max-in-flight", "--late-threshold", "--max-late-fraction",
     "--min-achieved-ratio"}
)  # fmt: skip


def run_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Options every open-model scenario shares."""
    return _with_run_options(func, open_model=True)


def closed_run_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The shared options that mean something without a schedule of arrivals."""
    return _with_run_options(func, open_model=False)


def _with_run_options(func: Callable[..., Any], *, open_model: bool) -> Callable[..., Any]:
    options = [
        click.option(
            "-t", "--target", type=HostPort(), default=DEFAULT_TARGET, show_default=True,
            help="host:port of the API.",
        ),
        click.option("--tls/--plaintext", default=False, help="Use TLS (default: plaintext)."),
        click.option("--ca-file", type=click.Path(exists=True, dir_okay=False), help="PEM CA."),
        click.option("--server-name", help="TLS server name, when it differs from the host."),
        click.option(
            "--token",
            help="Bearer token for every call; or HELLO_LOAD_TOKEN (preferred: not in ps).",
        ),
        click.option(
            "-w", "--warmup", type=DURATION, default="0s", show_default=True,
            help="Run this long before measuring (at the first rate, for a schedule); "
            "warm-up calls are not counted.",
        ),
        click.option(
            "--deadline", type=RUN_LENGTH, default="1s", show_default=True,
            help="Deadline per call.",
        ),
        click.option(
            "--max-in-flight", type=click.IntRange(min=1), default=1000, show_default=True,
            help="Calls in flight at once, per process; later calls wait (and count as late).",
        ),
        click.option(
            "-p", "--processes", type=click.IntRange(1, 64), default=1, show_default=True,
            help="Worker processes sharing the run.",
        ),
        click.option(
            "-c", "--connections", type=click.IntRange(1, 64), default=1, show_default=True,
            help="gRPC connections per process.",
        ),
        click.option(
            "--arrivals", type=click.Choice(["uniform", "poisson"]), default="uniform",
            show_default=True, help="Evenly spaced starts, or Poisson-distributed ones.",
        ),
        click.option(
            "--seed", type=int, default=0, show_default=True,
            help="For poisson arrivals and random names.",
        ),
        click.option(
            "--names", type=click.Choice(["fixed", "sequence", "random"]), default="sequence",
            show_default=True, help="Name generator: the prefix, prefix-<n>, or random letters.",
        ),
        click.option("--name-prefix", default="load", show_default=True),
        click.option(
            "--late-threshold", type=DURATION,
            default=f"{DEFAULT_LATE_THRESHOLD_S * 1000:g}ms", show_default=True,
            help="A call starting later than this after its scheduled time counts as late.",
        ),
        click.option(
            "--verify/--no-verify", default=False,
            help="Read the output topic afterwards: lost, duplicated, end-to-end latency.",
        ),
        click.option(
            "--bootstrap-servers",
            help="Kafka for --verify [default: HELLO_LOAD_KAFKA__BOOTSTRAP_SERVERS or "
            "127.0.0.1:9092].",
        ),
        click.option("--output-topic", default="greetings", show_default=True),
        click.option(
            "--verify-timeout", type=RUN_LENGTH, default="30s", show_default=True,
            help="How long to wait for the last greeting.",
        ),
        click.option("--json-report", type=click.Path(dir_okay=False, path_type=pathlib.Path)),
        click.option("--html-report", type=click.Path(dir_okay=False, path_type=pathlib.Path)),
        click.option("--png", type=click.Path(dir_okay=False, path_type=pathlib.Path)),
        click.option(
            "--progress/--no-progress", default=None,
            help="Live progress bar [default: when stderr is a terminal].",
        ),
        click.option(
            "--log-level", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]),
            default="WARNING", show_default=True,
        ),
    ]  # fmt: skip
    for name, help_text in _THRESHOLD_OPTIONS:
        kind = FRACTION if name in _FRACTIONS else FiniteFloat(min=0)
        options.append(click.option(name, type=kind, help=help_text))
    for option in reversed(options):
        if open_model or not OPEN_MODEL_ONLY & set(_option_names(option)):
            func = option(func)

    @functools.wraps(func)
    def wrapper(**kwargs: Any) -> Any:
        return func(**kwargs)

    return wrapper


def _option_names(decorator: Callable[..., Any]) -> list[str]:
    """The flags a click.option decorator declares."""
    probe = decorator(lambda: None)
    return [flag for param in probe.__click_params__ for flag in param.opts]  # type: ignore[attr-defined]


def _check_before_the_run(scenario: schedule.Scenario, opts: dict[str, Any]) -> None:
    """Refuse, before any call, what would only fail during or after the run.

    Nothing is created here: report folders are made when the reports are written.
    """
    if isinstance(scenario, schedule.OpenScenario):
        measured = scenario.expected_calls - schedule.cumulative(scenario.phases, scenario.warmup_s)
        if measured < 0.5:
            raise click.UsageError(
                f"the measured part of the schedule holds {measured:g} calls on average: "
                "raise the rate or the duration."
            )
    try:
        name_generator(opts["names"], prefix=opts["name_prefix"], seed=opts["seed"])
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--name-prefix") from exc
    for option in ("--json-report", "--html-report", "--png"):
        path: pathlib.Path | None = opts[option[2:].replace("-", "_")]
        if path is not None:
            problem = _unwritable(path)
            if problem:
                raise click.BadParameter(f"cannot write {path}: {problem}", param_hint=option)


def _unwritable(path: pathlib.Path) -> str | None:
    """Why a report could not be written at ``path`` (None if it could), leaving nothing.

    The JSON report is written aside and renamed, the others in place: both
    need the folder writable, and an existing file writable.
    """
    folder = path.parent
    while not folder.exists():  # the writer makes the missing folders
        if folder == folder.parent:
            return "no existing folder above it"
        folder = folder.parent
    if not folder.is_dir():
        return f"{folder} is not a folder"
    try:  # os.access says yes to root even where writes fail (e.g. /proc)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        return f"{folder} is not writable ({exc.strerror or exc})"
    if path.is_dir():
        return "it is a folder"
    if path.exists() and not os.access(path, os.W_OK):
        return "the file is not writable"
    return None


def _run(
    scenario: schedule.Scenario, opts: dict[str, Any], *, max_calls: int | None = None
) -> None:
    thresholds = Thresholds(
        **{
            name[2:].replace("-", "_"): opts.get(name[2:].replace("-", "_"))
            for name, _ in _THRESHOLD_OPTIONS
        }
    )
    needing = sorted(NEEDS_VERIFICATION & thresholds.set().keys())
    if needing and not opts["verify"]:
        names = ", ".join("--" + n.replace("_", "-") for n in needing)
        raise click.UsageError(
            f"{names} needs --verify: it is read from the output topic."
            if len(needing) == 1
            else f"{names} need --verify: they are read from the output topic."
        )
    _check_before_the_run(scenario, opts)
    logs.configure(opts["log_level"])
    settings = load_settings(LoadSettings)
    token = opts["token"] or (settings.token.get_secret_value() if settings.token else None)
    target = Target(
        address=opts["target"],
        tls=opts["tls"] or bool(opts["ca_file"]),
        ca_file=opts["ca_file"],
        server_name=opts["server_name"],
        token=token,
    )
    if token and not target.tls:
        logger.warning("sending a bearer token over plaintext target=%s", target.address)
    verify = None
    if opts["verify"]:
        kafka = settings.kafka
        if opts["bootstrap_servers"]:
            kafka = kafka.model_copy(update={"bootstrap_servers": opts["bootstrap_servers"]})
        verify = VerifyOptions(kafka, opts["output_topic"], opts["verify_timeout"])
    plan = WorkerPlan(
        scenario=scenario,
        workers=opts["processes"],
        arrivals=opts.get("arrivals", "uniform"),
        seed=opts["seed"],
        names=opts["names"],
        name_prefix=opts["name_prefix"],
        deadline_s=opts["deadline"],
        # A closed run keeps exactly --concurrency calls in flight, shared by the processes.
        max_in_flight=opts.get(
            "max_in_flight",
            math.ceil(getattr(scenario, "concurrency", 1) / opts["processes"]),
        ),
        connections=opts["connections"],
        late_threshold_s=opts.get("late_threshold", DEFAULT_LATE_THRESHOLD_S),
        interval_s=_interval(scenario),
        max_calls=max_calls,
    )
    console = Console(stderr=True)
    show_progress = console.is_terminal if opts["progress"] is None else opts["progress"]

    def on_stop(wait_s: float) -> None:
        verifying = "; then reading the output topic" if verify else ""
        click.echo(
            f"hello-load: interrupted; waiting up to {wait_s:g}s for calls in flight{verifying}, "
            "then writing the reports (Ctrl-C again to quit without them)",
            err=True,
        )

    try:
        if show_progress:
            label = f"{scenario.kind} → {target.address}"
            total = scenario.warmup_s + scenario.duration_s
            with LiveProgress(console, total_s=total, label=label) as live:
                report = execute(
                    plan, target, verify=verify, thresholds=thresholds,
                    on_start=live.on_start, on_tick=live.on_tick, on_stop=on_stop,
                )  # fmt: skip
        else:
            report = execute(plan, target, verify=verify, thresholds=thresholds, on_stop=on_stop)
        _output(report, opts, Console())
    except (RunError, VerificationError) as exc:
        click.echo(f"hello-load: {exc}", err=True)
        sys.exit(EXIT_RUN_FAILED)
    except RunInterrupted as exc:
        click.echo(f"hello-load: {exc}", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except KeyboardInterrupt:
        click.echo("hello-load: interrupted; workers stopped, no report written", err=True)
        sys.exit(EXIT_INTERRUPTED)
    if report.verification_error is not None:
        click.echo(f"hello-load: verification failed: {report.verification_error}", err=True)
        if not report.interrupted:
            sys.exit(EXIT_RUN_FAILED)
    if report.interrupted:
        # Thresholds were evaluated and printed, but a cut-short run passes no gate.
        click.echo(
            f"hello-load: interrupted after {report.measured_s:g}s; reports written", err=True
        )
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(exit_code(report))


def _interval(scenario: schedule.Scenario) -> int:
    return interval_for(scenario.duration_s)


def _output(report: Report, opts: dict[str, Any], console: Console) -> None:
    print_summary(report, console)
    if opts["json_report"]:
        write_json(report, opts["json_report"])
    write_plots(report, html_path=opts["html_report"], png_path=opts["png"])


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="hello-platform", prog_name="hello-load")
def main() -> None:
    """Open-model load tests for the HelloApi gRPC service, with verified delivery."""


@main.command()
@click.option("-r", "--rate", type=POSITIVE, required=True, help="Calls per second.")
@click.option("-d", "--duration", type=RUN_LENGTH, default="10s", show_default=True)
@run_options
def constant(rate: float, duration: float, **opts: Any) -> None:
    """A fixed arrival rate."""
    _run(schedule.constant(rate, duration, warmup_s=opts["warmup"]), opts)


@main.command()
@click.option("--from", "start_rate", type=RATE, required=True, help="Calls/s at the start.")
@click.option("--to", "end_rate", type=RATE, required=True, help="Calls/s at the end.")
@click.option("-d", "--duration", type=RUN_LENGTH, default="60s", show_default=True)
@run_options
def ramp(start_rate: float, end_rate: float, duration: float, **opts: Any) -> None:
    """A rate changing linearly from --from to --to."""
    if start_rate == end_rate == 0:
        raise click.UsageError("--from and --to cannot both be 0.")
    _run(schedule.ramp(start_rate, end_rate, duration, warmup_s=opts["warmup"]), opts)


@main.command()
@click.option("--base-rate", type=RATE, default=0, show_default=True, help="Calls/s when idle.")
@click.option("--spike-rate", type=POSITIVE, required=True, help="Calls/s during a spike.")
@click.option("--idle", "idle_s", type=RUN_LENGTH, default="5s", show_default=True)
@click.option("--spike", "spike_s", type=RUN_LENGTH, default="1s", show_default=True)
@click.option("--cycles", type=click.IntRange(min=1), default=3, show_default=True)
@run_options
def burst(
    base_rate: float, spike_rate: float, idle_s: float, spike_s: float, cycles: int, **opts: Any
) -> None:
    """Idle, spike, idle, ... repeated --cycles times."""
    scenario = schedule.burst(
        base_rate=base_rate,
        spike_rate=spike_rate,
        idle_s=idle_s,
        spike_s=spike_s,
        cycles=cycles,
        warmup_s=opts["warmup"],
    )
    _run(scenario, opts)


@main.command()
@click.option("-r", "--rate", type=POSITIVE, required=True, help="Calls per second.")
@click.option("-d", "--duration", type=RUN_LENGTH, default="1h", show_default=True)
@run_options
def soak(rate: float, duration: float, **opts: Any) -> None:
    """A long constant rate; use --verify to check nothing is lost over time."""
    _run(schedule.soak(rate, duration, warmup_s=opts["warmup"]), opts)


@main.command()
@click.option(
    "-n", "--concurrency", type=click.IntRange(1, MAX_CONCURRENCY), required=True,
    help="Callers, each with one call in flight.",
)  # fmt: skip
@click.option("-d", "--duration", type=RUN_LENGTH, default="10s", show_default=True)
@click.option("--max-calls", type=click.IntRange(min=1), help="Stop after this many calls.")
@closed_run_options
def closed(concurrency: int, duration: float, max_calls: int | None, **opts: Any) -> None:
    """A fixed number of callers, each sending as soon as its last reply came back.

    This is a closed model: latency is service time and a slow server lowers
    the rate instead of building a queue. Use it to find capacity, not to
    judge latency under a given load.
    """
    if concurrency < opts["processes"]:
        raise click.UsageError("--concurrency must be at least --processes.")
    scenario = schedule.ClosedScenario(
        concurrency, duration, warmup_s=opts["warmup"], max_calls=max_calls
    )
    _run(scenario, opts, max_calls=max_calls)


@main.command()
def schema() -> None:
    """Print the JSON Schema of the report."""
    click.echo(schema_text(), nl=False)


@main.command()
@click.argument("report_file", type=click.Path(exists=True, dir_okay=False, path_type=pathlib.Path))
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=pathlib.Path))
@click.option("--png", "png_path", type=click.Path(dir_okay=False, path_type=pathlib.Path))
def render(
    report_file: pathlib.Path, html_path: pathlib.Path | None, png_path: pathlib.Path | None
) -> None:
    """Print the summary of a JSON report and redraw its HTML or PNG."""
    try:
        report = Report.model_validate_json(report_file.read_text())
    except (ValidationError, UnicodeDecodeError) as exc:
        click.echo(
            f"hello-load: {report_file} is not a hello-load report: {_first_error(exc)}", err=True
        )
        sys.exit(EXIT_USAGE)
    print_summary(report, Console())
    write_plots(report, html_path=html_path, png_path=png_path)
    sys.exit(exit_code(report))


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        return f"{where}: {error['msg']}" if where else str(error["msg"])
    return str(exc).splitlines()[0]


def _register_bench() -> None:
    # Imported here so that bench's own imports stay off the scenario commands' path.
    from hello_loadtest.bench import bench

    main.add_command(bench)


_register_bench()
