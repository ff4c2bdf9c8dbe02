"""The whole pipeline as separate processes, as a user runs it."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from hello_dev.pipeline import LocalPipeline


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPipeline]:
    workdir: pathlib.Path = tmp_path_factory.mktemp("pipeline")
    with LocalPipeline(workdir=workdir, consumers=1, partitions=6) as running:
        yield running
