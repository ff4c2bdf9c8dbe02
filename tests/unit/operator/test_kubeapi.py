"""Conflict retries around Kubernetes calls."""

from __future__ import annotations

import pytest
from kubernetes.client.exceptions import ApiException

from hello_operator.kubeapi import Kube, KubeError


class Flaky:
    def __init__(self, failures: list[int]) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise ApiException(status=self.failures.pop(0), reason="Conflict")
        return "done"


def kube() -> Kube:
    return Kube.__new__(Kube)  # _call needs no client


def test_conflicts_are_retried_until_the_call_succeeds() -> None:
    call = Flaky([409, 409])
    assert kube()._call("patch status", call) == "done"
    assert call.calls == 3


def test_other_errors_are_not_retried_and_name_the_request() -> None:
    call = Flaky([403])
    with pytest.raises(KubeError, match=r"^patch status failed: 403 Conflict") as caught:
        kube()._call("patch status", call)
    assert caught.value.status == 403
    assert call.calls == 1


def test_conflicts_give_up_after_five_attempts() -> None:
    call = Flaky([409] * 9)
    with pytest.raises(KubeError):
        kube()._call("patch status", call)
    assert call.calls == 5
