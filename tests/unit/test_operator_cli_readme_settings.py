"""operator/README.md's settings table names every variable ``hello-operator --help`` lists."""

from __future__ import annotations

import pathlib
import re

from hello_core.cli import settings_rows
from hello_operator.settings import OperatorSettings

README = pathlib.Path(__file__).resolve().parents[2] / "operator" / "README.md"


def documented() -> set[str]:
    """Variables in the first column of the table under "## Running it".

    A row may continue its first name: "`__FORMAT`" after
    "`HELLO_OPERATOR_LOG__LEVEL`" is HELLO_OPERATOR_LOG__FORMAT, "`_PORT`"
    after "`HELLO_OPERATOR_METRICS_HOST`" is HELLO_OPERATOR_METRICS_PORT.
    """
    section = README.read_text().split("## Running it", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if not line.startswith("| `HELLO_OPERATOR_"):
            continue
        cell = line.split("|")[1]
        first, *rest = re.findall(r"`([A-Z_]+)`", cell)
        names.add(first)
        for short in rest:
            if short.startswith("__"):
                names.add(first.rsplit("__", 1)[0] + short)
            else:
                names.add(first.rsplit("_", 1)[0] + short)
    return names


def test_every_setting_is_in_the_operator_readme_table() -> None:
    listed = {variable for variable, _, _ in settings_rows(OperatorSettings)}
    assert sorted(listed - documented()) == []


def test_the_operator_readme_table_names_no_variable_that_does_not_exist() -> None:
    listed = {variable for variable, _, _ in settings_rows(OperatorSettings)}
    assert sorted(documented() - listed) == []
