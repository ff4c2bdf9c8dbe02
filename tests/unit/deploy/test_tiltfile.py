"""The Tiltfile, read as Starlark (a Python-syntax subset) without running Tilt."""

from __future__ import annotations

import ast
from typing import Any

import pytest
import yaml

from tests.deploy_contract import CHART, REPO


@pytest.fixture(scope="module")
def tree() -> ast.Module:
    return ast.parse((REPO / "Tiltfile").read_text(), filename="Tiltfile")


@pytest.fixture(scope="module")
def constants(tree: ast.Module) -> dict[str, str]:
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for target in node.targets:
                if isinstance(target, ast.Name) and isinstance(node.value.value, str):
                    found[target.id] = node.value.value
    return found


def _calls(tree: ast.Module, name: str) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name
    ]


def _value(node: ast.expr, constants: dict[str, str]) -> Any:
    """A literal, a module constant, or CONSTANT + 'literal'."""
    if isinstance(node, ast.Name):
        return constants[node.id]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _value(node.left, constants) + _value(node.right, constants)
    return ast.literal_eval(node)


def _kwargs(call: ast.Call, constants: dict[str, str]) -> dict[str, Any]:
    return {kw.arg: _value(kw.value, constants) for kw in call.keywords if kw.arg}


def test_image_is_built_from_the_repo_dockerfile_under_the_chart_image_name(
    tree: ast.Module, constants: dict[str, str]
) -> None:
    (build,) = _calls(tree, "docker_build")
    ref, context = (_value(arg, constants) for arg in build.args[:2])
    dockerfile = _kwargs(build, constants)["dockerfile"]
    values = yaml.safe_load((CHART / "values.yaml").read_text())

    assert (REPO / context / dockerfile).is_file()
    assert ref == values["image"]["repository"]


def test_chart_and_values_files_it_renders_exist(
    tree: ast.Module, constants: dict[str, str]
) -> None:
    (helm,) = _calls(tree, "helm")
    chart = _value(helm.args[0], constants)
    kwargs = _kwargs(helm, constants)

    assert (REPO / chart / "Chart.yaml").is_file()
    assert kwargs["values"]
    for path in kwargs["values"]:
        assert (REPO / path).is_file(), path
        assert isinstance(yaml.safe_load((REPO / path).read_text()), dict)


def test_api_port_forward_includes_grpc_50051(tree: ast.Module, constants: dict[str, str]) -> None:
    forwards = {
        _value(call.args[0], constants): _kwargs(call, constants).get("port_forwards", [])
        for call in _calls(tree, "k8s_resource")
    }
    release = constants["RELEASE"]

    assert "50051:50051" in forwards[release + "-api"]


def test_hellopipeline_image_path_points_at_the_consumer_image(
    tree: ast.Module, constants: dict[str, str]
) -> None:
    (kind,) = _calls(tree, "k8s_kind")

    assert _value(kind.args[0], constants) == "HelloPipeline"
    assert _kwargs(kind, constants)["image_json_path"] == "{.spec.consumer.image}"
