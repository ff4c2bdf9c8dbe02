"""hello_dev.helm: cache lookup and error messages, without building anything."""

from __future__ import annotations

import os
import pathlib
import stat

import pytest

from hello_dev import helm


def _fake_binary(path: pathlib.Path) -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def isolated(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    """A private cache and no Go toolchain anywhere, so nothing can be built."""
    monkeypatch.setenv("HELLO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HELLO_GO", str(tmp_path / "no-go"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.delenv("HELLO_HELM", raising=False)
    monkeypatch.setattr(os, "access", lambda path, mode: pathlib.Path(path).exists())
    return tmp_path


def test_cached_binary_is_returned_without_a_build(isolated: pathlib.Path) -> None:
    cached = _fake_binary(isolated / "cache" / "helm" / "v9.9.9" / "bin" / "helm")

    assert helm.ensure_helm("v9.9.9") == cached


def test_cache_path_is_versioned_under_the_project_cache(isolated: pathlib.Path) -> None:
    assert helm.helm_bin_dir("v4.2.4") == isolated / "cache" / "helm" / "v4.2.4" / "bin"


def test_explicit_helm_env_var_wins_over_the_cache(
    isolated: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = _fake_binary(isolated / "elsewhere" / "helm")
    monkeypatch.setenv("HELLO_HELM", str(own))

    assert helm.ensure_helm() == own


def test_explicit_helm_env_var_naming_nothing_is_a_clear_error(
    isolated: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HELLO_HELM", str(isolated / "missing-helm"))

    with pytest.raises(helm.HelmToolingError, match=r"\$HELLO_HELM is .*not an executable file"):
        helm.ensure_helm()


def test_missing_go_toolchain_is_reported_with_where_it_looked(
    isolated: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "access", lambda path, mode: False)

    with pytest.raises(helm.HelmToolingError, match=r"Go toolchain was not found .*PATH"):
        helm.ensure_helm("v9.9.9")


def test_failed_go_install_reports_exit_code_and_output(
    isolated: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    go = isolated / "bin" / "go"
    go.parent.mkdir()
    go.write_text("#!/bin/sh\necho 'module lookup disabled by test' >&2\nexit 3\n")
    go.chmod(0o755)
    monkeypatch.setenv("HELLO_GO", str(go))

    with pytest.raises(helm.HelmToolingError) as caught:
        helm.ensure_helm("v9.9.9")

    message = str(caught.value)
    assert "go install helm.sh/helm/v4/cmd/helm@v9.9.9 failed (exit 3)" in message
    assert "module lookup disabled by test" in message
    assert not (isolated / "cache" / "helm" / "v9.9.9" / "bin").exists()
