"""Static checks of the k6 script and the Kubernetes Jobs (k6 itself is not installed)."""

import pathlib
import re
import shutil
import subprocess

import click
import pytest
import yaml

from hello_loadtest.cli import main

REPO = pathlib.Path(__file__).parents[3]
K8S = REPO / "loadtest" / "k8s"
K6_SCRIPT = REPO / "loadtest" / "k6" / "hello.js"
SCENARIOS = {"constant", "ramp", "burst", "soak", "closed"}


def documents(name):
    return list(yaml.safe_load_all((K8S / name).read_text()))


@pytest.mark.parametrize("name", ["hello-load-job.yaml", "k6-job.yaml", "k6-configmap.yaml"])
def test_every_manifest_parses_as_yaml_with_kind_and_name(name):
    for doc in documents(name):
        assert doc["apiVersion"] and doc["kind"]
        assert doc["metadata"]["name"]


def test_the_python_job_runs_hello_load_from_the_project_image_with_gates():
    (job,) = documents("hello-load-job.yaml")
    assert job["kind"] == "Job"
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["image"].startswith("hello-platform:")
    assert container["command"] == ["hello-load"]
    args = container["args"]
    assert args[0] in SCENARIOS
    assert "--verify" in args
    assert any(a.startswith("--max-p99-ms=") for a in args)
    # Every option the Job passes exists on the CLI command it names.
    command = main.commands[args[0]]
    assert isinstance(command, click.Command)
    known = {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)}
    for arg in args[1:]:
        assert arg.split("=", 1)[0] in known, arg
    assert job["spec"]["backoffLimit"] == 0


def test_the_k6_job_mounts_the_configmap_with_the_script_and_the_proto():
    (job,) = documents("k6-job.yaml")
    spec = job["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert container["image"].startswith("grafana/k6:")
    assert container["args"][-1] == "/scripts/hello.js"
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["SCENARIO"] in SCENARIOS
    assert env["PROTO_DIR"] == "/scripts"
    assert spec["volumes"][0]["configMap"]["name"] == "hello-k6"


def test_the_k6_configmap_carries_the_current_script_and_proto():
    (configmap,) = documents("k6-configmap.yaml")
    assert configmap["metadata"]["name"] == "hello-k6"
    assert configmap["data"]["hello.js"] == K6_SCRIPT.read_text()
    assert configmap["data"]["hello.proto"] == (REPO / "proto" / "hello.proto").read_text()


def test_the_k6_script_offers_the_same_scenarios_as_the_cli():
    source = K6_SCRIPT.read_text()
    block = source[
        source.index("const scenarios = {") : source.index(
            "\n};", source.index("const scenarios = {")
        )
    ]
    k6_names = set(re.findall(r"^  (\w+): \(\) =>", block, re.MULTILINE))
    assert k6_names == SCENARIOS
    assert set(main.commands) >= SCENARIOS
    assert "'127.0.0.1:50051'" in source  # the default target stays on loopback


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_k6_script_is_valid_javascript(tmp_path):
    # k6 scripts are ES modules; .mjs makes node parse them as such.
    copy = tmp_path / "hello.mjs"
    copy.write_text(K6_SCRIPT.read_text())
    result = subprocess.run(["node", "--check", str(copy)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
