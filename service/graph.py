"""A circuit's step graph, for the console: every step (in file order, from ``walk``) and the
edges between them (one step after another; a block into the first step of each of its parts).
"""

from __future__ import annotations

from typing import Any

from circuits.compiler import walk
from circuits.errors import NotFoundError
from circuits.model import (
    ActionStep,
    AnyStep,
    CallStep,
    Circuit,
    ForeachStep,
    IfStep,
    ParallelStep,
    WaitForStep,
)
from service.access import Principal, require
from workers.runtime import Runtime


def _kind_label(step: AnyStep) -> tuple[str, str]:
    if isinstance(step, ActionStep):
        return "action", step.action
    if isinstance(step, ParallelStep):
        return "parallel", f"parallel ({len(step.parallel)} branches)"
    if isinstance(step, IfStep):
        return "if", f"if {step.if_}"
    if isinstance(step, ForeachStep):
        return "foreach", f"foreach {step.foreach}"
    if isinstance(step, WaitForStep):
        return "wait_for", f"wait for {step.wait_for.event}"
    if isinstance(step, CallStep):
        return "call", f"call {step.call}"
    raise TypeError(f"not a step: {type(step).__name__}")


def _parts(step: AnyStep) -> list[tuple[str, list[Any]]]:
    """The nested step lists of a block, each with the name of its edge."""
    if isinstance(step, ParallelStep):
        return [(f"branch {i}", b if isinstance(b, list) else [b]) for i, b in enumerate(step.parallel, 1)]
    if isinstance(step, IfStep):
        return [("then", step.then), ("else", step.else_)]
    if isinstance(step, ForeachStep):
        return [("each", step.do)]
    if isinstance(step, WaitForStep):
        return [("on event", step.on_event), ("on timeout", step.on_timeout)]
    return []


def _flat(steps: list[Any]) -> list[AnyStep]:
    return [s for item in steps for s in (_flat(item) if isinstance(item, list) else [item])]


def _link(
    steps: list[Any], section: str, parent: str | None, depth: int, nodes: dict[str, Any], edges: list[Any]
) -> None:
    seq = _flat(steps)
    for prev, step in zip([None, *seq], seq, strict=False):
        nodes[str(step.id)].update(section=section, parent=parent, depth=depth)
        if prev is not None:
            edges.append({"source": prev.id, "target": step.id, "kind": "next", "label": None})
        for label, part in _parts(step):
            if part:
                edges.append({"source": step.id, "target": _flat(part)[0].id, "kind": "part", "label": label})
                _link(part, section, step.id, depth + 1, nodes, edges)


def circuit_graph(circuit: Circuit) -> dict[str, Any]:
    """Nodes (id, kind, label, section, parent, depth) in file order, and edges (source, target, kind, label)."""
    nodes: dict[str, Any] = {}
    for section, steps in (("steps", circuit.steps), ("on_failure", circuit.on_failure)):
        for step in walk(steps):
            kind, label = _kind_label(step)
            nodes[str(step.id)] = {"id": step.id, "kind": kind, "label": label, "section": section}
    edges: list[dict[str, Any]] = []
    _link(circuit.steps, "steps", None, 0, nodes, edges)
    _link(circuit.on_failure, "on_failure", None, 0, nodes, edges)
    return {"name": circuit.name, "nodes": list(nodes.values()), "edges": edges}


def get_graph(rt: Runtime, who: Principal, name: str) -> dict[str, Any]:
    """The step graph of the circuit ``name`` as the caller's workers run it now."""
    require(who, "circuits.read")
    rt.refresh_catalog()
    entry = rt.catalog.entries.get(name)
    if entry is None or not who.sees(entry.tenant):
        raise NotFoundError(f"no circuit {name!r}")
    return circuit_graph(entry.circuit)
