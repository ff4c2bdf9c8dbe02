"""Option checking of the CLI: bad options are one clear error and exit 2.

Every case here is refused before any call is made, so nothing is sent
anywhere (the targets are literal addresses with invalid ports anyway).
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from hello_loadtest.cli import _unwritable, main


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["constant", "-r", "20", "-d", "0s"], "--duration"),
        (["constant", "-r", "20", "-d", "0"], "--duration"),
        (["soak", "-r", "20", "-d", "0ms"], "--duration"),
        (["ramp", "--from", "1", "--to", "2", "-d", "0"], "--duration"),
        (["closed", "-n", "1", "-d", "0s"], "--duration"),
        (["burst", "--spike-rate", "10", "--spike", "0s"], "--spike"),
        (["burst", "--spike-rate", "10", "--idle", "0s"], "--idle"),
        (["constant", "-r", "20", "--deadline", "0s"], "--deadline"),
        (["constant", "-r", "inf"], "--rate"),
        (["constant", "-r", "nan"], "--rate"),
        (["ramp", "--from", "nan", "--to", "2"], "--from"),
        (["constant", "-r", "20", "--max-error-rate", "1.5"], "--max-error-rate"),
        (["constant", "-r", "20", "--min-achieved-ratio", "2"], "--min-achieved-ratio"),
        (["constant", "-r", "20", "--max-late-fraction", "1.01"], "--max-late-fraction"),
        (["constant", "-r", "20", "--max-p99-ms", "nan"], "--max-p99-ms"),
        (["constant", "-r", "20", "--max-p99-ms", "inf"], "--max-p99-ms"),
        (["constant", "-r", "1e12"], "--rate"),
        (["ramp", "--from", "1", "--to", "100001"], "--to"),
        (["closed", "-n", "100000000"], "--concurrency"),
        (["constant", "-r", "20", "--name-prefix", " "], "--name-prefix"),
        (["constant", "-r", "20", "--json-report", "/proc/no/such.json"], "--json-report"),
        (["constant", "-r", "20", "--html-report", "/proc/nope.html"], "--html-report"),
    ],
)
def test_bad_values_are_usage_errors_naming_the_option(args, option):
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert option in result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize(
    "option",
    ["--arrivals", "--max-in-flight", "--late-threshold", "--max-late-fraction",
     "--min-achieved-ratio"],
)  # fmt: skip
def test_closed_refuses_the_options_of_a_schedule_it_does_not_have(option):
    assert option in invoke("constant", "--help").output
    assert option not in invoke("closed", "--help").output
    result = invoke("closed", "-n", "2", "-t", "127.0.0.1:1", option, "1")
    assert result.exit_code == 2, result.output
    assert f"No such option '{option}'" in result.output


@pytest.mark.parametrize(
    "target",
    ["127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:http",
     "127.0.0.1:-1", ":50051", "::1:50051", "[::1]", "127.0.0.1:5 0"],
)  # fmt: skip
def test_a_target_must_be_host_and_a_port_in_range(target):
    result = invoke("constant", "-r", "20", "-d", "1s", "-t", target)
    assert result.exit_code == 2, result.output
    assert "--target" in result.output


@pytest.mark.parametrize("target", ["127.0.0.1:1", "[::1]:65535", "localhost:50051"])
def test_valid_targets_are_accepted_unresolved(target):
    from hello_loadtest.cli import HostPort

    assert HostPort().convert(target, None, None) == target


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        ("{}", "is not a hello-load report"),
        ("not json", "is not a hello-load report"),
        (json.dumps({"schema_version": 2}), "schema_version"),
    ],
)
def test_render_refuses_a_file_that_is_not_a_report_in_one_line(tmp_path, content, detail):
    path = tmp_path / "r.json"
    path.write_text(content)
    result = invoke("render", str(path))
    assert result.exit_code == 2
    assert detail in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_a_verification_limit_without_verify_says_it_needs_verify():
    result = invoke("constant", "-r", "20", "--max-lost", "0")
    assert result.exit_code == 2
    assert "--max-lost needs --verify: it is read from the output topic." in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["constant", "-r", "0.0001", "-d", "1s"],
        ["ramp", "--from", "0", "--to", "0.08", "-d", "10s"],  # 0.4 calls on average
        # The warm-up's calls are not measured: 0.2 calls are left.
        ["constant", "-r", "0.2", "-d", "1s", "-w", "10s"],
    ],
)
def test_a_schedule_without_a_single_measured_call_is_refused(args):
    result = invoke(*args, "-t", "127.0.0.1:1")
    assert result.exit_code == 2, result.output
    assert "the measured part of the schedule holds" in result.output


def test_a_report_path_is_checked_without_creating_anything(tmp_path):
    new = tmp_path / "reports" / "daily" / "r.json"
    assert _unwritable(new) is None
    assert list(tmp_path.iterdir()) == []  # the writer makes the folders later
    kept = tmp_path / "old.json"
    kept.write_text("earlier report")
    assert _unwritable(kept) is None
    assert kept.read_text() == "earlier report"
    assert _unwritable(tmp_path) == "it is a folder"
    assert _unwritable(kept / "r.json") == f"{kept} is not a folder"


def test_a_refused_run_leaves_no_report_folder(tmp_path):
    report = tmp_path / "new" / "r.json"
    result = invoke("constant", "-r", "20", "--json-report", str(report), "--max-lost", "0")
    assert result.exit_code == 2
    assert "--max-lost needs --verify" in result.output
    assert not (tmp_path / "new").exists()
