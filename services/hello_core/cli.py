"""Command-line shell shared by the service entry points (``hello-api``, ``hello-consumer``).

The services are configured by environment variables only. Their command
line exists for ``--help``, which lists every variable with its default and
meaning (generated from the settings model, so it cannot drift), and for
``--version``; it takes no other options or arguments.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import click
from pydantic import BaseModel, SecretStr
from pydantic_settings import BaseSettings

from hello_core.errors import ConfigError
from hello_core.settings import env_name


def settings_rows(settings_cls: type[BaseSettings]) -> Iterator[tuple[str, str, str]]:
    """(variable, default, description) for every leaf setting, nested groups flattened."""
    defaults = settings_cls.model_construct()

    def walk(model: BaseModel, loc: tuple[str, ...]) -> Iterator[tuple[str, str, str]]:
        for name, field in type(model).model_fields.items():
            value = getattr(model, name)
            if isinstance(value, BaseModel):
                yield from walk(value, (*loc, name))
                continue
            yield env_name(settings_cls, (*loc, name)), _show(value), field.description or ""

    yield from walk(defaults, ())


def _show(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, SecretStr):
        return "(secret)"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return "{}" if not value else str(value)
    return str(value)


def settings_help(settings_cls: type[BaseSettings]) -> str:
    """The settings as a help epilog; ``\\b`` keeps click from rewrapping it."""
    lines = ["Environment variables (default in parentheses):", ""]
    for variable, default, description in settings_rows(settings_cls):
        lines += ["\b", f"{variable} ({default})"]
        lines += textwrap.wrap(description, 72, initial_indent="    ", subsequent_indent="    ")
        lines.append("")
    lines.append("See the Configuration section of README.md for more.")
    return "\n".join(lines)


def fail(prog_name: str, error: ConfigError) -> NoReturn:
    """Print ``error`` as one line and exit 2, the status for bad configuration."""
    print(f"{prog_name}: {error}", file=sys.stderr)
    raise SystemExit(2)


def service_command(
    *,
    prog_name: str,
    summary: str,
    settings_cls: type[BaseSettings],
    run: Callable[[], int],
) -> click.Command:
    """A click command that runs ``run`` (returning the exit code) and offers --help/--version."""

    @click.command(
        name=prog_name,
        help=summary
        + "\n\nConfiguration comes only from environment variables; there are no other "
        "options.",
        epilog=settings_help(settings_cls),
        context_settings={"max_content_width": 100},
    )
    @click.version_option(package_name="hello-platform", prog_name=prog_name)
    def command() -> None:
        raise SystemExit(run())

    return command
