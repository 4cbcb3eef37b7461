"""Structured JSON logs with request ids, and never patient identifiers.

Log ids (request, referral, case, person), routes and statuses. As a safety net, a processor
drops any event key that names an identifying field, whatever the caller passed.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson
import structlog

# Keys that must never reach a log line, even by mistake.
IDENTIFYING_KEYS = frozenset(
    {
        "nhs_number",
        "given_name",
        "family_name",
        "name",
        "date_of_birth",
        "dob",
        "postcode",
        "phone",
        "email",
        "reason",
        "address",
        "body",
        "payload",
        "query",
        "query_string",
    }
)


def _drop_identifying_keys(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    for key in IDENTIFYING_KEYS.intersection(event):
        event[key] = "[redacted]"
    return event


def _orjson_dumps(event: dict[str, Any], default: Any = None) -> str:
    """structlog's JSONRenderer serializer: orjson, as two lines are logged per request (the
    difference it makes is in bench/RESULTS.md)."""
    return orjson.dumps(event, default=default, option=orjson.OPT_NON_STR_KEYS).decode()


def configure_logging(level: str = "INFO", json_output: bool = True) -> None:
    """Route structlog and the standard library (uvicorn, sqlalchemy) through one JSON renderer."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _drop_identifying_keys,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_orjson_dumps)
        if json_output
        else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's access log prints the raw query string (it may hold an NHS number): we log
    # requests ourselves, by route template, in the request middleware.
    logging.getLogger("uvicorn.access").disabled = True
    # httpx logs every URL it fetches at INFO; URLs can carry search parameters.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
