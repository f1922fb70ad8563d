"""One trace per run, from the event through every step, retry and branch, collected from real workers.

The workers export with OpenTelemetry's OTLP/HTTP exporter (configured by OTEL_* variables only)
to a small OTLP receiver in this test on 127.0.0.1. Two workers share the work, so the trace
context crosses processes and hosts' worth of message headers.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.conftest import wait_for
from tests.ops.harness import Stack
from workers import tracing


class OtlpReceiver:
    """POST /v1/traces (protobuf) -> a list of spans as dicts."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                request = ExportTraceServiceRequest.FromString(body)
                receiver.add(request)
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def add(self, request: ExportTraceServiceRequest) -> None:
        for rs in request.resource_spans:
            service = next((a.value.string_value for a in rs.resource.attributes if a.key == "service.name"), "")
            for ss in rs.scope_spans:
                for span in ss.spans:
                    attrs = {a.key: _value(a.value) for a in span.attributes}
                    with self.lock:
                        self.spans.append(
                            {
                                "trace": span.trace_id.hex(),
                                "id": span.span_id.hex(),
                                "parent": span.parent_span_id.hex() or None,
                                "name": span.name,
                                "attrs": attrs,
                                "events": [e.name for e in span.events],
                                "service": service,
                            }
                        )

    def __enter__(self) -> OtlpReceiver:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


@pytest.fixture(scope="module")
def traced(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, OtlpReceiver]]:
    with OtlpReceiver() as receiver, Stack(postgres_url, tmp_path_factory.mktemp("ops-tracing")) as stack:
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OTEL_SERVICE_NAME": "circuit-os-test",
        }
        stack.worker("-c", "1", env=env)
        stack.worker("-c", "1", env=env)
        yield stack, receiver


def test_enabled_only_when_otel_variables_ask() -> None:
    assert not tracing.enabled({})
    assert tracing.enabled({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert tracing.enabled({"OTEL_TRACES_EXPORTER": "console"})
    assert not tracing.enabled({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"})
    assert not tracing.enabled({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"})


def _trace_of(receiver: OtlpReceiver, run: dict[str, Any]) -> list[dict[str, Any]]:
    """Every span of the run's trace, once the run's last step's span has arrived."""
    last = run["steps"][-1]["step_id"]

    def arrived() -> list[dict[str, Any]] | None:
        with receiver.lock:
            spans = list(receiver.spans)
        mine = [s for s in spans if s["attrs"].get("circuit.run") == run["id"]]
        if not any(s["name"] == "circuit.step" and s["attrs"].get("circuit.step") == last for s in mine):
            return None
        traces = {s["trace"] for s in mine}
        found = [s for s in spans if s["trace"] in traces]
        ids = {s["id"] for s in found}
        # a parent span ends after its children and may come in a later export batch: wait for it too
        return found if all(s["parent"] is None or s["parent"] in ids for s in found) else None

    return wait_for(arrived, 20, f"the spans of run {run['id']}")


def _check_tree(spans: list[dict[str, Any]], run: dict[str, Any], event_id: str) -> dict[str, dict[str, Any]]:
    mine = [s for s in spans if s["attrs"].get("circuit.run") == run["id"]]
    assert len({s["trace"] for s in mine}) == 1, "a run's spans are in more than one trace"
    by_id = {s["id"]: s for s in spans}
    roots = [s for s in spans if s["parent"] is None]
    # the trace starts at the event: the ingest task's run span, with our circuit.ingest span under it
    assert [r["name"] for r in roots] == ["run/circuit.ingest"], [r["name"] for r in roots]
    ingest = next(s for s in spans if s["name"] == "circuit.ingest")
    assert ingest["attrs"]["circuit.event.id"] == event_id
    for span in spans:  # every parent is in the trace: one connected tree
        assert span["parent"] is None or span["parent"] in by_id, span["name"]
    # every step in the ledger has a circuit.step span, under a run/<task> span of that step's task
    steps = {s["attrs"]["circuit.step"]: s for s in mine if s["name"] == "circuit.step"}
    for step in run["steps"]:
        span = steps[step["step_id"]]
        parent = by_id[span["parent"]]
        assert parent["name"].startswith("run/circuit."), parent["name"]
        assert parent["attrs"]["circuit.run"] == run["id"]
        assert span["attrs"]["circuit.name"] == run["circuit"] and span["attrs"]["circuit.tenant"] == "default"
        # and that run span was sent from inside the trace (apply_async/... under an earlier task)
        sent = by_id[parent["parent"]]
        assert sent["name"].startswith("apply_async/"), sent["name"]
    return steps


def test_a_branching_run_is_one_connected_trace(traced: tuple[Stack, OtlpReceiver]) -> None:
    stack, receiver = traced
    event_id = stack.publish("ops.branch", {"score": 90}, subject="lead-1")
    run = stack.run_of(event_id)
    assert run["status"] == "succeeded"
    steps = _check_tree(_trace_of(receiver, run), run, event_id)
    assert {"start", "route", "hot", "n1", "n2", "notify", "after"} <= set(steps)
    assert steps["route"]["attrs"]["circuit.action"] == "if"
    assert steps["notify"]["attrs"]["circuit.action"] == "parallel"
    assert steps["n2"]["attrs"]["circuit.action"] == "core.log"


def test_retries_are_children_in_the_same_trace(traced: tuple[Stack, OtlpReceiver]) -> None:
    stack, receiver = traced
    event_id = stack.publish("ops.retry")
    run = stack.run_of(event_id)
    assert run["status"] == "succeeded"
    spans = _trace_of(receiver, run)
    _check_tree(spans, run, event_id)
    attempts = sorted(
        s["attrs"]["circuit.attempt"]
        for s in spans
        if s["name"] == "circuit.step" and s["attrs"].get("circuit.step") == "flaky"
    )
    assert attempts == [1, 2, 3]
    retried = [s for s in spans if s["name"] == "circuit.step" and "retry" in s["events"]]
    assert len(retried) == 2
    children = defaultdict(list)
    for s in spans:
        children[s["parent"]].append(s)
    # the retry of attempt n is sent from inside attempt n's task: attempt n+1 descends from it
    runs = {s["attrs"]["circuit.attempt"]: s for s in spans if s["name"] == "run/circuit.action.core.fail"}
    for n in (1, 2):
        sent = [c for c in children[runs[n]["id"]] if c["name"].startswith("apply_async/")]
        assert runs[n + 1]["parent"] in {c["id"] for c in sent}


def test_every_run_is_one_trace_and_tracing_is_on_in_the_pool(traced: tuple[Stack, OtlpReceiver]) -> None:
    stack, receiver = traced
    runs = [stack.run_of(stack.publish("ops.sequence", {"n": i})) for i in range(6)]
    for run in runs:
        assert len({s["trace"] for s in _trace_of(receiver, run) if s["attrs"].get("circuit.run") == run["id"]}) == 1
    assert {s["service"] for s in receiver.spans} == {"circuit-os-test"}
    out = stack.run_of(stack.publish("ops.probe"))["steps"][0]["output"]
    assert out["instrumented"] and out["tracer_provider"] == "TracerProvider"
