"""An action the observability tests run in a real worker: it reports what the worker has loaded."""

from __future__ import annotations

import os
import sys

from celery.signals import before_task_publish, task_prerun
from pydantic import BaseModel

from circuits.actions import ActionContext, action


class ProbeInput(BaseModel):
    pass


class ProbeOutput(BaseModel):
    instrumented: bool
    tracer_provider: str | None
    prerun_receivers: int
    publish_receivers: int
    multiproc_dir: str | None


def _provider() -> str | None:
    """The global tracer provider's class; None when nothing imported the tracing API (redis-py may import
    the SDK's metrics for its own, off-by-default, observability)."""
    trace = sys.modules.get("opentelemetry.trace")
    return type(trace.get_tracer_provider()).__name__ if trace is not None else None


@action("ops.probe", queue="core", side_effects=False)
def probe(ctx: ActionContext, inp: ProbeInput) -> ProbeOutput:
    """What this pool process has imported and hooked (tracing must cost nothing when off)."""
    return ProbeOutput(
        instrumented="opentelemetry.instrumentation.celery" in sys.modules,
        tracer_provider=_provider(),
        prerun_receivers=len(task_prerun.receivers),
        publish_receivers=len(before_task_publish.receivers),
        multiproc_dir=os.environ.get("PROMETHEUS_MULTIPROC_DIR"),
    )
