"""Finding the Go toolchain and the environment our Go builds run in."""

from __future__ import annotations

import os
import pathlib
import shutil


def find_go(*, needed_for: str, error: type[Exception]) -> str:
    """``$HELLO_GO``, else ``go`` on PATH, else /usr/local/go/bin/go; ``error`` if none runs."""
    explicit = os.environ.get("HELLO_GO")
    candidates = [explicit] if explicit else []
    found = shutil.which("go")
    if found:
        candidates.append(found)
    candidates.append("/usr/local/go/bin/go")
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise error(
        "the Go toolchain was not found (looked at $HELLO_GO, PATH and /usr/local/go/bin/go); "
        f"it is needed to build {needed_for}"
    )


def go_env(cache_root: pathlib.Path) -> dict[str, str]:
    """Module and build caches under ``cache_root`` (unless set), static binaries,
    and the local toolchain only: the go command never fetches another one silently."""
    env = dict(os.environ)
    env.setdefault("GOMODCACHE", str(cache_root / "go" / "mod"))
    env.setdefault("GOCACHE", str(cache_root / "go" / "build"))
    env["CGO_ENABLED"] = "0"
    env.setdefault("GOTOOLCHAIN", "local")
    return env
