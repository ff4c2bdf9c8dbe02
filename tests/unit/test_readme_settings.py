"""The README's configuration table names every variable the services read."""

from __future__ import annotations

import pathlib
import re

import pytest
from pydantic_settings import BaseSettings

from hello_api.settings import ApiSettings
from hello_consumer.settings import ConsumerSettings
from hello_core.cli import settings_rows

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def documented() -> set[str]:
    """Variables named in backticks in the table rows of the Configuration section."""
    section = README.read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            names |= set(re.findall(r"`(HELLO_[A-Z_<>]+)`", line.split("|")[1]))
    # "…__SASL_MECHANISM" continues the HELLO_<SERVICE>_KAFKA__ group of its row.
    for line in section.splitlines():
        for short in re.findall(r"`…(__[A-Z_]+)`", line):
            names.add("HELLO_<SERVICE>_KAFKA" + short)
    return names


@pytest.mark.parametrize("settings_cls", [ApiSettings, ConsumerSettings])
def test_every_setting_is_in_the_readme_table(settings_cls: type[BaseSettings]) -> None:
    table = documented()
    missing = []
    for variable, _default, _description in settings_rows(settings_cls):
        shared = re.sub(r"^HELLO_(API|CONSUMER)_", "HELLO_<SERVICE>_", variable)
        if variable not in table and shared not in table:
            missing.append(variable)
    assert missing == []


def test_the_table_names_no_variable_that_does_not_exist() -> None:
    known: set[str] = set()
    for cls in (ApiSettings, ConsumerSettings):
        for variable, _, _ in settings_rows(cls):
            known |= {variable, re.sub(r"^HELLO_(API|CONSUMER)_", "HELLO_<SERVICE>_", variable)}
    assert documented() - known == set()
