"""OpenTelemetry tracing: one trace per event and the runs it starts, through every step, retry
and branch, across workers.

Off by default, and then free: nothing of OpenTelemetry is imported and no signal handler is
connected. It is on when the standard variables ask for an exporter: ``OTEL_TRACES_EXPORTER``
(``otlp``, ``console``; ``none`` is off), or an OTLP endpoint (``OTEL_EXPORTER_OTLP_ENDPOINT``,
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``); ``OTEL_SDK_DISABLED=true`` wins. The OTLP protocol is
``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`` / ``OTEL_EXPORTER_OTLP_PROTOCOL`` (``http/protobuf``, the
default, or ``grpc``); headers, timeouts, sampler, batch delays and resource attributes come
from their own ``OTEL_*`` variables, read by the SDK.

What a trace holds: the Celery instrumentation's spans (``apply_async/<task>`` where a message
is sent, ``run/<task>`` where it runs, the context carried in the message headers, so a chain's
next task, a chord's join, a retry and a branch's replacement are children of the task that
sent them), and ours inside each ``run/`` span: ``circuit.step`` with the circuit, run, step,
action, attempt and tenant, and ``circuit.ingest`` with the event. A run is started by its
ingest task, so its trace begins at the event (at the producer, when the producer traces too).
A run resumed by the watchdog goes on in a new trace.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)

INGEST_TASK = "circuit.ingest"
_provider: Any = None
_spans: dict[str, Any] = {}  # task id -> our span, between prerun and postrun


def enabled(env: Mapping[str, str] = os.environ) -> bool:
    """Whether the OTEL_* variables ask for traces to be exported."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter != "none"
    return bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def _exporters(env: Mapping[str, str]) -> list[Any]:
    out: list[Any] = []
    for name in [n.strip().lower() for n in (env.get("OTEL_TRACES_EXPORTER") or "otlp").split(",") if n.strip()]:
        if name == "console":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            out.append(ConsoleSpanExporter())
        elif name == "otlp":
            protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
            if (protocol or "http/protobuf").strip().lower() == "grpc":
                from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
            else:
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # type: ignore[assignment]
            out.append(OTLPSpanExporter())
        elif name != "none":
            log.warning("tracing: unknown OTEL_TRACES_EXPORTER %r ignored", name)
    return out


def setup(service_name: str = "circuit-os") -> bool:
    """Start tracing in this process if the OTEL_* variables ask for it (idempotent). A worker calls it in
    its main process before the pool forks; the SDK restarts its export thread in each child."""
    global _provider
    if _provider is not None:
        return True
    if not enabled():
        return False
    try:
        from opentelemetry import trace
        from opentelemetry.instrumentation.celery import CeleryInstrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        log.warning("tracing: OTEL_* asks for traces but %s is missing: pip install 'circuit-os[otel]'", exc.name)
        return False
    named = "OTEL_SERVICE_NAME" in os.environ or "service.name=" in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
    provider = TracerProvider(resource=Resource.create({} if named else {"service.name": service_name}))
    for exporter in _exporters(os.environ):
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    CeleryInstrumentor().instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]
    _connect()  # after the instrumentation's handlers, so its run span is current when ours starts
    _provider = provider
    log.info("tracing: on (%s)", os.environ.get("OTEL_TRACES_EXPORTER") or "otlp")
    return True


def flush(timeout_ms: int = 5000) -> None:
    """Export what is buffered (a pool child exiting, a worker stopping)."""
    if _provider is not None:
        _provider.force_flush(timeout_ms)


def _connect() -> None:
    from celery.signals import task_failure, task_postrun, task_prerun, task_retry

    task_prerun.connect(_prerun, dispatch_uid="circuit-trace-prerun", weak=False)
    task_retry.connect(_retry, dispatch_uid="circuit-trace-retry", weak=False)
    task_failure.connect(_failure, dispatch_uid="circuit-trace-failure", weak=False)
    task_postrun.connect(_postrun, dispatch_uid="circuit-trace-postrun", weak=False)


def _step_attributes(about: dict[str, Any]) -> dict[str, Any]:
    return {f"circuit.{k}" if k != "circuit" else "circuit.name": v for k, v in about.items() if v is not None}


@contextmanager
def inline_step(ctx: dict[str, Any], step_id: str, task_name: str) -> Iterator[None]:
    """A ``circuit.step`` span for a step made inside another step's task (a parallel block's join,
    :mod:`workers.joins`), under that task's span; nothing when tracing is off."""
    if _provider is None:
        yield
        return
    from opentelemetry import trace

    from workers.tagging import describe

    about = describe(task_name, (ctx,), {"step": {"id": step_id}})
    attrs = {**_step_attributes(about or {}), "circuit.attempt": 1}
    with trace.get_tracer(__name__).start_as_current_span("circuit.step", attributes=attrs):
        yield


def _attributes(task: Any, args: Any, kwargs: Any) -> tuple[str, dict[str, Any]] | None:
    from workers.tagging import describe

    about = describe(task.name, args, kwargs)
    if about is not None:
        attrs = _step_attributes(about)
        retries = int(getattr(task.request, "retries", 0) or 0)
        attrs["circuit.attempt"] = retries + 1 - int((kwargs or {}).get("waits", 0) or 0)
        return "circuit.step", attrs
    if task.name == INGEST_TASK and args and isinstance(args[0], dict):
        event = args[0]
        return "circuit.ingest", {
            "circuit.event.id": str(event.get("id")),
            "circuit.event.type": str(event.get("type")),
            "circuit.tenant": str(event.get("tenant", "default")),
        }
    return None


def _prerun(task_id: str | None = None, task: Any = None, args: Any = None, kwargs: Any = None, **_: Any) -> None:
    from opentelemetry import trace

    found = _attributes(task, args, kwargs) if task is not None and task_id else None
    if found is None:
        return
    name, attrs = found
    current = trace.get_current_span()  # the instrumentation's run/<task> span
    if current.is_recording():
        current.set_attributes(attrs)
    _spans[task_id] = trace.get_tracer(__name__).start_span(name, attributes=attrs)  # type: ignore[index]


def _retry(request: Any = None, reason: Any = None, **_: Any) -> None:
    span = _spans.get(getattr(request, "id", None) or "")
    if span is not None:
        span.add_event("retry", {"reason": str(reason)[:500]})


def _failure(task_id: str | None = None, exception: BaseException | None = None, **_: Any) -> None:
    from opentelemetry.trace import Status, StatusCode

    span = _spans.get(task_id or "")
    if span is not None:
        span.set_status(Status(StatusCode.ERROR, f"{type(exception).__name__}: {exception}"[:500]))


def _postrun(task_id: str | None = None, state: str | None = None, **_: Any) -> None:
    span = _spans.pop(task_id or "", None)
    if span is not None:
        span.set_attribute("celery.state", str(state))
        span.end()
