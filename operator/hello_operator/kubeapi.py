"""The Kubernetes calls hello-operator makes, through the official client.

Each method is one request (plus retries; creating the Deployment is three
server-side applies), so the RBAC Role in
``operator/deploy/rbac.yaml`` can list exactly these verbs:

============================  ==========================  =====================
object                        verb                        used by
============================  ==========================  =====================
deployments                   get, create, patch          reconcile, scale loop
deployments/scale             patch                       scale loop
serviceaccounts, services,    patch (server-side apply)   reconcile
poddisruptionbudgets
kafkatopics (Strimzi)         patch (server-side apply)   reconcile
hellopipelines/status         patch                       reconcile, scale loop
============================  ==========================  =====================

Owned objects are written with server-side apply under one field manager,
so re-applying is idempotent and never fights over fields we do not set.
The Deployment's ``spec.replicas`` is deliberately left to a second field
manager (the scale loop): if the reconciler's apply carried replicas it
would reset them on every spec change. That manager owns nothing else, so a
field dropped from the spec leaves the Deployment (see ``create_deployment``).

409 Conflict is retried: apply with ``force`` cannot conflict on fields, but
a concurrent create can, and the status patch may race kopf's own writes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

from hello_core.errors import HelloError
from hello_operator.spec import GROUP, PLURAL, VERSION

logger = logging.getLogger(__name__)

APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
SCALER_FIELD_MANAGER_SUFFIX = "-scaler"

# Response bodies of failed requests are cut to this many characters before
# they reach logs and status messages: they can be long, and they echo input.
MAX_ERROR_CHARS = 256

T = TypeVar("T")


class KubeError(HelloError):
    """A Kubernetes API request failed; the message names the object and the status."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def _is_conflict(exc: BaseException) -> bool:
    return isinstance(exc, ApiException) and exc.status == 409


retry_on_conflict = retry(
    retry=retry_if_exception(_is_conflict),
    stop=stop_after_attempt(5),
    wait=wait_exponential(multiplier=0.05, max=1.0),
    reraise=True,
)


def _describe(exc: ApiException) -> str:
    body = (exc.body or "").strip() if isinstance(exc.body, str) else ""
    text = f"{exc.status} {exc.reason}" + (f": {body}" if body else "")
    return text[:MAX_ERROR_CHARS]


@dataclass(frozen=True)
class DeploymentState:
    replicas: int
    ready_replicas: int


class Kube:
    def __init__(self, api: client.ApiClient, *, field_manager: str) -> None:
        self.api = api
        self.field_manager = field_manager
        self.scaler_field_manager = field_manager + SCALER_FIELD_MANAGER_SUFFIX
        self.apps = client.AppsV1Api(api)
        self.core = client.CoreV1Api(api)
        self.policy = client.PolicyV1Api(api)
        self.custom = client.CustomObjectsApi(api)

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return retry_on_conflict(fn)()
        except ApiException as exc:
            raise KubeError(f"{what} failed: {_describe(exc)}", status=exc.status) from exc

    # -- owned objects --------------------------------------------------------------------

    def apply(self, obj: Mapping[str, Any]) -> None:
        """Server-side apply ``obj`` (created if absent) under our field manager."""
        body = dict(obj)
        kind, meta = body["kind"], body["metadata"]
        name, namespace = meta["name"], meta["namespace"]
        common: dict[str, Any] = {
            "field_manager": self.field_manager,
            "force": True,
            "_content_type": APPLY,
        }
        patchers: dict[str, Callable[[], object]] = {
            "Deployment": lambda: self.apps.patch_namespaced_deployment(
                name, namespace, body, **common
            ),
            "ServiceAccount": lambda: self.core.patch_namespaced_service_account(
                name, namespace, body, **common
            ),
            "Service": lambda: self.core.patch_namespaced_service(name, namespace, body, **common),
            "PodDisruptionBudget": lambda: self.policy.patch_namespaced_pod_disruption_budget(
                name, namespace, body, **common
            ),
            "KafkaTopic": lambda: self.custom.patch_namespaced_custom_object(
                "kafka.strimzi.io", "v1beta2", namespace, "kafkatopics", name, body, **common
            ),
        }
        self._call(f"apply {kind} {namespace}/{name}", patchers[kind])

    def create_deployment(self, body: Mapping[str, Any]) -> bool:
        """Create the Deployment with its first replica count (the caller checked it is absent).

        Three server-side applies, so that afterwards the scaler's field
        manager owns ``spec.replicas`` and nothing else, and the reconciler's
        owns every other field: the scaler creates the whole object (replicas
        included, so no pod starts before the first count is set), the
        reconciler applies it without replicas, then the scaler applies only
        its replicas, which releases the rest. A plain create (POST) would
        leave the scaler's *Update* entry co-owning every field, and a field
        later dropped from the spec (an env entry, a resource limit) would
        then never leave the Deployment. Returns True once created.
        """
        meta = body["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        what = f"create Deployment {namespace}/{name}"
        replicas = body["spec"]["replicas"]
        without_replicas = {
            **body,
            "spec": {k: v for k, v in body["spec"].items() if k != "replicas"},
        }
        only_replicas = {
            "apiVersion": body["apiVersion"],
            "kind": body["kind"],
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": replicas},
        }
        for manager, doc in (
            (self.scaler_field_manager, body),
            (self.field_manager, without_replicas),
            (self.scaler_field_manager, only_replicas),
        ):
            self._call(what, self._deployment_applier(doc, manager))
        return True

    def _deployment_applier(self, doc: Mapping[str, Any], manager: str) -> Callable[[], object]:
        meta = doc["metadata"]

        def apply() -> object:
            return self.apps.patch_namespaced_deployment(
                meta["name"],
                meta["namespace"],
                dict(doc),
                field_manager=manager,
                force=True,
                _content_type=APPLY,
            )

        return apply

    # -- the scale loop -------------------------------------------------------------------

    def deployment_state(self, namespace: str, name: str) -> DeploymentState | None:
        """Replicas of the Deployment, or None when it does not exist."""
        try:
            found = self.apps.read_namespaced_deployment(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise KubeError(
                f"get Deployment {namespace}/{name} failed: {_describe(exc)}", status=exc.status
            ) from exc
        spec_replicas = found.spec.replicas if found.spec and found.spec.replicas is not None else 1
        ready = (found.status.ready_replicas if found.status else None) or 0
        return DeploymentState(replicas=spec_replicas, ready_replicas=ready)

    def scale_deployment(self, namespace: str, name: str, replicas: int) -> None:
        self._call(
            f"scale Deployment {namespace}/{name} to {replicas}",
            lambda: self.apps.patch_namespaced_deployment_scale(
                name,
                namespace,
                {"spec": {"replicas": replicas}},
                field_manager=self.scaler_field_manager,
                _content_type=MERGE,
            ),
        )

    def patch_pipeline_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        self._call(
            f"patch HelloPipeline {namespace}/{name} status",
            lambda: self.custom.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                name,
                {"status": dict(status)},
                field_manager=self.field_manager,
                _content_type=MERGE,
            ),
        )
