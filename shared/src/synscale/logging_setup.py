"""Structured logs: one JSON object per line on stderr.

Cluster log pipelines (Loki, Cloud Logging, Elasticsearch) index JSON fields without
parsing rules, and a line per record keeps multi-line tracebacks in one event. Every
record carries the service name; `extra={...}` fields of a log call become top-level
keys. SYNSCALE_LOG_FORMAT=text gives the human format for a terminal.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Render a record as one JSON line with timestamp, level, logger, message, service."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
            "thread": record.threadName,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                doc[key] = value
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            doc["stack"] = self.formatStack(record.stack_info)
        return json.dumps(doc, default=str, ensure_ascii=False)


def configure_logging(service: str, env: dict[str, str] | None = None,
                      stream: TextIO | None = None) -> None:
    """Replace the root handlers with one structured handler.

    SYNSCALE_LOG_LEVEL (default INFO) and SYNSCALE_LOG_FORMAT (json | text, default json)
    come from the environment, like all service configuration.
    """
    env = dict(os.environ if env is None else env)
    level_name = env.get("SYNSCALE_LOG_LEVEL", "INFO").upper()
    level = logging.getLevelName(level_name)
    if not isinstance(level, int):
        raise ValueError(f"SYNSCALE_LOG_LEVEL must be a logging level name, got {level_name!r}")
    fmt = env.get("SYNSCALE_LOG_FORMAT", "json").lower()
    if fmt not in {"json", "text"}:
        raise ValueError(f"SYNSCALE_LOG_FORMAT must be 'json' or 'text', got {fmt!r}")
    handler = logging.StreamHandler(stream or sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(logging.Formatter(
            f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # kafka-python is chatty at INFO (every rebalance step); keep its warnings.
    logging.getLogger("kafka").setLevel(max(level, logging.WARNING))
