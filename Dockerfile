# syntax=docker/dockerfile:1
#
# One image for every hello-platform process; the command picks the role:
#   hello-api (default) | hello-consumer | hello-operator | hello-load
#
# Build:  docker build -t hello-platform:dev .
# Pin the base by digest in CI (PYTHON_IMAGE=python:3.11-slim@sha256:...) so
# rebuilds are reproducible; the tag alone moves with Debian security updates.
#
# No HEALTHCHECK on purpose: Kubernetes probes (gRPC health for the API,
# HTTP endpoints for the others) decide liveness and readiness; a Docker
# HEALTHCHECK would only run a second checker that Kubernetes ignores.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/hello

WORKDIR /src

# Only what the runtime needs. devtools/ (the hello_dev package: Kafka and
# kube-apiserver launchers for tests) is a separate distribution, left out of
# the build context by .dockerignore.
COPY pyproject.toml README.md ./
COPY services/ services/
COPY operator/ operator/
COPY loadtest/ loadtest/

# EXTRAS lets a slimmer API/consumer-only image drop kopf and matplotlib:
#   docker build --build-arg EXTRAS=operator .
ARG EXTRAS=operator,loadtest
RUN /opt/hello/bin/pip install --no-compile "/src[${EXTRAS}]" \
 && /opt/hello/bin/python -m compileall -q /opt/hello/lib \
 && /opt/hello/bin/python -c "import importlib.util as u, sys; sys.exit(u.find_spec('hello_dev') is not None)"


FROM ${PYTHON_IMAGE} AS runtime

ARG HELLO_UID=10001
RUN groupadd --system --gid "${HELLO_UID}" hello \
 && useradd --system --uid "${HELLO_UID}" --gid hello --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin hello

COPY --from=build /opt/hello /opt/hello

# Bytecode was compiled at build time; the root filesystem is read-only in
# the pod, so nothing may try to write .pyc files or a matplotlib cache there.
ENV PATH=/opt/hello/bin:${PATH} \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MPLCONFIGDIR=/tmp/matplotlib \
    HELLO_API_LISTEN_ADDRESS=0.0.0.0:50051 \
    HELLO_API_HTTP_HOST=0.0.0.0 \
    HELLO_CONSUMER_HTTP_HOST=0.0.0.0

WORKDIR /tmp
USER ${HELLO_UID}:${HELLO_UID}

# 50051 gRPC; 9101/9102/9103 metrics and probes of api/consumer/operator.
EXPOSE 50051 9101 9102 9103

CMD ["hello-api"]
