"""Dev tooling: real Kafka and a real Kubernetes API server on loopback, and
the local `hello-dev up` command. Imported by tests and the CLI only; the
service images never carry it."""
