"""Backtest a circuit: replay stored past events through its trigger and say what would have fired.

Events come from the ledger's ``circuit_events`` table, oldest first, read in pages so
memory stays bounded however long the window. Each event goes through
:meth:`circuits.catalog.Entry.matches`, the very rule the engine uses, so a backtest
cannot drift from what ingest does. A condition that fails on an event's data is
counted and reported with the event id; it never stops the replay.

With ``dry_run`` the steps are walked for each matching event with side effects
switched off (:mod:`workers.dryrun`). The CLI and any other interface call
:func:`backtest` and print or serialise the :class:`BacktestReport`.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.engine import Engine

from circuits.actions import ActionRegistry
from circuits.catalog import Catalog, Entry, check_path
from circuits.errors import CircuitError, DefinitionError
from circuits.events import Event
from circuits.loader import CircuitFileErrors
from storage.ledger import EventRow
from workers.dryrun import DryRun, dry_run

DEFAULT_LIMIT = 10_000
PAGE_SIZE = 500
#: How many matching ids, condition errors and dry runs the report keeps (the counts cover all).
SAMPLE = 20
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass
class TypeCounts:
    """Per event type: events scanned, how many would fire, would not, and failed the condition."""

    events: int = 0
    matched: int = 0
    not_matched: int = 0
    errors: int = 0


@dataclass
class ConditionError:
    event_id: str
    event_type: str
    error: str


@dataclass
class BacktestReport:
    """What a circuit would have done over a window of past events."""

    circuit: str
    file: str | None
    trigger: str
    when: str | None
    since: datetime
    until: datetime
    limit: int
    scanned: int = 0
    matched: int = 0
    not_matched: int = 0
    errors: int = 0
    limit_reached: bool = False
    last_received_at: datetime | None = None
    by_type: dict[str, TypeCounts] = field(default_factory=dict)
    sample: list[str] = field(default_factory=list)
    condition_errors: list[ConditionError] = field(default_factory=list)
    dry_run: bool = False
    dry_runs: list[DryRun] = field(default_factory=list)
    would_call: dict[str, int] = field(default_factory=dict)
    would_fail: int = 0

    def count(self, row: Any, fires: bool) -> None:
        counts = self.by_type[row.type]
        if fires:
            counts.matched += 1
            self.matched += 1
            if len(self.sample) < SAMPLE:
                self.sample.append(row.id)
        else:
            counts.not_matched += 1
            self.not_matched += 1

    def error(self, row: Any, message: str) -> None:
        self.by_type[row.type].errors += 1
        self.errors += 1
        if len(self.condition_errors) < SAMPLE:
            self.condition_errors.append(ConditionError(row.id, row.type, message))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (datetimes as ISO text), for ``--json`` and the HTTP API."""
        out = asdict(self)
        for key in ("since", "until", "last_received_at"):
            out[key] = out[key].isoformat() if out[key] else None
        return out


def parse_time(text: str, now: datetime | None = None) -> datetime:
    """``30m``, ``12h``, ``7d``, ``2w`` (that long before ``now``) or an ISO date/time (UTC if naive).

    Raises:
        ValueError: neither a duration nor an ISO date.
    """
    now = now or datetime.now(UTC)
    if m := _DURATION.match(text):
        return now - timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is neither a duration like 30m, 12h, 7d nor an ISO date like 2024-05-01") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def load_entry(path: str | Path, registry: ActionRegistry) -> Entry:
    """The one circuit in the file at ``path``, validated and compiled like a worker would.

    Raises:
        CircuitFileErrors: every problem in the file, each with file and line.
        DefinitionError: the path holds no circuit or several, or a cron-triggered one.
    """
    good, problems = check_path(path, registry)
    if problems:
        raise CircuitFileErrors(problems)
    if len(good) != 1:
        raise DefinitionError(f"backtest takes one circuit file; this holds {len(good)} circuits", file=str(path))
    entry = Catalog.build(good, registry).get(good[0][0].name)
    _event_trigger(entry)
    return entry


def _event_trigger(entry: Entry) -> str:
    trigger = entry.circuit.trigger
    if trigger.event is None:
        raise DefinitionError(
            f"circuit {entry.name!r} runs on the schedule {trigger.schedule!r}; "
            "backtest applies to event triggers only",
            file=entry.source.file,
            line=entry.source.line_of(("trigger", "schedule")),
        )
    return trigger.event


def _pages(engine: Engine, pattern: str, since: datetime, until: datetime, limit: int) -> Iterator[Sequence[Any]]:
    """Stored events in the window, oldest first, ``PAGE_SIZE`` at a time (keyset paging)."""
    t = EventRow.__table__.c
    q = sa.select(t.id, t.tenant, t.type, t.source, t.subject, t.idempotency_key, t.time, t.received_at, t.data)
    q = q.where(t.received_at >= since, t.received_at < until)
    # Narrow by the literal start of the pattern so the type index helps; Entry.matches decides.
    prefix = pattern.split("*", 1)[0]
    q = q.where(t.type == pattern) if prefix == pattern else q.where(t.type.startswith(prefix, autoescape=True))
    q = q.order_by(t.received_at, t.id)
    left, last = limit, None
    with engine.connect() as conn:
        while left > 0:
            page_q = q
            if last is not None:
                page_q = q.where(sa.or_(t.received_at > last[0], sa.and_(t.received_at == last[0], t.id > last[1])))
            rows = conn.execute(page_q.limit(min(PAGE_SIZE, left))).fetchall()
            if not rows:
                return
            yield rows
            left -= len(rows)
            last = (rows[-1].received_at, rows[-1].id)


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)  # SQLite keeps no zone; the ledger writes UTC


def _event(row: Any) -> Event:
    return Event.model_validate(
        {
            "id": row.id,
            "tenant": row.tenant,
            "type": row.type,
            "source": row.source,
            "subject": row.subject,
            "idempotencykey": row.idempotency_key,
            "time": row.time,
            "data": row.data,
        }
    )


def backtest(
    engine: Engine,
    circuit: Entry | str | Path,
    since: datetime,
    until: datetime | None = None,
    limit: int = DEFAULT_LIMIT,
    dry_run: bool = False,
    *,
    registry: ActionRegistry | None = None,
    foreach_cap: int | None = None,
) -> BacktestReport:
    """Replay up to ``limit`` events received in [since, until) through ``circuit``'s trigger.

    ``circuit`` is a compiled entry or a circuit file (validated first). ``registry`` and
    ``foreach_cap`` default to this process's runtime. No action with side effects runs.

    Raises:
        CircuitFileErrors: the file does not validate (every problem, with file:line).
        DefinitionError: a cron-triggered circuit, or not exactly one circuit in the file.
    """
    if registry is None or foreach_cap is None:
        from workers.runtime import runtime

        registry = registry or runtime().registry
        foreach_cap = foreach_cap or runtime().settings.foreach_max_items
    entry = circuit if isinstance(circuit, Entry) else load_entry(circuit, registry)
    pattern = _event_trigger(entry)
    until = until or datetime.now(UTC)
    since, until = since.astimezone(UTC), until.astimezone(UTC)
    report = BacktestReport(entry.name, entry.source.file, pattern, entry.circuit.trigger.when, since, until, limit)
    report.dry_run = dry_run
    calls: Counter[str] = Counter()
    for rows in _pages(engine, pattern, since, until, limit):
        for row in rows:
            report.scanned += 1
            report.last_received_at = _aware(row.received_at)
            counts = report.by_type.setdefault(row.type, TypeCounts())
            counts.events += 1
            try:
                event = _event(row)
                event_ctx = event.as_context()
                fires = entry.matches(event.type, event_ctx)
            except Exception as exc:  # noqa: BLE001 - one bad event is a finding, not a crash
                report.error(row, _message(exc))
                continue
            report.count(row, fires)
            if fires and dry_run:
                plan = _dry_run_of(entry, event, event_ctx, registry, foreach_cap)
                calls.update(plan.would_call)
                report.would_fail += plan.failed_at is not None
                if len(report.dry_runs) < SAMPLE:
                    report.dry_runs.append(plan)
    report.limit_reached = report.scanned >= limit
    report.would_call = dict(sorted(calls.items()))
    return report


def _dry_run_of(entry: Entry, event: Event, event_ctx: dict[str, Any], registry: ActionRegistry, cap: int) -> DryRun:
    """One event's dry run; a walk that breaks is reported on the event, never raised."""
    try:
        return dry_run(entry, event, event_ctx, registry, cap)
    except Exception as exc:  # noqa: BLE001 - one bad event is a finding, not a crash
        return DryRun(event.id, failed_at="(dry run)", error=_message(exc))


def _message(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        return f"stored event does not parse: {'.'.join(map(str, err['loc']))}: {err['msg']}"
    return str(exc) if isinstance(exc, CircuitError) else f"{type(exc).__name__}: {exc}"


def format_text(report: BacktestReport) -> str:
    """The report as a person reads it in a terminal."""
    r = report
    lines = [
        f"backtest of {r.circuit}" + (f" ({r.file})" if r.file else ""),
        f"trigger: {r.trigger}" + (f"  when: {r.when}" if r.when else ""),
        f"events received from {r.since.isoformat(timespec='seconds')} to {r.until.isoformat(timespec='seconds')}",
        f"scanned {r.scanned} event(s): {r.matched} would fire, {r.not_matched} would not, "
        f"{r.errors} condition error(s)",
    ]
    if r.limit_reached:
        lines.append(f"stopped at --limit {r.limit}; the last event scanned was received at {r.last_received_at}")
    if r.by_type:
        width = max(len("EVENT TYPE"), *map(len, r.by_type))
        lines += ["", f"{'EVENT TYPE'.ljust(width)}  EVENTS  FIRE  NOT  ERRORS"]
        for name, c in sorted(r.by_type.items()):
            lines.append(f"{name.ljust(width)}  {c.events:>6}  {c.matched:>4}  {c.not_matched:>3}  {c.errors:>6}")
    if r.sample:
        lines += ["", f"would fire (first {len(r.sample)}): {', '.join(r.sample)}"]
    if r.condition_errors:
        lines += ["", f"condition errors (first {len(r.condition_errors)} of {r.errors}):"]
        lines += [f"  {e.event_id} ({e.event_type}): {e.error}" for e in r.condition_errors]
    if r.dry_run:
        lines += _dry_run_text(r)
    return "\n".join(lines)


def _dry_run_text(r: BacktestReport) -> list[str]:
    calls = ", ".join(f"{name} x{n}" for name, n in r.would_call.items()) or "none"
    lines = ["", f"dry run, no action with side effects called: would call {calls}; {r.would_fail} run(s) would fail"]
    for plan in r.dry_runs:
        lines.append(
            f"  event {plan.event_id}: "
            + (f"would fail at {plan.failed_at}: {plan.error}" if plan.failed_at else "no failure found")
        )
        for s in plan.steps:
            pad = "    " + "  " * s.depth
            what = s.action or (f"{s.kind} {s.expression}" if s.expression else s.kind)
            lines.append(f"{pad}{s.step}: {what} -> {s.status}")
            if s.inputs:
                lines.append(f"{pad}  inputs {json.dumps(s.inputs, default=str)[:200]}")
            if s.output is not None:
                lines.append(f"{pad}  output {json.dumps(s.output, default=str)[:200]}")
    return lines
