"""Comparing against HDR percentiles, which are bucket tops up to 0.1% above the value."""

import pytest


def hdr(ms: float) -> object:
    return pytest.approx(ms, rel=0.001, abs=0.001)
