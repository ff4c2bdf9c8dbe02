"""Writing a report out: the terminal summary, the JSON file, the PNG plots and the HTML page.

Everything is drawn from the ``Report`` alone (the latency histogram comes
from its ``latency_hdr``), so ``hello-load render report.json`` can redraw
the HTML of an old run.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import math
import pathlib
from string import Template

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]
from matplotlib.ticker import FuncFormatter, ScalarFormatter
from rich.console import Console
from rich.table import Table

from hello_loadtest.report import LatencySummary, Report

logger = logging.getLogger(__name__)


def write_json(report: Report, path: pathlib.Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written aside and renamed, so a Ctrl-C mid-write leaves no half a report.
    partial = path.with_name(path.name + ".partial")
    partial.write_text(report.model_dump_json(indent=2) + "\n")
    partial.replace(path)
    logger.info("wrote JSON report path=%s", path)


def interruption_note(report: Report) -> str | None:
    """One sentence for an interrupted run, None otherwise."""
    if not report.interrupted:
        return None
    measured = "?" if report.measured_s is None else f"{report.measured_s:g}"
    return (
        f"Interrupted by Ctrl-C after {measured} s of the {report.scenario.duration_s:g} s "
        "scheduled: every figure covers the measured part only."
    )


def _latency_row(table: Table, label: str, s: LatencySummary) -> None:
    table.add_row(
        label,
        f"{s.count}",
        *(
            "-" if v is None else f"{v:.2f}"
            for v in (s.p50_ms, s.p90_ms, s.p99_ms, s.p999_ms, s.max_ms)
        ),
    )


def summary_tables(report: Report) -> list[Table]:
    req, rates = report.requests, report.rates
    counts = Table(title=f"hello-load {report.scenario.kind} → {report.config.target}")
    for column in ("scheduled", "sent", "ok", "failed", "not sent", "late", "target/s", "sent/s"):
        counts.add_column(column, justify="right")
    counts.add_row(
        str(req.scheduled),
        str(req.sent),
        str(req.ok),
        str(req.failed),
        str(req.not_sent),
        str(report.late_starts.total),
        "-" if rates.target_per_s is None else f"{rates.target_per_s:.1f}",
        f"{rates.achieved_per_s:.1f}",
    )
    latency = Table(title="latency (ms)")
    for column in ("", "count", "p50", "p90", "p99", "p99.9", "max"):
        latency.add_column(column, justify="right")
    _latency_row(latency, "from schedule", report.latency_ms)
    _latency_row(latency, "service time", report.service_time_ms)
    _latency_row(latency, "start lag", report.start_lag_ms)
    if report.verification:
        _latency_row(latency, "end to end", report.verification.e2e_latency_ms)
    tables = [counts, latency]
    if req.failed_by_code:
        errors = Table(title="failures by status code")
        errors.add_column("code")
        errors.add_column("calls", justify="right")
        for code, n in req.failed_by_code.items():
            errors.add_row(code, str(n))
        tables.append(errors)
    if report.verification:
        v = report.verification
        verify = Table(title=f"delivery to {v.topic}")
        for column in ("expected", "received", "lost", "duplicates", "timed out"):
            verify.add_column(column, justify="right")
        verify.add_row(
            str(v.expected), str(v.received), str(v.lost), str(v.duplicates), str(v.timed_out)
        )
        tables.append(verify)
    if report.thresholds.results:
        gates = Table(title="thresholds")
        for column in ("threshold", "limit", "actual", "result"):
            gates.add_column(column)
        for r in report.thresholds.results:
            actual = "n/a" if r.actual is None else f"{r.actual:g}"
            gates.add_row(r.name, f"{r.limit:g}", actual, "pass" if r.passed else "FAIL")
        tables.append(gates)
    return tables


def print_summary(report: Report, console: Console) -> None:
    for table in summary_tables(report):
        console.print(table)
    if report.generator.limited:
        console.print(f"[bold yellow]generator-limited:[/] {report.generator.reason}")
    note = interruption_note(report)
    if note:
        console.print(f"[bold yellow]{note}[/]")


def _histogram_bins(report: Report) -> tuple[np.ndarray, np.ndarray]:
    """Counts of OK latencies in log-spaced bins (ms), from the report's HDR histogram."""
    hist = HdrHistogram.decode(report.latency_hdr.encode())
    values, counts = [], []
    for item in hist.get_recorded_iterator():
        values.append(item.value_iterated_to / 1000)
        counts.append(item.count_at_value_iterated_to)
    if not values:
        return np.array([]), np.array([])
    low, high = max(min(values), 0.001), max(values)
    edges = np.geomspace(low, high * 1.001 if high > low else low * 2, 60)
    binned, edges = np.histogram(values, bins=edges, weights=counts)
    return binned, edges


# Plain numbers ("3", "0.5") instead of powers of ten on log axes.
_PLAIN = FuncFormatter(lambda value, _: f"{value:g}")


def plot_png(report: Report) -> bytes:
    points = report.timeline.points
    width = report.timeline.interval_s
    # Each interval is drawn as a step over its whole width, closed at its end.
    t = [p.t_s for p in points] + ([points[-1].t_s + width] if points else [])

    def series(values: list[float]) -> list[float]:
        return values + values[-1:]

    def gaps(values: list[float | None]) -> list[float]:
        # An interval without OK calls has no latency: NaN leaves a gap, not a 0 ms line.
        return [math.nan if v is None else v for v in values]

    fig, (ax_lat, ax_rate, ax_hist) = plt.subplots(3, 1, figsize=(10, 11), dpi=100)
    title = f"hello-load {report.scenario.kind} against {report.config.target}"
    fig.suptitle(f"{title}\n{report.started_at}", fontsize=12)

    for values, label, color in (
        (gaps([p.p50_ms for p in points]), "p50", "tab:blue"),
        (gaps([p.p99_ms for p in points]), "p99", "tab:orange"),
        (gaps([p.max_ms for p in points]), "max", "tab:red"),
    ):
        ax_lat.step(t, series(values), where="post", label=label, color=color)
    ax_lat.set_title(f"latency from scheduled start per {width} s (OK calls)")
    ax_lat.set_xlabel("time since measured start (s)")
    ax_lat.set_ylabel("ms")
    positive = [v for p in points for v in (p.p50_ms, p.max_ms) if v is not None and v > 0]
    # A log axis only helps when the values span more than a decade or so.
    if positive and max(positive) / min(positive) > 20:
        ax_lat.set_yscale("log")
        ax_lat.yaxis.set_major_formatter(ScalarFormatter())
        ax_lat.yaxis.set_minor_formatter(_PLAIN)
    ax_lat.grid(True, which="both", alpha=0.3)
    ax_lat.legend(loc="upper left")

    if report.scenario.kind != "closed":
        ax_rate.step(
            t, series([p.target / width for p in points]), where="post", label="target",
            color="black", linestyle="--", zorder=3,
        )  # fmt: skip
    for values, label, color in (
        ([p.sent / width for p in points], "sent", "tab:green"),
        ([p.failed / width for p in points], "failed", "tab:red"),
        ([p.late / width for p in points], "late starts", "tab:purple"),
    ):
        ax_rate.step(t, series(values), where="post", label=label, color=color)
    ax_rate.set_title("calls per second")
    ax_rate.set_xlabel("time since measured start (s)")
    ax_rate.set_ylabel("calls/s")
    ax_rate.set_ylim(bottom=0)
    ax_rate.grid(True, alpha=0.3)
    ax_rate.legend(loc="upper left")

    counts, edges = _histogram_bins(report)
    if len(counts):
        ax_hist.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color="tab:blue")
        ax_hist.set_xscale("log")
        ax_hist.xaxis.set_major_formatter(ScalarFormatter())
        ax_hist.xaxis.set_minor_formatter(_PLAIN)
        lat = report.latency_ms
        for value, label, color in (
            (lat.p50_ms, "p50", "tab:green"),
            (lat.p99_ms, "p99", "tab:orange"),
            (lat.p999_ms, "p99.9", "tab:red"),
        ):
            if value is None:
                continue
            ax_hist.axvline(value, color=color, linestyle="--", label=f"{label} {value:.2f} ms")
        ax_hist.legend(loc="upper right")
    ax_hist.set_title("latency histogram (OK calls)")
    ax_hist.set_xlabel("ms (log scale)")
    ax_hist.set_ylabel("calls")
    ax_hist.grid(True, alpha=0.3)

    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


_PAGE = Template("""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>hello-load report: $title</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem; max-width: 70rem; }
table { border-collapse: collapse; margin: 1rem 0; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.7rem; text-align: right; }
th { background: #f4f4f4; }
caption { font-weight: bold; text-align: left; padding: 0.3rem 0; }
.fail { color: #b00; font-weight: bold; }
.warn { background: #fff4d6; padding: 0.5rem; }
img { max-width: 100%; }
</style>
</head>
<body>
<h1>hello-load report: $title</h1>
<p>Started $started, finished $finished. Schema version $schema_version.</p>
$warning
$tables
<h2>Plots</h2>
<img alt="latency over time, rate over time and latency histogram" src="data:image/png;base64,$png">
</body>
</html>
""")


def _html_table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(str(c.header))}</th>" for c in table.columns)
    rows = []
    for i in range(table.row_count):
        cells = []
        for column in table.columns:
            text = str(list(column.cells)[i])
            css = ' class="fail"' if text == "FAIL" else ""
            cells.append(f"<td{css}>{html.escape(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    caption = html.escape(str(table.title or ""))
    return f"<table><caption>{caption}</caption><tr>{head}</tr>{''.join(rows)}</table>"


def render_html(report: Report, png: bytes) -> str:
    warning = ""
    if report.generator.limited:
        warning = (
            '<p class="warn">The generator, not the server, was the limit: '
            f"{html.escape(report.generator.reason or '')}</p>"
        )
    note = interruption_note(report)
    if note:
        warning += f'<p class="warn">{html.escape(note)}</p>'
    return _PAGE.substitute(
        title=html.escape(f"{report.scenario.kind} against {report.config.target}"),
        started=html.escape(report.started_at),
        finished=html.escape(report.finished_at),
        schema_version=report.schema_version,
        warning=warning,
        tables="\n".join(_html_table(t) for t in summary_tables(report)),
        png=base64.b64encode(png).decode(),
    )


def write_plots(
    report: Report, *, html_path: pathlib.Path | None, png_path: pathlib.Path | None
) -> None:
    if html_path is None and png_path is None:
        return
    png = plot_png(report)
    if png_path is not None:
        png_path.parent.mkdir(parents=True, exist_ok=True)
        png_path.write_bytes(png)
        logger.info("wrote PNG path=%s", png_path)
    if html_path is not None:
        html_path.parent.mkdir(parents=True, exist_ok=True)
        html_path.write_text(render_html(report, png))
        logger.info("wrote HTML report path=%s", html_path)
