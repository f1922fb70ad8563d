"""Worker log lines that say which run, circuit, step, action, attempt and tenant they belong to.

``CIRCUIT_LOG_FORMAT=json`` writes one JSON object a line; ``text`` (the default) keeps Celery's
format and puts ``[run=... circuit=... step=... action=... attempt=... tenant=...]`` before the
message. The fields come from the :class:`workers.context.StepLog` adapter the steps log through,
and, for any other line written while a step's task runs (a library's logger, a print), from
the task's own message. No argument, output or event data is written: Celery's "Task ...
succeeded" line loses its return value (the run context) for our tasks, and a password in a
URL, or a ``password=``/``token=``/``secret=`` value, is masked.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

from workers.tagging import describe

FIELDS = ("run", "circuit", "step", "action", "attempt", "tenant")
_SECRETS = [
    (re.compile(r"(://[^/@:\s]*:)[^/@\s]*@"), r"\1***@"),
    (re.compile(r"(?i)\b(password|passwd|secret|token|api_key|apikey)=([^\s&,;]+)"), r"\1=***"),
]


def mask(text: str) -> str:
    for pattern, repl in _SECRETS:
        text = pattern.sub(repl, text)
    return text


def _task_fields() -> dict[str, Any]:
    """Fields of the step whose task this thread is running, if any."""
    from celery._state import get_current_task

    task = get_current_task()
    req = getattr(task, "request", None)
    if task is None or req is None or req.id is None:
        return {}
    out: dict[str, Any] = {"task_id": req.id, "task": task.name}
    about = describe(task.name, req.args or (), req.kwargs or {})
    if about is not None:
        out.update((k, v) for k, v in about.items() if v is not None)
        out["attempt"] = int(req.retries or 0) + 1 - int((req.kwargs or {}).get("waits", 0) or 0)
    return out


def fields(record: logging.LogRecord) -> dict[str, Any]:
    out = _task_fields()
    given = getattr(record, "circuit_fields", None)  # from StepLog: wins over the task's
    if given:
        out.update((k, v) for k, v in given.items() if v is not None)
    return out


def _quiet_return_value(record: logging.LogRecord) -> None:
    """Celery logs each task's return value; ours is the run context, event data included."""
    args = record.args
    if isinstance(args, dict) and "return_value" in args and str(args.get("name", "")).startswith("circuit."):
        record.args = {**args, "return_value": "<run context>"}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, process, message, the step's fields, the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        _quiet_return_value(record)
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "process": record.processName,
            "pid": record.process,
            "msg": mask(record.getMessage()),
        }
        doc.update(fields(record))
        if record.exc_info:
            doc["exc"] = mask(self.formatException(record.exc_info))
        elif record.exc_text:
            doc["exc"] = mask(record.exc_text)
        return json.dumps(doc, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """Celery's own formatter (``inner``), the step's fields put before the message."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        _quiet_return_value(record)
        found = fields(record)
        prefix = " ".join(f"{k}={found[k]}" for k in FIELDS if found.get(k) is not None)
        saved = record.msg, record.args
        text = mask(record.getMessage())
        record.msg, record.args = (f"[{prefix}] {text}" if prefix else text), None
        try:
            return self.inner.format(record)
        finally:
            record.msg, record.args = saved


def install(logger: logging.Logger, fmt: str) -> None:
    """Put our formatter on every handler of ``logger`` (Celery's ``after_setup_*logger`` signals)."""
    for handler in logger.handlers:
        current = handler.formatter or logging.Formatter()
        if isinstance(current, (JsonFormatter, TextFormatter)):
            continue
        handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter(current))


def on_setup_logger(logger: logging.Logger | None = None, **_: Any) -> None:
    """``after_setup_logger`` and ``after_setup_task_logger``."""
    from circuits.settings import get_settings

    if logger is not None:
        install(logger, get_settings().log_format)
