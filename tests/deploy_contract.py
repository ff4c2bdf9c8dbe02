"""The settings contract that deployment files must follow.

Compose, the Helm chart and the Tiltfile set environment variables that the
services read through pydantic-settings. A misspelt name is ignored silently
(the settings use ``extra="ignore"``), so tests compare every name a
deployment file sets against the names the settings classes accept. Where a
service's settings module cannot be imported yet, the documented list below
stands in for it.
"""

from __future__ import annotations

import importlib
import pathlib
import tomllib
import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic_settings import BaseSettings

REPO = pathlib.Path(__file__).resolve().parents[1]
CHART = REPO / "charts" / "hello-platform"

# Standard variables the services honour besides their own prefix.
STANDARD_ENV = frozenset({"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME"})

_COMMON = (
    "KAFKA__BOOTSTRAP_SERVERS",
    "KAFKA__SECURITY_PROTOCOL",
    "KAFKA__SASL_MECHANISM",
    "KAFKA__SASL_USERNAME",
    "KAFKA__SASL_PASSWORD",
    "KAFKA__SSL_CA_LOCATION",
    "LOG__LEVEL",
    "LOG__FORMAT",
    "TELEMETRY__TRACES_EXPORTER",
)

# The names the architecture brief documents, per env prefix.
DOCUMENTED_ENV: dict[str, frozenset[str]] = {
    "HELLO_API_": frozenset(
        "HELLO_API_" + name
        for name in (
            "LISTEN_ADDRESS",
            "TOPIC",
            "HTTP_PORT",
            "SHUTDOWN_GRACE_SECONDS",
            *_COMMON,
        )
    ),
    "HELLO_CONSUMER_": frozenset(
        "HELLO_CONSUMER_" + name
        for name in (
            "INPUT_TOPIC",
            "OUTPUT_TOPIC",
            "DEAD_LETTER_TOPIC",
            "GROUP_ID",
            "AUTO_OFFSET_RESET",
            "HTTP_PORT",
            "SHUTDOWN_GRACE_SECONDS",
            *_COMMON,
        )
    ),
    "HELLO_OPERATOR_": frozenset(
        "HELLO_OPERATOR_" + name for name in _COMMON if not name.startswith("TELEMETRY__")
    ),
}

_SETTINGS_MODULES = {
    "HELLO_API_": "hello_api.settings",
    "HELLO_CONSUMER_": "hello_consumer.settings",
    "HELLO_OPERATOR_": "hello_operator.settings",
}


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The BaseModel inside ``annotation`` (plain, Optional or a union), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _model_of(arg)
            if found is not None:
                return found
    return None


def model_env_names(model: type[BaseModel], prefix: str) -> set[str]:
    """Every env var name that sets a field of ``model``, nested groups joined by ``__``."""
    names: set[str] = set()
    for field_name, field in model.model_fields.items():
        name = prefix + field_name.upper()
        nested = _model_of(field.annotation)
        if nested is not None:
            names |= model_env_names(nested, name + "__")
        else:
            names.add(name)
    return names


def settings_class(prefix: str) -> type[BaseSettings] | None:
    """The service's BaseSettings class with ``env_prefix == prefix``, if importable."""
    try:
        module = importlib.import_module(_SETTINGS_MODULES[prefix])
    except ImportError:
        return None
    for value in vars(module).values():
        if (
            isinstance(value, type)
            and issubclass(value, BaseSettings)
            and value.model_config.get("env_prefix") == prefix
        ):
            return value
    return None


def accepted_env_names(prefix: str) -> frozenset[str]:
    """Names a service accepts: from its settings class, else the documented list."""
    cls = settings_class(prefix)
    if cls is None:
        return DOCUMENTED_ENV[prefix]
    return frozenset(model_env_names(cls, prefix))


def unknown_env_names(names: set[str], prefix: str) -> set[str]:
    """Names under ``prefix`` that the service would silently ignore."""
    ours = {name for name in names if name.startswith(prefix)}
    return ours - accepted_env_names(prefix)


def console_scripts() -> set[str]:
    """Console scripts pyproject.toml declares."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return set(project.get("scripts", {}))
