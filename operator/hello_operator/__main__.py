"""Entry point ``hello-operator`` (also ``python -m hello_operator``).

Reads ``HELLO_OPERATOR_*`` settings, checks that a Kubernetes client
configuration loads (bad settings and no configuration both exit 2 with one
line), serves Prometheus metrics, and runs the kopf operator with peering, so
that of several replicas only one acts. kopf handles SIGTERM/SIGINT: it stops
the daemons (each finishes its poll) and exits.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import secrets
import signal

import kopf
import prometheus_client

from hello_core.cli import fail, service_command
from hello_core.errors import ConfigError
from hello_core.logs import configure
from hello_core.settings import load_settings
from hello_operator.settings import OperatorSettings


class KopfContext(logging.Filter):
    """Turn kopf's per-object log extras into one ``object=namespace/name`` field.

    kopf passes its whole settings object and internal flags as ``extra`` on
    every per-object record; our formatters print every extra, so those are
    dropped here and only the object's coordinates are kept.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        ref = record.__dict__.pop("k8s_ref", None)
        for noise in ("settings", "k8s_skip"):
            record.__dict__.pop(noise, None)
        if isinstance(ref, dict):
            record.object = f"{ref.get('namespace') or ''}/{ref.get('name')}"
        return True


PROG = "hello-operator"
SUMMARY = (
    "Run the hello-platform operator: reconcile HelloPipeline resources and scale their "
    "consumer Deployments by consumer-group lag (kopf, with peering)."
)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()).rstrip(".") or type(exc).__name__


def check_kube_config() -> None:
    """Load the Kubernetes client configuration as kopf will, or raise ConfigError.

    kopf logs in with the kubernetes client: the in-cluster ServiceAccount,
    else ``KUBECONFIG`` (or ``~/.kube/config``). When neither loads it
    retries every minute, forever, after a long traceback; checking here first
    turns that into one line naming what was tried, and exit code 2.
    """
    from kubernetes import client, config

    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        return
    except config.ConfigException as exc:
        in_cluster = _one_line(exc)
    location = os.environ.get("KUBECONFIG", "~/.kube/config")
    paths = [os.path.expanduser(p) for p in location.split(os.pathsep) if p]
    try:
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=location, client_configuration=configuration, persist_config=False
        )
        return
    except Exception as exc:  # noqa: BLE001 - any failure means no usable kubeconfig
        if not paths:
            reason = "it names no file"
        elif not any(os.path.exists(p) for p in paths):
            reason = f"{', '.join(paths)}: no such file"
        else:
            reason = f"{', '.join(paths)}: {_one_line(exc)}"
    where = "in KUBECONFIG" if "KUBECONFIG" in os.environ else f"{location}, KUBECONFIG being unset"
    raise ConfigError(
        "no Kubernetes configuration: tried the in-cluster service account "
        f"({in_cluster}) and the kubeconfig {where} ({reason})"
    )


def run() -> int:
    try:
        settings = load_settings(OperatorSettings)
        check_kube_config()
    except ConfigError as exc:
        fail(PROG, exc)
    configure(settings.log.level, settings.log.format)
    # A crash in librdkafka leaves a Python stack on stderr; `kill -USR1 <pid>`
    # prints every thread's stack, for a stuck poll.
    faulthandler.enable()
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    for handler in logging.getLogger().handlers:
        handler.addFilter(KopfContext())
    if settings.priority is None:
        settings = settings.model_copy(update={"priority": 1 + secrets.randbelow(2**31 - 1)})

    from hello_operator import handlers  # noqa: F401 - registers the kopf handlers

    if settings.metrics_port:
        prometheus_client.start_http_server(settings.metrics_port, addr=settings.metrics_host)
    liveness = (
        f"http://{settings.metrics_host}:{settings.health_port}/healthz"
        if settings.health_port
        else None
    )
    kopf.run(
        standalone=settings.standalone,
        peering_name=None if settings.standalone else settings.peering_name,
        priority=settings.priority,
        namespaces=settings.namespaces,
        clusterwide=not settings.namespaces,
        liveness_endpoint=liveness,
        memo=kopf.Memo(settings=settings),
    )
    return 0


main = service_command(prog_name=PROG, summary=SUMMARY, settings_cls=OperatorSettings, run=run)


if __name__ == "__main__":
    main(prog_name=PROG)
