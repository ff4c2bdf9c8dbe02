"""Where dev tooling caches what it downloads and builds (outside the repository)."""

from __future__ import annotations

import os
import pathlib


def cache_dir() -> pathlib.Path:
    """``$HELLO_CACHE_DIR``, else ``$XDG_CACHE_HOME/hello-platform``, else
    ``~/.cache/hello-platform``."""
    explicit = os.environ.get("HELLO_CACHE_DIR")
    if explicit:
        return pathlib.Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = pathlib.Path(xdg).expanduser() if xdg else pathlib.Path.home() / ".cache"
    return base / "hello-platform"
