"""Logging set-up for entry points: key=value text or JSON lines.

Convention for every log call (the API, the consumer, core):

- ``msg`` is a short constant event name in lower case, the same on every
  call of that line: ``"publish failed"``, ``"partitions assigned"``. Never
  interpolate values into it; a reader greps for it and a JSON reader groups
  by it.
- Everything variable goes into ``extra={...}`` with snake_case keys, so
  JSON lines carry them as fields and text lines as ``key=value``. Reuse the
  common keys: ``topic``, ``partition``, ``offset``, ``message_id``, ``key``,
  ``group``, ``transactional_id``, ``code`` (librdkafka's or gRPC's error
  name), ``reason`` (an error's text), ``count``, ``suppressed``, ``port``,
  ``address``, ``signal``, ``grace_seconds``.
- Keys must not be LogRecord attribute names (``name``, ``msg``, ``args``,
  ``message``, ``module``, ``filename``, ``process``, ``thread`` ...):
  ``logging`` raises KeyError for those.
- Untrusted text (user names, broker errors) is cut by the formatters to
  ``MAX_FIELD_CHARS``.
- Lines that can repeat once per call or per message under failure go
  through a ``Throttle``: the first is logged, then at most one per interval
  with ``suppressed=<n>``, and ``Throttle.flush`` lets a periodic task log
  the skipped count that no later line carried. Metrics counters carry the
  full count.

``ts`` is ISO 8601 in UTC with milliseconds (``2026-05-09T07:35:25.123Z``)
in both formats. Only entry points call ``configure``.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

# Attributes every LogRecord has; anything else came from `extra`.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)

# Untrusted values (user names, broker errors) are cut to this many characters
# so one bad input cannot flood the logs.
MAX_FIELD_CHARS = 256


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS}


def _short(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_FIELD_CHARS:
        return value[:MAX_FIELD_CHARS] + "…"
    return value


def iso_timestamp(created: float) -> str:
    """``created`` (seconds since the epoch) as ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
    moment = datetime.fromtimestamp(created, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = {
            "ts": iso_timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **{k: _short(v) for k, v in _extras(record).items()},
        }
        line = " ".join(f"{k}={_quote(v)}" for k, v in fields.items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = {
            "ts": iso_timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **{k: _short(v) for k, v in _extras(record).items()},
        }
        if record.exc_info:
            fields["exc"] = self.formatException(record.exc_info)
        return json.dumps(fields, default=str, ensure_ascii=False)


def _quote(value: Any) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' "=\n'):
        return json.dumps(text, ensure_ascii=False)
    return text


class Throttle:
    """At most one log line per ``interval`` seconds for each kind of event.

    ``throttle(kind)`` returns None when the line should be
    skipped, else how many lines of that kind were skipped since the last
    one logged (0 for the first)::

        suppressed = throttle("publish failed")
        if suppressed is not None:
            logger.warning("publish failed", extra={..., "suppressed": suppressed})

    Thread-safe: the API calls it from the event loop and librdkafka's thread.
    """

    def __init__(self, interval: float = 5.0, *, clock: Callable[[], float] = time.monotonic):
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        # kind -> (when its last line was logged, lines skipped since)
        self._state: dict[str, tuple[float, int]] = {}

    def __call__(self, kind: str) -> int | None:
        now = self._clock()
        with self._lock:
            state = self._state.get(kind)
            if state is not None and now - state[0] < self.interval:
                self._state[kind] = (state[0], state[1] + 1)
                return None
            self._state[kind] = (now, 0)
            return 0 if state is None else state[1]

    def flush(self, *, force: bool = False) -> list[tuple[str, int]]:
        """The kinds with skipped lines whose interval has passed (any, if ``force``),
        each with its count, which starts again from 0.

        Called periodically, so the count of an outage's last lines is logged
        even when no further event of that kind comes to carry it.
        """
        now = self._clock()
        flushed = []
        with self._lock:
            for kind, (last, skipped) in sorted(self._state.items()):
                if skipped and (force or now - last >= self.interval):
                    self._state[kind] = (now, 0)
                    flushed.append((kind, skipped))
        return flushed


def configure(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # librdkafka logs every failed connection attempt at error level, over
    # and over; the clients' error callbacks report the state changes once.
    logging.getLogger("librdkafka").setLevel(
        logging.DEBUG if root.level <= logging.DEBUG else logging.CRITICAL
    )
