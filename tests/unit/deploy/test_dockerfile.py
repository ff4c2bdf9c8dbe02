"""The Dockerfile and .dockerignore, checked without a Docker engine."""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest

from tests.deploy_contract import REPO, console_scripts
from tests.unit.deploy.dockerfiles import (
    IgnoreRules,
    Instruction,
    context_files,
    copy_sources,
    global_args,
    ignore_rules,
    is_in_context,
    parse_dockerfile,
    substitute,
)

SERVICE_PACKAGES = {"hello_api", "hello_consumer", "hello_core", "hello_proto"}


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return parse_dockerfile((REPO / "Dockerfile").read_text())


@pytest.fixture(scope="module")
def rules() -> IgnoreRules:
    return ignore_rules((REPO / ".dockerignore").read_text())


def test_every_stage_starts_from_python_311_slim(
    instructions: list[Instruction],
) -> None:
    args = global_args(instructions)
    bases = [substitute(ins.args.split()[0], args) for ins in instructions if ins.keyword == "FROM"]

    assert len(bases) >= 2, "expected a multi-stage build"
    assert all(base.startswith("python:3.11-slim") for base in bases), bases


def test_final_stage_runs_as_a_numeric_non_root_user(
    instructions: list[Instruction],
) -> None:
    last_stage = max(ins.stage for ins in instructions)
    stage_args = global_args(instructions)
    for ins in instructions:
        if ins.keyword == "ARG" and ins.stage == last_stage and "=" in ins.args:
            name, _, default = ins.args.partition("=")
            stage_args[name] = default
    users = [ins for ins in instructions if ins.keyword == "USER" and ins.stage == last_stage]

    assert users, "the runtime stage sets no USER, so it would run as root"
    uid = substitute(users[-1].args, stage_args).split(":")[0]
    # Numeric, so runAsNonRoot can verify it; the chart's runAsUser is the same.
    assert uid == "10001"


def test_image_has_no_healthcheck(instructions: list[Instruction]) -> None:
    assert not [ins for ins in instructions if ins.keyword == "HEALTHCHECK"]


def test_default_command_is_a_declared_console_script(
    instructions: list[Instruction],
) -> None:
    cmds = [ins.args for ins in instructions if ins.keyword == "CMD"]

    assert cmds, "no CMD"
    command = cmds[-1].strip('[]" ').split('"')[0]
    assert command in console_scripts()


def test_build_copies_nothing_from_devtools(instructions: list[Instruction]) -> None:
    sources = [src for ins in instructions if ins.keyword == "COPY" for src in copy_sources(ins)]

    assert sources
    assert not [src for src in sources if src.strip("./").startswith("devtools")]


def test_every_copied_path_exists_and_survives_dockerignore(
    instructions: list[Instruction], rules: IgnoreRules
) -> None:
    sources = [src for ins in instructions if ins.keyword == "COPY" for src in copy_sources(ins)]
    for src in sources:
        path = src.rstrip("/")
        assert (REPO / path).exists(), f"COPY {src}: no such path in the repository"
        assert is_in_context(path, rules), f"COPY {src}: .dockerignore drops it from the context"


def test_build_context_leaves_out_dev_tooling_tests_and_secrets(
    rules: IgnoreRules,
) -> None:
    files = context_files(REPO, rules)

    assert "pyproject.toml" in files
    assert any(f.startswith("services/hello_api/") for f in files)
    leaked = {
        f
        for f in files
        if f.startswith(("devtools/", "tests/", "charts/", "terraform/", ".git"))
        or "__pycache__" in f
        or f.endswith((".env", ".tfstate"))
    }
    assert not leaked, sorted(leaked)[:10]


def test_dockerignore_matcher_follows_docker_rules() -> None:
    rules = ignore_rules("*\n!services/\n**/__pycache__\n")

    assert is_in_context("services/a/b.py", rules)
    assert not is_in_context("services/a/__pycache__/b.pyc", rules)
    assert not is_in_context("devtools/hello_dev/kafka.py", rules)


@pytest.mark.slow
def test_wheel_built_from_image_context_has_services_but_not_hello_dev(
    tmp_path: pathlib.Path,
    instructions: list[Instruction],
    rules: IgnoreRules,
) -> None:
    # Rebuild what the image's `pip install` sees: only the COPYed paths, as
    # filtered by .dockerignore, then build the wheel from that copy.
    context = tmp_path / "src"
    in_context = context_files(REPO, rules)
    sources = [
        src.rstrip("/")
        for ins in instructions
        if ins.keyword == "COPY"
        for src in copy_sources(ins)
    ]
    for rel in sorted(in_context):
        if any(rel == src or rel.startswith(src + "/") for src in sources):
            target = context / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, target)

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(context),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]

    (wheel,) = (tmp_path / "dist").glob("*.whl")
    top_level = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert top_level >= SERVICE_PACKAGES
    assert "hello_dev" not in top_level
