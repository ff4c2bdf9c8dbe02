"""Errors raised by hello-platform code.

    HelloError
     ├── ConfigError            bad settings; the message names the env var
     ├── ValidationError        bad user input; safe to show to the caller
     ├── EnvelopeError          a message body we cannot decode (never retried)
     └── ProcessingError        a processing step failed
          └── RetryableError    ...and may succeed if tried again

Third-party errors are translated at the boundary and chained with ``from``.
"""

from __future__ import annotations


class HelloError(Exception):
    """Base class of every error hello-platform raises on purpose."""


class ConfigError(HelloError):
    """Settings could not be loaded; the message names each bad variable."""


class ValidationError(HelloError):
    """User input was refused; the message says what is wrong."""


class EnvelopeError(HelloError):
    """A Kafka message body is not a message we can read; retrying cannot help."""


class ProcessingError(HelloError):
    """A processing step failed for good; the message goes to the dead-letter topic."""

    retryable = False


class RetryableError(ProcessingError):
    """A processing step failed but may succeed if tried again."""

    retryable = True
