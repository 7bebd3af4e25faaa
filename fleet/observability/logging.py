"""Log set-up: readable lines for people, JSON lines for log pipelines."""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime

NOISY = ("amqtt", "transitions", "uvicorn.access", "alembic.runtime.plugins")
LOG_FORMATS = ("text", "json")


def log_format_from_env() -> str:
    """FLEET_LOG_FORMAT, checked here: logging starts before the settings are loaded, and a
    typo must not quietly give a log collector text lines."""
    fmt = os.environ.get("FLEET_LOG_FORMAT", "text")
    if fmt not in LOG_FORMATS:
        raise ValueError(f"FLEET_LOG_FORMAT {fmt!r} is not a log format: use text or json")
    return fmt


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


def setup_logging(*, verbose: bool = False, fmt: str = "text") -> None:
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for name in NOISY:  # chatty at INFO: the embedded broker's state machine, alembic's imports
        logging.getLogger(name).setLevel(logging.WARNING)
