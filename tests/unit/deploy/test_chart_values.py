"""values.yaml and values.schema.json, read without helm.

Every value a user may set carries a helm-docs ``# -- `` comment, and the
schema describes exactly the keys values.yaml has, so neither drifts.
Rendering is tested with a real helm in tests/integration/deploy.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from tests.deploy_contract import CHART, REPO

# Maps passed on whole (toYaml into Kubernetes or Kafka): documented once, at the map.
PASSED_THROUGH = {"podSecurityContext", "securityContext", "resources", "affinity", "config"}


@pytest.fixture(scope="module")
def values() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    return loaded


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((CHART / "values.schema.json").read_text())
    return loaded


def _leaves(tree: dict[str, Any], path: str = "") -> list[str]:
    found = []
    for key, value in tree.items():
        here = f"{path}.{key}" if path else key
        if isinstance(value, dict) and value and key not in PASSED_THROUGH:
            found += _leaves(value, here)
        else:
            found.append(here)
    return found


def _documented_keys() -> set[str]:
    """Dotted paths of keys whose comment block above holds a '# -- ' marker."""
    documented: set[str] = set()
    stack: list[tuple[int, str]] = []
    comment_has_marker = False
    for line in (CHART / "values.yaml").read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            # '# -- text' opens a doc comment; '#   more' continues it.
            comment_has_marker = comment_has_marker or stripped.startswith("# -- ")
            continue
        match = re.match(r"^(\s*)([A-Za-z0-9_.]+):", line)
        if not match:
            comment_has_marker = False
            continue
        indent = len(match.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = ".".join([p for _, p in stack] + [match.group(2)])
        if comment_has_marker:
            documented.add(path)
        stack.append((indent, match.group(2)))
        comment_has_marker = False
    return documented


def test_every_user_value_has_a_helm_docs_comment(values: dict[str, Any]) -> None:
    leaves = _leaves(values)
    missing = [leaf for leaf in leaves if leaf not in _documented_keys()]

    assert len(leaves) > 50
    assert not missing, missing


def test_doc_markers_have_a_space_after_the_dashes() -> None:
    malformed = [
        line
        for line in (CHART / "values.yaml").read_text().splitlines()
        if re.match(r"^\s*#\s*--\S", line)
    ]

    assert not malformed


def _schema_for(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref:
        return _schema_for(schema, schema["$defs"][ref.rsplit("/", 1)[-1]])
    return node


def _undescribed(values: Any, node: dict[str, Any], schema: dict[str, Any], path: str) -> list[str]:
    node = _schema_for(schema, node)
    if not isinstance(values, dict) or "properties" not in node:
        return []
    found = []
    for key, value in values.items():
        if key not in node["properties"]:
            found.append(f"{path}{key}")
        else:
            found += _undescribed(value, node["properties"][key], schema, f"{path}{key}.")
    return found


def test_schema_describes_every_key_in_values(
    values: dict[str, Any], schema: dict[str, Any]
) -> None:
    assert not _undescribed(values, schema, schema, "")


def test_schema_closes_our_own_objects(schema: dict[str, Any]) -> None:
    for name in ("api", "consumer", "operator", "pipeline", "kafka", "image", "logging"):
        assert schema["properties"][name]["additionalProperties"] is False, name
    assert schema["additionalProperties"] is False


def test_operator_defaults_are_there_for_the_operator_templates(values: dict[str, Any]) -> None:
    operator = values["operator"]

    assert operator["enabled"] is True
    assert operator["replicaCount"] == 1
    assert operator["metricsPort"] == 9103
    assert set(operator["image"]) == {"repository", "tag", "pullPolicy"}
    assert operator["resources"]["requests"]


def test_chart_runs_as_the_user_the_image_creates(values: dict[str, Any]) -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    uid = re.search(r"ARG HELLO_UID=(\d+)", dockerfile)

    assert uid
    assert values["podSecurityContext"]["runAsUser"] == int(uid.group(1))
