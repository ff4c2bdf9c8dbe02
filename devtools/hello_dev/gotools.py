"""Finding the Go toolchain and the environment our Go builds run in."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import pathlib
import shutil
from collections.abc import Iterator

logger = logging.getLogger(__name__)


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


@contextlib.contextmanager
def build_lock(path: pathlib.Path, *, what: str) -> Iterator[None]:
    """Serialise builds of ``what`` between processes (pytest workers, a CLI in another shell)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info(
                "build waiting for a lock held by another process",
                extra={"build": what, "lock": str(path)},
            )
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
