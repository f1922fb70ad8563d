"""The run context: the one small dict that flows from step to step in the messages.

``{"run": {...ids}, "event": {...}, "steps": {id: output}, "vars": {...}, "loop": None | {...}}``

Inside a ``foreach`` the messages carry a slim form instead, the rest stored once per loop
(:mod:`workers.frames`); the functions here see the whole context.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from circuits.events import Event


def new_context(
    run_id: str, circuit: str, version: str, event: Event, event_ctx: dict[str, Any], variables: dict[str, Any]
) -> dict[str, Any]:
    return {
        "run": {
            "id": run_id,
            "circuit": circuit,
            "version": version,
            "event_id": event.id,
            "tenant": event.tenant,
            "started_at": time.time(),  # when the run was accepted (its duration in the metrics)
            # how many circuit writes led to this run, and by which circuits (record triggers)
            "depth": event.chaindepth,
            "chain": list(event.chain),
        },
        "event": event_ctx,
        "steps": {},
        "vars": variables,
        "loop": None,
    }


def scope(ctx: dict[str, Any]) -> dict[str, Any]:
    """The names conditions and templates see."""
    loop = ctx.get("loop") or {}
    return {
        "event": ctx["event"],
        "steps": ctx["steps"],
        "vars": ctx.get("vars", {}),
        "run": ctx["run"],
        "item": loop.get("item"),
        "index": loop.get("index"),
        "error": ctx.get("error"),
    }


def step_key(ctx: dict[str, Any], step_id: str) -> str:
    """The step's id in the ledger: inside a foreach, prefixed by the loop and item index."""
    loop = ctx.get("loop")
    return f"{loop['path']}{step_id}" if loop else step_id


def with_output(ctx: dict[str, Any], step_id: str, output: Any) -> dict[str, Any]:
    ctx["steps"][step_id] = output
    return ctx


def loop_of(ctx: dict[str, Any], loop_id: str, index: int, item: Any, frame: str | None = None) -> dict[str, Any]:
    """The ``loop`` of item ``index`` of loop ``loop_id`` entered from ``ctx``; ``frame`` names the
    stored context its items share (:mod:`workers.frames`)."""
    outer = ctx.get("loop")
    path = f"{outer['path'] if outer else ''}{loop_id}[{index}]."
    loop = {"id": loop_id, "index": index, "item": item, "path": path, "outer": outer}
    if frame is not None:
        loop["frame"] = frame
    return loop


def leave_loop(item_ctx: dict[str, Any], body_ids: list[str]) -> dict[str, Any]:
    """The context as it was before the loop, from one item's context."""
    steps = {k: v for k, v in item_ctx["steps"].items() if k not in body_ids}
    return {**item_ctx, "steps": steps, "loop": item_ctx["loop"]["outer"]}


def merge(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Join parallel branches: each branch only added its own step outputs."""
    base = results[0]
    for other in results[1:]:
        base["steps"].update(other["steps"])
    return base


class StepLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Log lines that carry run, circuit and step."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        # fields, not text: workers.logs writes them as JSON keys or as a [run=... step=...] prefix
        kwargs["extra"] = {**(kwargs.get("extra") or {}), "circuit_fields": self.extra}
        return msg, kwargs


def step_log(ctx: dict[str, Any], key: str, name: str = "circuits.run") -> StepLog:
    run = ctx["run"]
    fields = {"run": run["id"], "circuit": run["circuit"], "step": key, "tenant": run.get("tenant")}
    return StepLog(logging.getLogger(name), fields)
