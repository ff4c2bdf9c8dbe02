"""docker-compose.yaml, checked statically (no Docker engine runs here)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.deploy_contract import (
    DOCUMENTED_ENV,
    REPO,
    console_scripts,
    unknown_env_names,
)

PREFIXES = {"api": "HELLO_API_", "consumer": "HELLO_CONSUMER_"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yaml").read_text())
    return loaded


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def test_stack_has_kafka_api_and_consumer(compose: dict[str, Any]) -> None:
    assert {"kafka", "api", "consumer"} <= set(compose["services"])
    assert compose["services"]["kafka"]["image"].startswith("apache/kafka:")


@pytest.mark.parametrize("name", ["api", "consumer"])
def test_service_env_names_are_ones_the_settings_accept(compose: dict[str, Any], name: str) -> None:
    env = _env(compose["services"][name])
    prefix = PREFIXES[name]

    assert env, f"{name} sets no environment"
    assert all(key.startswith(prefix) for key in env), env
    assert not unknown_env_names(set(env), prefix)


@pytest.mark.parametrize("name", ["api", "consumer"])
def test_service_sets_every_documented_topic_and_port(compose: dict[str, Any], name: str) -> None:
    env = _env(compose["services"][name])
    required = {
        n
        for n in DOCUMENTED_ENV[PREFIXES[name]]
        if "TOPIC" in n or n.endswith(("HTTP_PORT", "BOOTSTRAP_SERVERS", "GROUP_ID"))
    }

    assert required <= set(env), sorted(required - set(env))


def test_api_listens_on_all_interfaces_inside_its_container(
    compose: dict[str, Any],
) -> None:
    env = _env(compose["services"]["api"])

    assert env["HELLO_API_LISTEN_ADDRESS"] == "0.0.0.0:50051"
    assert env["HELLO_API_KAFKA__BOOTSTRAP_SERVERS"] == "kafka:9092"


def test_consumer_topics_match_what_the_api_publishes(compose: dict[str, Any]) -> None:
    api = _env(compose["services"]["api"])
    consumer = _env(compose["services"]["consumer"])
    topics = compose["services"]["kafka-topics"]["entrypoint"][-1]

    assert consumer["HELLO_CONSUMER_INPUT_TOPIC"] == api["HELLO_API_TOPIC"]
    for topic in (
        api["HELLO_API_TOPIC"],
        consumer["HELLO_CONSUMER_OUTPUT_TOPIC"],
        consumer["HELLO_CONSUMER_DEAD_LETTER_TOPIC"],
    ):
        assert f"{topic}:" in topics, f"{topic} is not created by kafka-topics"


def test_every_published_port_is_bound_to_loopback(compose: dict[str, Any]) -> None:
    published = [
        str(port) for service in compose["services"].values() for port in service.get("ports", [])
    ]

    assert published
    assert all(port.startswith("127.0.0.1:") for port in published), published


@pytest.mark.parametrize("name", ["api", "consumer"])
def test_service_runs_a_console_script_of_the_image_hardened(
    compose: dict[str, Any], name: str
) -> None:
    service = compose["services"][name]

    assert service["command"][0] in console_scripts()
    assert service["build"]["dockerfile"] == "Dockerfile"
    assert (REPO / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
    assert service["read_only"] is True
    assert service["cap_drop"] == ["ALL"]
    assert service["user"].split(":")[0] == "10001"


@pytest.mark.parametrize("name", ["api", "consumer"])
def test_stop_grace_exceeds_the_service_shutdown_grace(compose: dict[str, Any], name: str) -> None:
    service = compose["services"][name]
    grace = float(_env(service)[PREFIXES[name] + "SHUTDOWN_GRACE_SECONDS"])

    assert float(service["stop_grace_period"].rstrip("s")) > grace
