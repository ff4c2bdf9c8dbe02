"""kopf handlers: reconcile owned objects, and poll lag to scale the consumers.

- ``reconcile`` runs on create, on every spec change and when the operator
  (re)starts: it applies the Deployment, ServiceAccount, metrics Service,
  PodDisruptionBudget and, if asked, the Strimzi KafkaTopic.
- ``scale_loop`` is a kopf daemon per pipeline, a timer whose period is the
  pipeline's own ``pollingInterval``: read offsets, :func:`decide`, patch the
  Deployment's scale, post an Event for every scale and write status.

Only one operator replica acts at a time: kopf peering pauses the others
(their daemons stop with ``OPERATOR_PAUSING``). Decisions start from the
Deployment's *current* replicas and the window state saved in the status,
so an operator restarted between "scaled" and "status written" decides the
same count again and does not scale twice.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import datetime
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from hello_core.kafka import admin_config, consumer_config
from hello_core.logs import Throttle
from hello_core.settings import KafkaSettings, load_settings
from hello_operator import manifests, metrics
from hello_operator import status as status_doc
from hello_operator.kubeapi import Kube, KubeError
from hello_operator.lag import KafkaUnreachableError, LagReadError, OffsetReader
from hello_operator.scaling import DecisionState, decide
from hello_operator.settings import OperatorSettings
from hello_operator.spec import GROUP, PLURAL, VERSION, PipelineSpec

logger = logging.getLogger(__name__)

RESOURCE = (GROUP, VERSION, PLURAL)
ANNOTATION_PREFIX = GROUP
RECONCILE_RETRY_SECONDS = 10
# While Kafka is down every poll of every pipeline fails the same way; the
# KafkaReachable condition carries each poll's error, the log one a minute.
KAFKA_LOG_INTERVAL_SECONDS = 60.0


@dataclass
class Runtime:
    """Operator-wide clients, shared by every pipeline through kopf's memo."""

    settings: OperatorSettings
    kube: Kube
    offsets: OffsetReader
    executor: concurrent.futures.ThreadPoolExecutor


def build_runtime(settings: OperatorSettings, api: client.ApiClient | None = None) -> Runtime:
    if api is None:
        api = kube_api_client()
    return Runtime(
        settings=settings,
        kube=Kube(api, field_manager=settings.field_manager),
        offsets=OffsetReader(
            AdminClient(admin_config(settings.kafka)),
            consumer_for=lambda group: Consumer(
                offsets_consumer_config(settings.kafka, group_id=group)
            ),
            timeout=settings.kafka_timeout_seconds,
        ),
        # Polls block on Kafka and the API server; they get their own threads
        # so a slow broker cannot starve kopf's executor for sync handlers.
        executor=concurrent.futures.ThreadPoolExecutor(
            max_workers=settings.poll_workers, thread_name_prefix="poll"
        ),
    )


def offsets_consumer_config(kafka: KafkaSettings, *, group_id: str) -> dict[str, Any]:
    """A client that only reads the group's committed offsets and never joins it."""
    config = consumer_config(kafka, group_id=group_id)
    # Nothing here consumes or commits; make sure nothing ever could.
    config["enable.auto.commit"] = False
    return config


def kube_api_client() -> client.ApiClient:
    """A client for the ServiceAccount in a pod, else for KUBECONFIG, as kubectl does."""
    from kubernetes import config

    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    configuration.connection_pool_maxsize = 32
    return client.ApiClient(configuration)


def configure_kopf(settings: kopf.OperatorSettings, ours: OperatorSettings) -> None:
    # Keep kopf's bookkeeping in annotations under our group, so the status
    # schema stays ours alone (kopf would otherwise write status.kopf).
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix=ANNOTATION_PREFIX
    )
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATION_PREFIX, key="last-handled-configuration"
    )
    # Only our explicit scale Events, not one per handler log line.
    settings.posting.enabled = False
    # Resources are known from the CRD; watching CRDs would need cluster-wide
    # list/watch on customresourcedefinitions for nothing.
    settings.scanning.disabled = True
    settings.peering.name = ours.peering_name
    settings.peering.priority = ours.priority or 0
    settings.peering.mandatory = not ours.standalone
    settings.peering.standalone = ours.standalone
    settings.peering.clusterwide = not ours.namespaces
    settings.networking.request_timeout = 60
    settings.watching.server_timeout = 300


@kopf.on.startup()
def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    ours: OperatorSettings = memo.get("settings") or load_settings(OperatorSettings)
    configure_kopf(settings, ours)
    if "runtime" not in memo:
        memo.runtime = build_runtime(ours)
    logger.info(
        "operator starting peering=%s priority=%s namespaces=%s kafka=%s",
        "standalone" if ours.standalone else ours.peering_name,
        ours.priority,
        ",".join(ours.namespaces) or "*",
        ours.kafka.bootstrap_servers,
    )


@kopf.on.cleanup()
def cleanup(memo: kopf.Memo, **_: Any) -> None:
    runtime: Runtime | None = memo.get("runtime")
    if runtime is not None:
        runtime.executor.shutdown(wait=False)
        runtime.offsets.close()


def observation(memo: kopf.Memo) -> status_doc.Observation:
    if "observation" not in memo:
        memo.observation = status_doc.Observation()
    obs: status_doc.Observation = memo.observation
    return obs


@dataclass
class KafkaOutageLog:
    """When to log a pipeline's failed Kafka polls, and its recovery."""

    clock: Callable[[], float] = time.monotonic
    interval: float = KAFKA_LOG_INTERVAL_SECONDS
    down_since: float | None = None
    failed_polls: int = 0
    _throttle: Throttle = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._throttle = Throttle(self.interval, clock=self.clock)

    def failed(self) -> int | None:
        """None to skip this failure's line, else how many were skipped before it."""
        if self.down_since is None:
            self.down_since = self.clock()
        self.failed_polls += 1
        return self._throttle("kafka unreachable")

    def recovered(self) -> tuple[float, int] | None:
        """(seconds down, failed polls) once after an outage, else None."""
        if self.down_since is None:
            return None
        outage = (self.clock() - self.down_since, self.failed_polls)
        self.down_since, self.failed_polls = None, 0
        # The next outage's first failure is logged at once.
        self._throttle = Throttle(self.interval, clock=self.clock)
        return outage


def kafka_outage_log(memo: kopf.Memo) -> KafkaOutageLog:
    if "kafka_outage_log" not in memo:
        memo.kafka_outage_log = KafkaOutageLog()
    outage: KafkaOutageLog = memo.kafka_outage_log
    return outage


def write_status(
    runtime: Runtime, body: Mapping[str, Any], obs: status_doc.Observation, *, now: float
) -> None:
    meta = body["metadata"]
    document = status_doc.build(
        obs,
        previous_conditions=(body.get("status") or {}).get("conditions"),
        selector=manifests.selector(meta["name"]),
        now=now,
    )
    try:
        runtime.kube.patch_pipeline_status(meta["namespace"], meta["name"], document)
    except KubeError as exc:
        if exc.status == 404:
            return  # deleted meanwhile
        raise


def initial_replicas(spec: PipelineSpec) -> int:
    if spec.paused and spec.replicas is not None:
        return spec.replicas
    return spec.min_replicas


# -- reconcile ----------------------------------------------------------------------------


def apply_owned(runtime: Runtime, body: Mapping[str, Any], spec: PipelineSpec) -> list[str]:
    """Apply every owned object; returns the failures, one line each."""
    owner = manifests.Owner.from_body(body)
    settings = runtime.settings
    objects = manifests.owned_objects(
        owner,
        spec,
        image=spec.consumer.image or settings.consumer_image,
        bootstrap_servers=settings.consumer_bootstrap(),
    )
    failures = []
    deployment = objects[-1]
    name = deployment["metadata"]["name"]
    try:
        if runtime.kube.deployment_state(owner.namespace, name) is None:
            first = dict(
                deployment, spec={**deployment["spec"], "replicas": initial_replicas(spec)}
            )
            if runtime.kube.create_deployment(first):
                logger.info(
                    "created consumer deployment namespace=%s name=%s replicas=%d",
                    owner.namespace,
                    name,
                    first["spec"]["replicas"],
                )
    except KubeError as exc:
        failures.append(str(exc))
    for obj in objects:
        try:
            runtime.kube.apply(obj)
        except KubeError as exc:
            hint = " (is Strimzi installed?)" if obj["kind"] == "KafkaTopic" else ""
            failures.append(f"{exc}{hint}")
    return failures


@kopf.on.resume(*RESOURCE)
@kopf.on.create(*RESOURCE)
@kopf.on.update(*RESOURCE, field="spec")
def reconcile(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    runtime: Runtime = memo.runtime
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    obs = observation(memo)
    spec = PipelineSpec.from_body(body["spec"])
    obs.generation = meta.get("generation")
    obs.paused = spec.paused

    failures = apply_owned(runtime, body, spec)
    metrics.reconciles.labels("failed" if failures else "applied").inc()
    if failures:
        obs.reconcile_error = "; ".join(failures)
        write_status(runtime, body, obs, now=time.time())
        logger.warning(
            "reconcile failed, will retry in %ds namespace=%s name=%s error=%s",
            RECONCILE_RETRY_SECONDS,
            namespace,
            name,
            obs.reconcile_error,
        )
        raise kopf.TemporaryError(obs.reconcile_error, delay=RECONCILE_RETRY_SECONDS)
    obs.reconcile_error = None
    obs.reconciled_generation = obs.generation
    write_status(runtime, body, obs, now=time.time())
    logger.info(
        "reconciled owned objects namespace=%s name=%s generation=%s",
        namespace,
        name,
        obs.generation,
    )


# -- the scale loop -----------------------------------------------------------------------


def post_event(runtime: Runtime, body: Mapping[str, Any], *, reason: str, message: str) -> None:
    meta = body["metadata"]
    now = datetime.datetime.now(datetime.UTC)
    event = client.CoreV1Event(
        metadata=client.V1ObjectMeta(
            name=f"{meta['name']}.{uuid.uuid4().hex[:16]}", namespace=meta["namespace"]
        ),
        involved_object=client.V1ObjectReference(
            api_version=f"{GROUP}/{VERSION}",
            kind="HelloPipeline",
            name=meta["name"],
            namespace=meta["namespace"],
            uid=meta["uid"],
            resource_version=meta.get("resourceVersion"),
        ),
        reason=reason,
        message=message[:1024],
        type="Normal",
        source=client.V1EventSource(component=runtime.settings.field_manager),
        reporting_component=runtime.settings.field_manager,
        reporting_instance=runtime.settings.field_manager,
        first_timestamp=now,
        last_timestamp=now,
        count=1,
    )
    try:
        runtime.kube.core.create_namespaced_event(meta["namespace"], event)
    except ApiException as exc:
        # An Event is a courtesy; the scale itself already happened.
        logger.warning(
            "event not posted namespace=%s name=%s reason=%s status=%s",
            meta["namespace"],
            meta["name"],
            reason,
            exc.status,
        )


def poll_once(
    runtime: Runtime,
    body: Mapping[str, Any],
    obs: status_doc.Observation,
    outage: KafkaOutageLog,
    *,
    now: float,
) -> None:
    """One poll of one pipeline: read lag, decide, scale, record. Blocking."""
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    spec = PipelineSpec.from_body(body["spec"])
    obs.generation = meta.get("generation")
    obs.paused = spec.paused
    deployment = manifests.consumer_name(name)

    current = runtime.kube.deployment_state(namespace, deployment)
    if current is None:
        if obs.reconciled_generation is not None:
            # Someone deleted it after we created it: put it back.
            logger.warning(
                "consumer deployment missing, re-applying namespace=%s name=%s", namespace, name
            )
            obs.reconcile_error = "; ".join(apply_owned(runtime, body, spec)) or None
        return
    obs.replicas = current.replicas

    if spec.paused:
        if spec.replicas is not None and spec.replicas != current.replicas:
            runtime.kube.scale_deployment(namespace, deployment, spec.replicas)
            message = f"paused: replicas {current.replicas} → {spec.replicas} from spec.replicas"
            post_event(runtime, body, reason="ScaledManually", message=message)
            logger.info(
                "scaled paused pipeline namespace=%s name=%s from=%d to=%d",
                namespace,
                name,
                current.replicas,
                spec.replicas,
            )
            obs.replicas, obs.last_scale_time = spec.replicas, now
        write_status(runtime, body, obs, now=now)
        return

    try:
        offsets = runtime.offsets.read(spec.topic, spec.consumer_group)
    except KafkaUnreachableError as exc:
        obs.kafka_error, obs.scaled = str(exc), False
        metrics.poll_errors.labels(namespace, name, "kafka_unreachable").inc()
        suppressed = outage.failed()
        if suppressed is not None:
            logger.warning(
                "kafka unreachable, replicas kept, will retry in %ds namespace=%s name=%s"
                " replicas=%d suppressed=%d error=%s",
                spec.polling_interval,
                namespace,
                name,
                current.replicas,
                suppressed,
                exc,
            )
        write_status(runtime, body, obs, now=now)
        return
    except LagReadError as exc:
        log_kafka_recovery(outage, namespace, name)
        obs.kafka_error, obs.lag_error, obs.scaled = None, str(exc), False
        metrics.poll_errors.labels(namespace, name, type(exc).__name__).inc()
        logger.warning(
            "lag unreadable, replicas kept, will retry in %ds namespace=%s name=%s error=%s",
            spec.polling_interval,
            namespace,
            name,
            exc,
        )
        write_status(runtime, body, obs, now=now)
        return
    obs.kafka_error = obs.lag_error = None
    log_kafka_recovery(outage, namespace, name)

    # The memo has the freshest state; after a restart it comes from the status.
    previous = (
        obs.decision.state
        if obs.decision is not None
        else DecisionState.from_status((body.get("status") or {}).get("decisionState"))
    )
    decision = decide(offsets, spec.policy(), previous, current_replicas=current.replicas, now=now)
    scaled = decision.desired_replicas != current.replicas
    if scaled:
        runtime.kube.scale_deployment(namespace, deployment, decision.desired_replicas)
        reason = "ScaledUp" if decision.direction == "up" else "ScaledDown"
        post_event(runtime, body, reason=reason, message=decision.explanation)
        obs.replicas, obs.last_scale_time = decision.desired_replicas, now
        logger.info(
            "scaled consumers namespace=%s name=%s topic=%s from=%d to=%d lag=%d decision=%r",
            namespace,
            name,
            spec.topic,
            current.replicas,
            decision.desired_replicas,
            decision.total_lag,
            decision.explanation,
        )
    else:
        logger.debug(
            "no scale namespace=%s name=%s lag=%d decision=%r",
            namespace,
            name,
            decision.total_lag,
            decision.explanation,
        )
    obs.decision, obs.offsets, obs.scaled = decision, offsets, scaled
    obs.polled, obs.last_poll_time = True, now
    metrics.record_decision(namespace, name, decision, scaled=scaled)
    write_status(runtime, body, obs, now=now)


def log_kafka_recovery(outage: KafkaOutageLog, namespace: str, name: str) -> None:
    recovered = outage.recovered()
    if recovered is not None:
        down, failed_polls = recovered
        logger.info(
            "kafka reachable again namespace=%s name=%s down_seconds=%.0f failed_polls=%d",
            namespace,
            name,
            down,
            failed_polls,
        )


@kopf.daemon(*RESOURCE, cancellation_timeout=10)
async def scale_loop(
    stopped: kopf.DaemonStopped, body: kopf.Body, memo: kopf.Memo, **_: Any
) -> None:
    runtime: Runtime = memo.runtime
    obs = observation(memo)
    outage = kafka_outage_log(memo)
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    loop = asyncio.get_running_loop()
    logger.info("scale loop started namespace=%s name=%s", namespace, name)
    while not stopped:
        started = time.monotonic()
        # `body` is kopf's live view: spec edits apply from the next poll on.
        interval = int(body.get("spec", {}).get("pollingInterval", 30))
        try:
            with metrics.poll_seconds.time():
                await loop.run_in_executor(
                    runtime.executor,
                    lambda: poll_once(runtime, body, obs, outage, now=time.time()),
                )
        except (KubeError, ValueError) as exc:
            metrics.poll_errors.labels(namespace, name, type(exc).__name__).inc()
            logger.warning(
                "poll failed, will retry in %ds namespace=%s name=%s error=%s",
                interval,
                namespace,
                name,
                exc,
            )
        except Exception:
            metrics.poll_errors.labels(namespace, name, "crash").inc()
            logger.exception(
                "poll crashed, will retry in %ds namespace=%s name=%s", interval, namespace, name
            )
        await stopped.wait(max(0.0, interval - (time.monotonic() - started)))
    metrics.forget(namespace, name)
    logger.info(
        "scale loop stopped namespace=%s name=%s reason=%s", namespace, name, stopped.reason
    )


def _drop_daemon_finalizer() -> None:
    """Let pipelines be deleted without waiting for a running operator.

    kopf (1.45) marks every daemon as needing a finalizer so that it can stop
    the daemon before the object disappears (kopf/on.py, ``daemon()`` sets
    ``requires_finalizer=True``). The scale loop needs no such guarantee:
    after deletion its next request meets a 404 and kopf stops it on the
    DELETED event. The registry has no public switch for this, so the flag
    is cleared on our handler; if kopf's internals change, the pipeline just
    keeps kopf's finalizer (tests/integration/operator checks for none).
    """
    registry = kopf.get_default_registry()
    spawning = getattr(registry, "_spawning", None)
    handlers = getattr(spawning, "_handlers", None)
    if not isinstance(handlers, list):
        logger.warning("kopf registry layout changed; pipelines keep kopf's daemon finalizer")
        return
    handlers[:] = [
        dataclasses.replace(h, requires_finalizer=False)
        if getattr(h, "fn", None) is scale_loop
        else h
        for h in handlers
    ]


_drop_daemon_finalizer()
