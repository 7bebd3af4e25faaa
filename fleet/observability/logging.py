"""Log set-up: readable lines for people, JSON lines for log pipelines."""

from __future__ import annotations

import json
import logging
import os
import threading
from datetime import UTC, datetime
from typing import TextIO

NOISY = ("amqtt", "transitions", "uvicorn.access", "alembic.runtime.plugins")
# The HTTP server's loggers: with handlers of their own (uvicorn's default set-up) they would
# write plain text past the fleet's format.
UVICORN = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
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


def setup_logging(
    *, verbose: bool = False, fmt: str = "text", stream: TextIO | None = None
) -> None:
    """Every log line of the process in one format (`stream`: stderr unless given), including
    the HTTP server's (which must then run with uvicorn's `log_config=None`), warnings, and
    exceptions that end a thread, tracebacks inside the line."""
    handler = logging.StreamHandler(stream)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for name in UVICORN:
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    for name in NOISY:  # chatty at INFO: the embedded broker's state machine, alembic's imports
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.captureWarnings(True)
    threading.excepthook = _log_thread_exception


def _log_thread_exception(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    thread = args.thread.name if args.thread is not None else "?"
    logging.getLogger("fleet").error(
        "thread %s stopped on an uncaught exception",
        thread,
        exc_info=args.exc_value,
    )
