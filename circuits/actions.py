"""Actions: the typed functions that circuit steps call.

An action is a plain function ``fn(ctx, inp) -> out`` whose input and output are
pydantic models. ``@action`` only records metadata on the function (like
``@activity.defn`` in Temporal); registration is an explicit list of modules
given to :meth:`ActionRegistry.from_modules`, so nothing registers itself by
import side effect and a test can build a registry of exactly what it needs.

Actions are callable in a test without a broker: build an :class:`ActionContext`
with :meth:`ActionContext.for_test` and call the function.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, TypeVar, get_type_hints

from pydantic import BaseModel

from circuits.errors import DefinitionError
from circuits.events import MAX_CHAIN
from circuits.rates import parse_rate

__all__ = [
    "QUEUES",
    "ActionContext",
    "ActionRegistry",
    "ActionSpec",
    "Resources",
    "action",
    "entry_point_modules",
]

#: The queues work is split across, one per kind of work, so ops can size pools apart.
QUEUES: tuple[str, ...] = ("events", "core", "data", "ml", "rag", "graph", "llm", "notify")

_SPEC_ATTR = "__circuit_action__"
#: The entry point group through which other packages add actions (each entry point names a module).
ENTRY_POINT_GROUP = "circuit_os.actions"
T = TypeVar("T")


@dataclass(frozen=True)
class ActionSpec:
    """What the engine knows about one action."""

    name: str
    fn: Callable[..., Any]
    input_model: type[BaseModel]
    output_model: type[BaseModel]
    queue: str = "core"
    retries: int = 0
    timeout_s: float | None = None
    rate_limit: str | None = None
    description: str = ""
    side_effects: bool = True

    def run(self, ctx: ActionContext, inputs: dict[str, Any]) -> dict[str, Any]:
        """Validate ``inputs``, call the action and return its output as JSON-able data."""
        inp = self.input_model.model_validate(inputs)
        out = self.fn(ctx, inp)
        if not isinstance(out, self.output_model):
            out = self.output_model.model_validate(out)
        return out.model_dump(mode="json")


def action(
    name: str,
    *,
    queue: str = "core",
    retries: int = 0,
    timeout_s: float | None = None,
    side_effects: bool = True,
    rate_limit: str | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark ``fn(ctx, inp: InModel) -> OutModel`` as the action ``name``.

    Args:
        name: dotted action name used in circuit files, e.g. ``"ml.predict"``.
        queue: the Celery queue for this kind of work (one of :data:`QUEUES`).
        retries: default retry limit; a step's ``retry.max`` overrides it.
        timeout_s: default time limit of one attempt; a step's ``timeout_s`` overrides it.
        side_effects: False only if the action just computes its output from its input (no
            I/O); a backtest's dry run then calls it to learn its output.
        rate_limit: calls allowed across all workers, e.g. ``"1/s"`` (see :mod:`circuits.rates`);
            a step's ``rate_limit`` overrides it.
    """
    if queue not in QUEUES:
        raise DefinitionError(f"action {name!r}: unknown queue {queue!r}; use one of {', '.join(QUEUES)}")
    if "." not in name or not all(part.isidentifier() for part in name.split(".")):
        raise DefinitionError(f"action name {name!r} must be dotted identifiers, like 'core.log'")
    if rate_limit is not None:
        try:
            parse_rate(rate_limit)
        except ValueError as exc:
            raise DefinitionError(f"action {name!r}: rate_limit {exc}") from None

    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        hints = get_type_hints(fn)
        params = list(inspect.signature(fn).parameters)
        if len(params) != 2:
            raise DefinitionError(f"action {name!r} must take (ctx, inp), it takes {params}")
        input_model = hints.get(params[1])
        output_model = hints.get("return")
        for what, model in (("input", input_model), ("output", output_model)):
            if not (isinstance(model, type) and issubclass(model, BaseModel)):
                raise DefinitionError(f"action {name!r}: {what} must be annotated with a pydantic model")
        spec = ActionSpec(
            name=name,
            fn=fn,
            input_model=input_model,  # type: ignore[arg-type]
            output_model=output_model,  # type: ignore[arg-type]
            queue=queue,
            retries=retries,
            timeout_s=timeout_s,
            rate_limit=rate_limit,
            side_effects=side_effects,
            description=(inspect.getdoc(fn) or "").split("\n")[0],
        )
        setattr(fn, _SPEC_ATTR, spec)
        return fn

    return mark


def entry_point_modules(group: str = ENTRY_POINT_GROUP) -> list[str]:
    """Modules named by installed packages' ``circuit_os.actions`` entry points (plugins), sorted.

    A plugin declares, e.g. in its pyproject.toml,
    ``[project.entry-points."circuit_os.actions"] acme = "acme_circuits.actions"``; the workers
    then register that module's ``@action`` functions beside ``CIRCUIT_ACTION_MODULES``.
    """
    from importlib.metadata import entry_points

    return sorted({ep.value.split(":", 1)[0].strip() for ep in entry_points(group=group)})


class ActionRegistry:
    """The actions a worker can run, looked up by name."""

    def __init__(self, specs: Iterable[ActionSpec] = ()) -> None:
        self._specs: dict[str, ActionSpec] = {}
        for spec in specs:
            self.add(spec)

    @classmethod
    def from_modules(cls, modules: Iterable[str | ModuleType], optional: Iterable[str] = ()) -> ActionRegistry:
        """Collect every ``@action`` function defined in ``modules`` (dotted names or modules).

        A module named in ``optional`` that is not installed is skipped with a warning.
        """
        registry = cls()
        skip_missing = set(optional)
        for mod in modules:
            try:
                module = importlib.import_module(mod) if isinstance(mod, str) else mod
            except ModuleNotFoundError as exc:
                if mod in skip_missing and exc.name and mod.startswith(exc.name):
                    logging.getLogger(__name__).warning("action module %s is not installed; skipped", mod)
                    continue
                raise
            for value in vars(module).values():
                spec = getattr(value, _SPEC_ATTR, None)
                if isinstance(spec, ActionSpec) and spec.name not in registry:
                    registry.add(spec)
        return registry

    def add(self, spec: ActionSpec) -> None:
        existing = self._specs.get(spec.name)
        if existing is not None and existing.fn is not spec.fn:
            raise DefinitionError(f"action {spec.name!r} is defined twice")
        self._specs[spec.name] = spec

    def get(self, name: str) -> ActionSpec:
        """Return the action ``name`` or raise a DefinitionError suggesting close names."""
        try:
            return self._specs[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._specs, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise DefinitionError(f"unknown action {name!r}{hint}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(sorted(self._specs.values(), key=lambda s: s.name))

    def __len__(self) -> int:
        return len(self._specs)


class Resources:
    """Per-process resources (DB engines, model caches, HTTP clients), built on first use.

    One instance lives in each worker process; actions reach it through
    ``ctx.resource(name, factory)`` so nothing heavy is built at import time and
    each resource is built once per process, not per task.
    """

    def __init__(self, settings: Any = None) -> None:
        self.settings = settings
        self._items: dict[str, Any] = {}
        self._lock = threading.RLock()  # a factory may ask for another resource

    def get(self, name: str, factory: Callable[[], T]) -> T:
        item = self._items.get(name)
        if item is None:
            with self._lock:
                item = self._items.get(name)
                if item is None:
                    item = self._items[name] = factory()
        return item

    def close(self) -> None:
        """Close every resource that has a ``close()``; called at process shutdown."""
        for item in self._items.values():
            closer = getattr(item, "close", None) or getattr(item, "dispose", None)
            if callable(closer):
                try:
                    closer()
                except Exception:  # noqa: BLE001 - shutdown must go on
                    logging.getLogger(__name__).warning("closing a resource failed", exc_info=True)
        self._items.clear()


@dataclass
class ActionContext:
    """What an action knows about the step it runs in, and the way to its resources."""

    run_id: str
    step_id: str
    circuit: str
    attempt: int = 1
    event: dict[str, Any] = field(default_factory=dict)
    resources: Resources = field(default_factory=Resources)
    log: logging.LoggerAdapter[logging.Logger] = field(
        default_factory=lambda: logging.LoggerAdapter(logging.getLogger("circuits.action"), {})
    )
    #: Where :meth:`emit` hands events: the engine's ingest in a worker, a list in a test.
    emitter: Callable[[dict[str, Any]], None] | None = None
    emitted: list[dict[str, Any]] = field(default_factory=list)

    @property
    def settings(self) -> Any:
        return self.resources.settings

    def emit(self, type: str, data: Any, subject: str | None = None) -> dict[str, Any]:
        """Publish an event from inside an action (``ml.score_crossed``, ``rag.knowledge_stale``, ...).

        Its id is derived from run, step and the event's place among this step's events, so a
        step that is retried or redelivered emits it once; it goes one level deeper in the chain.
        """
        envelope = {
            "id": f"emit:{self.run_id}:{self.step_id}:{len(self.emitted)}",
            "type": type,
            "source": f"circuit-os/{self.circuit}",
            "subject": subject,
            "data": data,
            "tenant": self.event.get("tenant", "default"),
            "chaindepth": int(self.event.get("chaindepth") or 0) + 1,
            "chain": [*(self.event.get("chain") or []), self.circuit][-MAX_CHAIN:],
        }
        self.emitted.append(envelope)
        if self.emitter is not None:
            self.emitter(envelope)
        return envelope

    def resource(self, name: str, factory: Callable[[], T]) -> T:
        """The per-process resource ``name``, built by ``factory`` the first time."""
        return self.resources.get(name, factory)

    @classmethod
    def for_test(cls, settings: Any = None, **kw: Any) -> ActionContext:
        """A context for calling an action directly, outside any worker."""
        kw.setdefault("run_id", "test-run")
        kw.setdefault("step_id", "test-step")
        kw.setdefault("circuit", "test")
        return cls(resources=Resources(settings), **kw)
