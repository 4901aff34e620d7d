"""Log lines: one JSON object per line (or text for a person at a terminal), each carrying the
id of the request it serves.

The request id lives in a context variable: the HTTP layer sets it for each request, and the
queue carries it with the messages that request sends, so a conversion's lines and those of
the callback it triggers carry the id of the request that submitted it. Log lines pass
through :func:`redact` on their way out: an API key, a webhook secret, a bearer token, a
signed link's signature or a callback URL's query string never reach the log, whatever a
message or a traceback happened to contain.
"""

from __future__ import annotations

import json
import logging
import logging.config
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["auto", "json", "text"]

REQUEST_ID: ContextVar[str | None] = ContextVar("wavforge_request_id", default=None)
# Loggers uvicorn configures for itself; ours take their lines instead.
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
# httpx logs every request with its full URL; a callback's attempt is logged by the core.
# Huey logs two lines for every message it runs (three or four messages a conversion): the
# core logs what a task did, and formatting Huey's lines took about 1 % of a worker's CPU.
# Their warnings and errors still come through.
QUIET_LOGGERS = ("httpx", "httpcore", "huey")
# ...but its consumer's few lines (started, shutting down gracefully) keep the chosen level.
HUEY_CONSUMER = "huey.consumer"


def current_request_id() -> str | None:
    return REQUEST_ID.get()


@contextmanager
def request_context(request_id: str | None) -> Iterator[None]:
    """Lines logged inside carry ``request_id`` (a queue task, run for a request)."""
    token = REQUEST_ID.set(request_id)
    try:
        yield
    finally:
        REQUEST_ID.reset(token)


_SECRETS = re.compile(
    r"(?P<url>\bhttps?://[^\s?#\"'<>]+)\?[^\s\"'<>]*"  # a URL's query string
    r"|(?P<param>\b\w*(?:signature|token|key|secret)=)[^&\s\"'<>]+"  # e.g. a link's signature
    r"|(?P<bearer>\bBearer\s+)\S+"
    r"|\b(?P<kind>wf_|whsec_)[A-Za-z0-9_\-+/=]{8,}",  # an API key, a webhook secret
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """``text`` without anything that would let a reader of the log act as someone else."""
    return _SECRETS.sub(_mask, text) if text else text


def _mask(match: re.Match[str]) -> str:
    if match["url"]:
        return f"{match['url']}?[redacted]"
    prefix = match["param"] or match["bearer"] or match["kind"]
    return f"{prefix}[redacted]"


class RequestIdFilter(logging.Filter):
    """Stamps each record with the current request id (None outside any request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, exc_info."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        request_id = getattr(record, "request_id", None)
        if request_id is not None:
            line["request_id"] = request_id
        if record.exc_info:
            line["exc_info"] = redact(self.formatException(record.exc_info))
        if record.stack_info:
            line["stack_info"] = redact(self.formatStack(record.stack_info))
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``time LEVEL logger [request id] message``, for reading at a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, "request_id", None) is None:
            record.request_id = "-"
        return redact(super().format(record))


def make_formatter(kind: LogFormat = "json", **_uvicorn: object) -> logging.Formatter:
    """The formatter factory the logging configuration names; ``auto`` is text for a person
    at a terminal and JSON for a log collector.

    uvicorn may add its own options (``use_colors``) to the formatters it finds; they are
    ignored here.
    """
    if kind == "auto":
        kind = "text" if sys.stderr.isatty() else "json"
    return JsonFormatter() if kind == "json" else TextFormatter()


def logging_config(log_format: LogFormat, level: str = "INFO") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` that sends every line, uvicorn's too, through one
    stderr handler in ``log_format``."""
    formatter = {"()": f"{__name__}.make_formatter", "kind": log_format}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": f"{__name__}.RequestIdFilter"}},
        # uvicorn expects formatters named "default" and "access" when it adjusts colours.
        "formatters": {"default": formatter, "access": dict(formatter)},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "default",
                "filters": ["request_id"],
            }
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            **{name: {"handlers": [], "propagate": True} for name in UVICORN_LOGGERS},
            **{name: {"level": "WARNING"} for name in QUIET_LOGGERS},
            HUEY_CONSUMER: {"level": level},
        },
    }


def configure(log_format: LogFormat, level: str = "INFO") -> None:
    """Install :func:`logging_config` in this process.

    ``uvicorn.run`` applies a logging configuration of its own when it starts (and in every
    API process it spawns), so ``wavforge serve`` hands it this one as ``log_config``.
    """
    logging.config.dictConfig(logging_config(log_format, level))
