"""The CRD and the operator's typed spec agree on fields and defaults."""

from __future__ import annotations

import pathlib
import re
from typing import Any

import yaml

from hello_operator import manifests
from hello_operator.scaling import DecisionState, PartitionMemory
from hello_operator.spec import GROUP, KIND, MAX_NAME_LENGTH, PLURAL, VERSION, PipelineSpec

ROOT = pathlib.Path(__file__).resolve().parents[3]
CRD = ROOT / "charts" / "hello-platform" / "crds" / "hellopipelines.yaml"


def crd() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(CRD.read_text())
    return loaded


def version_schema() -> dict[str, Any]:
    (version,) = crd()["spec"]["versions"]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def crd_defaults(properties: dict[str, Any]) -> dict[str, Any]:
    """What the API server fills into a spec that names only the required fields."""
    out: dict[str, Any] = {}
    for name, prop in properties.items():
        if "default" in prop:
            value = prop["default"]
            if prop.get("type") == "object" and "properties" in prop:
                value = {**crd_defaults(prop["properties"]), **value}
            out[name] = value
    return out


def test_crd_names_match_the_operator_constants() -> None:
    spec = crd()["spec"]
    assert crd()["metadata"]["name"] == f"{PLURAL}.{GROUP}"
    assert spec["group"] == GROUP
    assert spec["names"]["kind"] == KIND
    assert [v["name"] for v in spec["versions"]] == [VERSION]


def test_every_spec_field_of_the_model_is_in_the_crd_and_back() -> None:
    crd_fields = set(version_schema()["properties"]["spec"]["properties"])
    model_fields = {f.validation_alias for f in PipelineSpec.model_fields.values()}
    assert crd_fields == model_fields


def test_crd_defaults_equal_model_defaults() -> None:
    spec_props = version_schema()["properties"]["spec"]["properties"]
    server_filled = {"topic": "t", "consumerGroup": "g", **crd_defaults(spec_props)}
    from_crd = PipelineSpec.model_validate(server_filled)
    from_model = PipelineSpec(topic="t", consumer_group="g")
    assert from_crd == from_model


def test_name_limit_rule_uses_the_same_limit_as_the_operator() -> None:
    rules = [r["rule"] for r in version_schema()["x-kubernetes-validations"]]
    assert f"self.metadata.name.size() <= {MAX_NAME_LENGTH}" in rules


def test_scale_subresource_points_at_replicas_and_selector() -> None:
    (version,) = crd()["spec"]["versions"]
    assert version["subresources"]["scale"] == {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns == ["Topic", "Lag", "Replicas", "Ready", "Age"]


def consumer_schema() -> dict[str, Any]:
    consumer: dict[str, Any] = version_schema()["properties"]["spec"]["properties"]["consumer"]
    return consumer


def test_env_names_the_operator_sets_are_exactly_the_ones_the_crd_refuses() -> None:
    name = consumer_schema()["properties"]["env"]["items"]["properties"]["name"]
    (rule,) = [r["rule"] for r in name["x-kubernetes-validations"]]
    refused = re.findall(r"'([A-Z_]+)'", rule)
    assert rule.startswith("!(self.upperAscii() in [")
    built = manifests.consumer_env(
        manifests.Owner("p", "ns", "uid"),
        PipelineSpec(topic="t", consumer_group="g"),
        bootstrap_servers="k:9092",
    )
    assert refused == [e["name"] for e in built] == list(manifests.OPERATOR_ENV)


def test_env_and_env_from_are_bounded_and_validated_like_a_pod_spec() -> None:
    props = consumer_schema()["properties"]
    env, env_from = props["env"], props["envFrom"]
    assert (env["maxItems"], env_from["maxItems"]) == (64, 16)
    assert (env["x-kubernetes-list-type"], env["x-kubernetes-list-map-keys"]) == ("map", ["name"])
    item = env["items"]
    assert item["required"] == ["name"]
    assert item["properties"]["name"]["pattern"] == "^[-._a-zA-Z][-._a-zA-Z0-9]*$"
    value_from = item["properties"]["valueFrom"]["properties"]
    assert set(value_from) == {"secretKeyRef", "configMapKeyRef"}
    for ref in value_from.values():
        assert ref["required"] == ["name", "key"]
    sources = env_from["items"]["properties"]
    assert set(sources) == {"prefix", "secretRef", "configMapRef"}
    # No server-side default: an unset env stays unset, as the model's () does.
    assert "default" not in env and "default" not in env_from


def test_every_decision_state_key_the_operator_writes_survives_pruning() -> None:
    # The API server drops status fields the schema does not name; a dropped
    # key would lose the persistent-lag grace clock on every operator restart.
    state = DecisionState(
        recommendations=((1_700_000_000.0, 2),),
        partitions={0: PartitionMemory(5, 9, persistent=True, since=1_700_000_000.0, replicas=2)},
    )
    written = state.to_status()
    schema = version_schema()["properties"]["status"]["properties"]["decisionState"]["properties"]
    assert set(written) == set(schema)
    for key in written:
        (item,) = written[key]
        assert set(item) == set(schema[key]["items"]["properties"])


README = ROOT / "operator" / "README.md"


def readme_spec_rows() -> dict[str, list[str]]:
    rows = {}
    for line in README.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if len(cells) == 4 and cells[0].startswith("`") and cells[1] != "what":
            rows[cells[0].strip("`")] = cells
    return rows


def test_the_readme_spec_table_has_every_field_with_its_default_and_bounds() -> None:
    rows = readme_spec_rows()
    spec_props = version_schema()["properties"]["spec"]["properties"]
    fields = dict(spec_props)
    for parent in ("consumer", "manageTopic"):
        fields |= {f"{parent}.{k}": v for k, v in spec_props[parent]["properties"].items()}
    for name, prop in fields.items():
        assert name in rows, name
        _, _, default, meaning = rows[name]
        value = prop.get("default")
        if isinstance(value, bool):
            assert default == f"`{str(value).lower()}`", name
        elif isinstance(value, int | str):
            assert default == f"`{value}`", name
        bounds = [f"≥ {prop['minimum']}"] if "minimum" in prop else []
        bounds += [f"≤ {prop['maximum']}"] if "maximum" in prop else []
        if bounds:
            assert meaning.endswith(f"({', '.join(bounds)})"), name
