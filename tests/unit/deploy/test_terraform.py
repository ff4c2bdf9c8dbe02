"""Terraform under terraform/, checked statically.

``terraform validate`` needs ``terraform init``, which downloads providers
and registry modules from registry.terraform.io; that host is not reachable
from here, so these tests read the HCL instead: every variable is described,
typed and (unless boolean or a map) validated, every output is described,
registry modules are pinned with ``~>``, and the example needs no input.
``terraform fmt -check`` runs too when a terraform binary is on PATH.
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess

import pytest

from tests.deploy_contract import REPO

TERRAFORM = REPO / "terraform"
MODULE = TERRAFORM / "modules" / "eks"
EXAMPLE = TERRAFORM / "examples" / "dev"

_BLOCK_START = re.compile(
    r'^(variable|output|module|resource|data)\s+"([^"]+)"(?:\s+"([^"]+)")?\s*\{'
)


def blocks(path: pathlib.Path) -> list[tuple[str, str, str]]:
    """(kind, name, body) of each top-level block; bodies by brace counting.

    Good enough for `terraform fmt`-formatted files whose strings hold no
    unbalanced braces, which a test below keeps true for ours.
    """
    found = []
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        match = _BLOCK_START.match(lines[i])
        if not match:
            i += 1
            continue
        depth = 0
        body: list[str] = []
        for j in range(i, len(lines)):
            depth += lines[j].count("{") - lines[j].count("}")
            body.append(lines[j])
            if depth == 0:
                break
        name = match.group(3) or match.group(2)
        found.append((match.group(1), name, "\n".join(body)))
        i = j + 1
    return found


def _of_kind(directory: pathlib.Path, kind: str) -> list[tuple[str, str]]:
    return [
        (name, body)
        for path in sorted(directory.glob("*.tf"))
        for k, name, body in blocks(path)
        if k == kind
    ]


def test_module_and_example_have_the_standard_files() -> None:
    for directory in (MODULE, EXAMPLE):
        for name in ("main.tf", "variables.tf", "outputs.tf", "versions.tf"):
            assert (directory / name).is_file(), directory / name
    assert (EXAMPLE / "README.md").is_file()


def test_every_module_variable_has_description_type_and_validation() -> None:
    variables = _of_kind(MODULE, "variable")

    assert len(variables) >= 10
    for name, body in variables:
        assert re.search(r"^\s+description\s+=", body, re.MULTILINE), f"{name}: no description"
        type_match = re.search(r"^\s+type\s+=\s+(\S+)", body, re.MULTILINE)
        assert type_match, f"{name}: no type"
        if not type_match.group(1).startswith(("bool", "map(")):
            assert "validation {" in body, f"{name}: no validation block"


def test_every_output_has_a_description() -> None:
    outputs = _of_kind(MODULE, "output") + _of_kind(EXAMPLE, "output")

    assert outputs
    for name, body in outputs:
        assert re.search(r"^\s+description\s+=", body, re.MULTILINE), f"{name}: no description"


def test_registry_modules_are_pinned_to_a_major_with_tilde_arrow() -> None:
    modules = _of_kind(MODULE, "module")

    assert {name for name, _ in modules} == {"vpc", "eks"}
    for name, body in modules:
        assert re.search(r'^\s+version\s+=\s+"~> \d+\.\d+"', body, re.MULTILINE), (
            f"{name} is not pinned"
        )


def test_example_needs_no_input_and_uses_the_local_module() -> None:
    (module,) = _of_kind(EXAMPLE, "module")

    assert not _of_kind(EXAMPLE, "variable")
    assert 'source = "../../modules/eks"' in module[1]
    assert re.search(r'version\s+=\s+"~> 6\.\d+"', (EXAMPLE / "versions.tf").read_text())


def test_versions_set_minimum_terraform_and_provider() -> None:
    text = (MODULE / "versions.tf").read_text()

    assert re.search(r'required_version\s+=\s+">= 1\.\d+"', text)
    assert 'source  = "hashicorp/aws"' in text


def test_example_readme_warns_about_cost_and_says_how_to_destroy() -> None:
    readme = (EXAMPLE / "README.md").read_text().lower()

    assert "terraform init" in readme
    assert "terraform apply" in readme
    assert "terraform destroy" in readme
    assert "cost" in readme


def test_block_scanner_sees_every_variable_declared() -> None:
    # Guards the brace counting above: a miscount would hide variables.
    declared = len(re.findall(r'^variable "', (MODULE / "variables.tf").read_text(), re.MULTILINE))

    assert len(_of_kind(MODULE, "variable")) == declared


@pytest.mark.skipif(shutil.which("terraform") is None, reason="no terraform binary on PATH")
def test_terraform_files_are_formatted() -> None:
    terraform = shutil.which("terraform")
    assert terraform is not None
    env = {**os.environ, "TF_IN_AUTOMATION": "1"}
    result = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-diff", str(TERRAFORM)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )

    assert result.returncode == 0, result.stdout[-3000:]
