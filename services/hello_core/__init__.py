"""Shared core of hello-platform: settings, logging, telemetry, Kafka config,
the message envelope and our error types. Imports no service."""
