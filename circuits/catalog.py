"""The circuits a worker runs: loaded from a folder, validated, compiled once, matched to events."""

from __future__ import annotations

import fnmatch
import logging
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from celery.canvas import Signature

from circuits.actions import ActionRegistry
from circuits.compiler import Compiler
from circuits.errors import DefinitionError, PermanentError
from circuits.events import Event
from circuits.expressions import evaluate
from circuits.loader import CircuitFileErrors, Source, circuit_files, load_file
from circuits.model import Circuit
from circuits.validate import validate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    """One circuit ready to run: its model, where it came from, its compiled canvas."""

    circuit: Circuit
    source: Source
    canvas: Signature
    on_failure: Signature | None
    tenant: str | None = None  # a circuit deployed for one tenant sees only that tenant's events
    enabled: bool = True  # a disabled circuit starts nothing; its runs in flight finish
    origin: str = "file"  # "file" or "deployed" (stored through the API, see workers.deployed)

    def serves(self, event_ctx: dict[str, Any]) -> bool:
        """Whether this circuit may start at all for an event: enabled, and of the event's tenant."""
        return self.enabled and (self.tenant is None or self.tenant == event_ctx.get("tenant", "default"))

    @property
    def name(self) -> str:
        return self.circuit.name

    @cached_property
    def version(self) -> str:
        """``<version>+<content digest>``; computed once (it hashed the whole circuit for every event)."""
        return f"{self.circuit.version}+{self.circuit.digest}"

    def accepts_type(self, event_type: str) -> bool:
        """Whether the trigger's event pattern fits ``event_type`` (a cron trigger fits none)."""
        pattern = self.circuit.trigger.event
        return pattern is not None and fnmatch.fnmatchcase(event_type, pattern)

    def matches(self, event_type: str, event_ctx: dict[str, Any]) -> bool:
        """Whether this circuit's trigger fits an event: its type pattern, then its condition.

        The one matching rule, shared by :meth:`Catalog.match` and the backtest.

        Raises:
            PermanentError: the condition failed on this event's data (the engine counts
                that as not met; a backtest reports it).
        """
        if self.circuit.trigger.stateful or not self.accepts_type(event_type) or not self.serves(event_ctx):
            return False
        when = self.circuit.trigger.when
        return not when or bool(evaluate(when, {"event": event_ctx}))

    def observes(self, event_type: str, event_ctx: dict[str, Any]) -> bool:
        """Whether a stateful trigger (threshold, count, all_of, ...) reads this event.

        Raises:
            PermanentError: the condition failed on this event's data.
        """
        trigger = self.circuit.trigger
        if not trigger.stateful or not any(fnmatch.fnmatchcase(event_type, p) for p in trigger.listens_to()):
            return False
        if not self.serves(event_ctx):
            return False
        return not trigger.when or bool(evaluate(trigger.when, {"event": event_ctx}))


def check_path(
    path: str | Path, registry: ActionRegistry
) -> tuple[list[tuple[Circuit, Source]], list[DefinitionError]]:
    """Load and validate every circuit file at ``path``; return the good ones and all problems."""
    good: list[tuple[Circuit, Source]] = []
    problems: list[DefinitionError] = []
    names: dict[str, str] = {}
    for file in circuit_files(path):
        try:
            circuit, source = load_file(file)
        except CircuitFileErrors as exc:
            problems.extend(exc.errors)
            continue
        except DefinitionError as exc:
            problems.append(exc)
            continue
        found = validate(circuit, registry, source)
        if circuit.name in names:
            found.append(
                source.error(f"circuit name {circuit.name!r} is also used in {names[circuit.name]}", ("name",))
            )
        names.setdefault(circuit.name, str(file))
        problems.extend(found)
        if not found:
            good.append((circuit, source))
    return good, problems


class Catalog:
    """Circuits by name, with their compiled canvas."""

    def __init__(self, entries: list[Entry], revision: str | None = None, base: list[Entry] | None = None) -> None:
        self.entries = {e.name: e for e in entries}
        self.revision = revision  # the deploy revision it was built at (see workers.deployed)
        self.base = list(entries) if base is None else base  # the file circuits, to merge newer deploys onto
        self.failed = False  # the deployed circuits could not be read: try again later

    @classmethod
    def build(cls, circuits: list[tuple[Circuit, Source]], registry: ActionRegistry) -> Catalog:
        compiler = Compiler(registry)
        return cls([Entry(c, s, compiler.circuit(c), compiler.on_failure(c)) for c, s in circuits])

    @classmethod
    def load(cls, path: str | Path, registry: ActionRegistry) -> Catalog:
        """Load a folder; any problem in any file raises, so a worker never runs half a catalogue."""
        good, problems = check_path(path, registry)
        if problems:
            raise CircuitFileErrors(problems)
        return cls.build(good, registry)

    def get(self, name: str) -> Entry:
        try:
            return self.entries[name]
        except KeyError:
            raise PermanentError(f"no circuit named {name!r} in the catalogue") from None

    def match(self, event: Event, context: dict[str, Any] | None = None) -> list[Entry]:
        """Circuits whose trigger fits ``event``, highest priority first."""
        event_ctx = context if context is not None else event.as_context()
        found = []
        for entry in self.entries.values():
            try:
                if not entry.matches(event.type, event_ctx):
                    continue
            except PermanentError as exc:
                log.warning("circuit %s: condition not met because it failed: %s", entry.name, exc)
                continue
            found.append(entry)
        return sorted(found, key=lambda e: (-e.circuit.trigger.priority, e.name))

    def scheduled(self) -> list[Entry]:
        return [e for e in self.entries.values() if e.circuit.trigger.schedule]

    def __len__(self) -> int:
        return len(self.entries)
