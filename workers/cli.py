"""``circuit-os``: publish events, check circuits, inspect runs, run ingest and the demo."""

from __future__ import annotations

import json
import os
import re
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import click

from circuits.errors import CircuitError, EventError


def _fail(message: str, code: int = 1) -> NoReturn:
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(code)


UNREACHABLE = 2  # exit code when Redis or the database cannot be reached
_CLI_CONNECT_TIMEOUT_S = 3.0
_CLI_RETRIES = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}


def _mask(url: str) -> str:
    """A URL fit to print: its password replaced by ***."""
    return re.sub(r"(://[^/@:]*:)[^/@]*@", r"\1***@", url)


def _setting(name: str, default: str) -> str:
    try:
        from circuits.settings import get_settings

        return str(getattr(get_settings(), name))
    except CircuitError:
        return default


def _unreachable(exc: BaseException) -> str | None:
    """One line naming Redis or the database if ``exc`` (or what caused it) means it cannot be reached."""
    import kombu.exceptions
    import redis.exceptions
    import sqlalchemy.exc

    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        first = (str(cur).strip().splitlines() or [type(cur).__name__])[0][:200]
        if isinstance(cur, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)) or isinstance(
            cur, kombu.exceptions.OperationalError
        ):
            url = _setting("redis_url", "redis://127.0.0.1:6379/0")
            return _mask(f"cannot reach Redis at {_mask(url)} ({first})")
        if isinstance(cur, sqlalchemy.exc.OperationalError):
            url = _setting("database_url", "the configured database")
            detail = (str(cur.orig).strip().splitlines() or [first])[0][:200] if cur.orig is not None else first
            return _mask(f"cannot reach the database at {_mask(url)} ({detail})")
        cur = cur.__cause__ or cur.__context__
    return None


def _our_error(exc: BaseException) -> CircuitError | None:
    """Our named error that ``exc`` was raised while handling (a field error whose dead letter failed)."""
    cur = exc.__context__
    while cur is not None and not isinstance(cur, CircuitError):
        cur = cur.__cause__ or cur.__context__
    return cur


def _impatient(ctx: click.Context) -> None:
    """A person at a terminal waits seconds for a Redis that is down, not a worker's minutes of retries."""
    protected = ctx._protected_args if hasattr(ctx, "_protected_args") else ctx.protected_args  # click < 8.2
    args = [*protected, *ctx.args]
    command = args[0] if args else None
    if command in (None, "circuits", "demo"):
        return
    try:
        import redis

        from workers.runtime import runtime

        rt = runtime()
        if "redis" not in rt.__dict__:  # the runtime's own client, with a connect timeout
            rt.__dict__["redis"] = redis.Redis.from_url(
                rt.settings.redis_url, health_check_interval=30, socket_connect_timeout=_CLI_CONNECT_TIMEOUT_S
            )
        if command in ("publish", "runs"):  # these send Celery messages
            from workers.app import app

            app.conf.update(
                redis_socket_connect_timeout=_CLI_CONNECT_TIMEOUT_S,
                broker_connection_timeout=_CLI_CONNECT_TIMEOUT_S,
                broker_connection_max_retries=1,
                task_publish_retry_policy=_CLI_RETRIES,
                result_backend_transport_options={"retry_policy": _CLI_RETRIES},
            )
    except CircuitError:
        return  # a bad setting is reported by the command that needs it


class _Group(click.Group):
    """Turns our named errors, and an unreachable Redis or database, into one red line and a non-zero exit."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            _impatient(ctx)
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except CircuitError as exc:
            _fail(str(exc))
        except Exception as exc:  # noqa: BLE001 - the CLI prints one line, never a traceback
            down = _unreachable(exc)
            ours = _our_error(exc)
            if down and ours is not None:
                _fail(f"{ours} (and it could not be kept as a dead letter: {down})")
            if down:
                _fail(down, UNREACHABLE)
            if os.environ.get("CIRCUIT_LOG_LEVEL", "").upper() == "DEBUG":
                raise
            _fail(f"unexpected {type(exc).__name__}: {exc} (CIRCUIT_LOG_LEVEL=DEBUG shows the traceback)", 3)


@click.group(cls=_Group)
def cli() -> None:
    """Circuit OS: event-driven automation on Celery."""


def _engine():  # type: ignore[no-untyped-def]
    from storage.migrate import upgrade
    from workers.runtime import runtime

    rt = runtime()
    if rt.settings.auto_migrate:
        upgrade(rt.engine)
    return rt.engine


# --- events ---------------------------------------------------------------------------------


def _read_data(value: str | None) -> Any:
    if value is None:
        return None
    if value.startswith("@"):
        try:
            value = Path(value[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise EventError(f"cannot read {value[1:]}: {exc.strerror}", field="data") from None
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise EventError(f"--data is not JSON: {exc}", field="data") from None


@cli.command()
@click.argument("type")
@click.option("--data", help="JSON, or @file.json")
@click.option("--source", default="circuit-os/cli", show_default=True)
@click.option("--subject")
@click.option("--id", "event_id", help="Event id (default: a new UUID)")
@click.option("--tenant", default="default", show_default=True)
@click.option("--idempotency-key")
def publish(
    type: str,
    data: str | None,
    source: str,
    subject: str | None,
    event_id: str | None,
    tenant: str,
    idempotency_key: str | None,
) -> None:
    """Publish one event of TYPE (needs Redis and a worker)."""
    from workers.publish import publish_envelope

    envelope: dict[str, Any] = {"type": type, "source": source, "tenant": tenant, "data": _read_data(data)}
    for key, value in (("subject", subject), ("id", event_id), ("idempotencykey", idempotency_key)):
        if value is not None:
            envelope[key] = value
    event = publish_envelope(envelope, origin="cli")
    click.echo(event.id)


@cli.command()
@click.option("--max-seconds", type=float, help="Stop after this long (default: run until stopped).")
def ingest(max_seconds: float | None) -> None:
    """Read events that other languages XADD to the event stream, and start their runs."""
    from workers.runtime import runtime
    from workers.stream_ingest import StreamIngest

    rt = runtime()
    rt.catalog  # noqa: B018 - fail now on a broken catalogue, not at the first event
    consumer = StreamIngest(rt)
    click.echo(f"reading {rt.settings.event_stream} as consumer {consumer.consumer}", err=True)
    try:
        consumer.run(max_seconds=max_seconds)
    except KeyboardInterrupt:
        consumer.stop()


@cli.command()
@click.option("--max-seconds", type=float)
def ledger(max_seconds: float | None) -> None:
    """Run the ledger writer on its own (when CIRCUIT_LEDGER_IN_WORKER=false)."""
    from workers.ledger_writer import LedgerWriter
    from workers.runtime import runtime

    rt = runtime()
    writer = LedgerWriter(rt.redis, _engine(), batch=rt.settings.ledger_batch)
    try:
        writer.run(max_seconds=max_seconds)
    except KeyboardInterrupt:
        writer.stop()
    writer.drain(timeout_s=5)


@cli.group()
def events() -> None:
    """Inspect events."""


@events.command("rejected")
@click.option("--limit", default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def events_rejected(limit: int, as_json: bool) -> None:
    """Dead letters: events that were rejected, with the field and reason."""
    from service import events
    from service.access import local_admin
    from workers.runtime import runtime

    _engine()
    rows = events.rejected(runtime(), local_admin(), limit)
    if as_json:
        click.echo(json.dumps(rows, default=str, indent=2))
        return
    _table(rows, ["id", "received_at", "origin", "field", "error", "raw"])


# --- circuits ---------------------------------------------------------------------------------


@cli.group()
def circuits() -> None:
    """Check and inspect circuit files."""


@circuits.command("validate")
@click.argument("path", type=click.Path(), required=False)
def circuits_validate(path: str | None) -> None:
    """Report every problem in the circuit files at PATH (default CIRCUIT_CIRCUITS)."""
    from circuits.catalog import check_path
    from workers.runtime import runtime

    rt = runtime()
    good, problems = check_path(path or rt.settings.circuits, rt.registry)
    for problem in problems:
        click.secho(str(problem), fg="red")
    click.echo(f"{len(good)} circuit(s) valid, {len(problems)} problem(s)")
    if problems:
        sys.exit(1)


@circuits.command("list")
def circuits_list() -> None:
    """The circuits workers would run, with their triggers."""
    from workers.runtime import runtime

    rows = []
    for entry in runtime().catalog.entries.values():
        t = entry.circuit.trigger
        rows.append(
            {
                "name": entry.name,
                "version": entry.version,
                "trigger": t.event or f"cron {t.schedule}",
                "when": t.when or "",
                "priority": t.priority,
                "file": entry.source.file,
            }
        )
    _table(rows, ["name", "version", "trigger", "when", "priority", "file"])


@circuits.command("show")
@click.argument("name")
def circuits_show(name: str) -> None:
    """The Celery canvas a circuit compiles to."""
    from circuits.compiler import describe
    from workers.runtime import runtime

    click.echo(describe(runtime().catalog.get(name).canvas))


@circuits.command("schema")
def circuits_schema() -> None:
    """Print the JSON Schema of circuit files (for editors)."""
    from circuits.schema import circuit_schema

    click.echo(json.dumps(circuit_schema(), indent=2))


@circuits.command("actions")
@click.option("--json", "as_json", is_flag=True, help="Every action with its options and input JSON Schema.")
def circuits_actions(as_json: bool) -> None:
    """The actions workers can run (CIRCUIT_ACTION_MODULES and circuit_os.actions plugins)."""
    from workers.runtime import runtime

    if as_json:
        keys = ("name", "queue", "retries", "timeout_s", "side_effects", "rate_limit", "description")
        rows = [
            {**{k: getattr(s, k) for k in keys}, "input_schema": s.input_model.model_json_schema()}
            for s in runtime().registry
        ]
        click.echo(json.dumps(rows, indent=2))
        return
    _table(
        [
            {"action": s.name, "queue": s.queue, "retries": s.retries, "description": s.description}
            for s in runtime().registry
        ],
        ["action", "queue", "retries", "description"],
    )


def _when(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    from workers.backtest import parse_time

    try:
        return None if value is None else parse_time(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@circuits.command("backtest")
@click.argument("file", type=click.Path())
@click.option("--since", default="7d", show_default=True, callback=_when, help="30m, 12h, 7d or an ISO date.")
@click.option("--until", callback=_when, help="Same forms (default: now).")
@click.option("--limit", default=10_000, show_default=True, type=click.IntRange(min=1), help="Most events scanned.")
@click.option("--dry-run", is_flag=True, help="Also walk the steps of each match; no side effects.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document, for machines.")
def circuits_backtest(
    file: str, since: datetime, until: datetime | None, limit: int, dry_run: bool, as_json: bool
) -> None:
    """Replay stored past events through FILE's trigger and report what would have fired."""
    from circuits.loader import CircuitFileErrors
    from workers.backtest import backtest, format_text, load_entry
    from workers.runtime import runtime

    try:
        entry = load_entry(file, runtime().registry)
    except CircuitFileErrors as exc:
        for problem in exc.errors:
            click.secho(str(problem), fg="red", err=True)
        sys.exit(1)
    report = backtest(_engine(), entry, since, until, limit, dry_run)
    click.echo(json.dumps(report.to_dict(), default=str, indent=2) if as_json else format_text(report))


# --- runs -------------------------------------------------------------------------------------


@cli.group()
def runs() -> None:
    """Inspect recorded runs."""


@runs.command("list")
@click.option("--limit", default=20, show_default=True)
@click.option("--status", type=click.Choice(["running", "succeeded", "failed", "cancelled"]))
@click.option("--circuit")
@click.option("--event", "event_id")
@click.option("--json", "as_json", is_flag=True, help="One JSON document, for machines.")
def runs_list(limit: int, status: str | None, circuit: str | None, event_id: str | None, as_json: bool) -> None:
    """Recent runs, newest first."""
    from service import runs as service_runs
    from service.access import local_admin
    from workers.runtime import runtime

    _engine()
    rows, _ = service_runs.list_runs(
        runtime(), local_admin(), limit=limit, status=status, circuit=circuit, event_id=event_id
    )
    if as_json:
        click.echo(json.dumps(rows, default=str, indent=2))
        return
    for r in rows:
        r["duration"] = _duration(r["started_at"], r["ended_at"])
    _table(rows, ["id", "circuit", "status", "event_id", "started_at", "duration", "error"])


@runs.command("retry")
@click.argument("run_id", required=False)
@click.option("--from", "from_step", help="Run this step and every step after it again.")
@click.option("--circuit", help="Bulk: retry the failed runs of this circuit ...")
@click.option("--since", help="... started since (30m, 12h, 7d or an ISO date) ...")
@click.option("--until", help="... and before this.")
def runs_retry(
    run_id: str | None, from_step: str | None, circuit: str | None, since: str | None, until: str | None
) -> None:
    """Resume a failed run from its failed step (or --from STEP), or bulk-retry failed runs."""
    from service import runs as service_runs
    from service.access import local_admin
    from workers.backtest import parse_time
    from workers.runtime import runtime

    rt, who = runtime(), local_admin()
    _engine()
    if run_id:
        done = service_runs.retry(rt, who, run_id, from_step)
        again = f"; running again: {', '.join(done.forgotten)}" if done.forgotten else ""
        click.echo(f"retrying run {done.run_id} ({done.circuit}){again}")
        return
    if not since:
        _fail("give a RUN_ID, or --since (with --circuit to pick one circuit) for a bulk retry")
    assert since is not None
    retried = service_runs.retry_failed(rt, who, circuit, parse_time(since), parse_time(until) if until else None)
    for r in retried:
        click.echo(f"retrying run {r.run_id} ({r.circuit})")
    click.echo(f"{len(retried)} run(s) retried")


@runs.command("cancel")
@click.argument("run_id")
def runs_cancel(run_id: str) -> None:
    """Stop a run at its next step (a step already running finishes)."""
    from service import runs as service_runs
    from service.access import local_admin
    from workers.runtime import runtime

    _engine()
    click.echo(f"run {run_id}: {service_runs.cancel(runtime(), local_admin(), run_id)}")


@runs.command("show")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True)
def runs_show(run_id: str, as_json: bool) -> None:
    """One run, each step with its status and duration."""
    from circuits.errors import NotFoundError
    from service import runs as service_runs
    from service.access import local_admin
    from workers.runtime import runtime

    _engine()
    try:
        run = service_runs.get_run(runtime(), local_admin(), run_id)
    except NotFoundError:
        _fail(f"no run {run_id!r} in the ledger (it may still be in flight: the ledger lags by well under a second)")
    if as_json:
        click.echo(json.dumps(run, default=str, indent=2))
        return
    click.echo(f"run {run['id']}  circuit {run['circuit']} v{run['circuit_version']}  event {run['event_id']}")
    click.echo(
        f"status {run['status']}  started {run['started_at']}  took {_duration(run['started_at'], run['ended_at'])}"
    )
    if run["error"]:
        click.secho(f"error: {run['error']}", fg="red")
    steps = [
        {
            **s,
            "ms": f"{s['duration_ms']:.1f}" if s["duration_ms"] is not None else "",
            "output": json.dumps(s["output"], default=str)[:60] if s["output"] is not None else s["error"] or "",
        }
        for s in run["steps"]
    ]
    _table(steps, ["step_id", "action", "status", "attempts", "ms", "output"])


def _duration(start: datetime | None, end: datetime | None) -> str:
    if not start or not end:
        return ""
    return f"{(end - start).total_seconds() * 1000:.0f}ms"


def _table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    if not rows:
        click.echo("(none)")
        return
    cells = [[("" if r.get(c) is None else str(r.get(c)))[:60] for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    click.echo("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


# --- records ------------------------------------------------------------------------------------


@cli.group()
def records() -> None:
    """CRM records: lead, account, contact, opportunity, activity."""


@records.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--object", "obj", required=True, help="lead, account, contact, opportunity or activity")
@click.option("--map", "maps", multiple=True, metavar="COLUMN=FIELD", help="Map a column (repeatable; '' drops it).")
@click.option("--tenant", default="default", show_default=True)
@click.option("--batch", default=500, show_default=True, help="Rows per transaction.")
@click.option("--null", "nulls", multiple=True, help="A value that means missing (repeatable; default: '' and Select).")
@click.option("--limit", type=int, help="Import the first N rows only.")
@click.option("--no-events", is_flag=True, help="Write without record events, so no circuit is triggered.")
@click.option("--json", "as_json", is_flag=True)
def records_import(
    file: Path,
    obj: str,
    maps: tuple[str, ...],
    tenant: str,
    batch: int,
    nulls: tuple[str, ...],
    limit: int | None,
    no_events: bool,
    as_json: bool,
) -> None:
    """Load FILE (CSV) as records, upserted by external id, with a progress bar."""
    from integrations.records import import_csv, set_publisher
    from integrations.records.importer import DEFAULT_NULLS, count_rows, parse_mapping
    from workers.publish import publish_envelope

    mapping, engine = parse_mapping(maps), _engine()
    if not no_events:
        set_publisher(lambda envelope: publish_envelope(envelope, origin="records"))
    total = min(count_rows(file), limit if limit is not None else 1 << 62)
    with click.progressbar(length=total, label=f"importing {obj}", file=sys.stderr) as bar:
        report = import_csv(
            engine,
            file,
            obj,
            mapping=mapping,
            tenant=tenant,
            batch_size=batch,
            emit_events=not no_events,
            null_values=nulls or DEFAULT_NULLS,
            limit=limit,
            progress=bar.update,
        )
    for error in report.errors:
        click.echo(error, err=True)
    if as_json:
        click.echo(json.dumps(report.to_dict()))
    else:
        click.echo(", ".join(f"{v} {k}" for k, v in report.to_dict().items() if k != "errors"))


# --- operations ---------------------------------------------------------------------------------


@cli.group()
def db() -> None:
    """The database behind the ledger and registries."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply migrations (workers do this themselves unless CIRCUIT_AUTO_MIGRATE=false)."""
    from storage.migrate import upgrade
    from workers.runtime import runtime

    upgrade(runtime().engine)
    click.echo("database is up to date")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback by default).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="API processes.")
def serve(host: str, port: int, workers: int) -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json) with uvicorn."""
    from interfaces.api.server import serve as run_server

    run_server(host, port, workers)


@cli.group()
def keys() -> None:
    """API keys for producers and tools (stored hashed; a key is shown once)."""


@keys.command("create")
@click.option("--tenant", required=True, help="The tenant the key acts for ('*' = every tenant).")
@click.option("--role", required=True, type=click.Choice(["admin", "author", "operator", "producer", "viewer"]))
@click.option("--name", help="What the key is for.")
def keys_create(tenant: str, role: str, name: str | None) -> None:
    """Create a key and print it, once."""
    from service import keys as service_keys
    from service.access import local_admin
    from workers.runtime import runtime

    _engine()
    key, info = service_keys.create(runtime(), local_admin(), tenant, role, name)
    click.echo(key)
    click.echo(f"key {info['id']}: {role} of tenant {tenant}; it is not shown again", err=True)


@keys.command("list")
def keys_list() -> None:
    """Every key (never the secrets)."""
    from service import keys as service_keys
    from service.access import local_admin
    from workers.runtime import runtime

    _engine()
    rows = service_keys.list_keys(runtime(), local_admin())
    _table(rows, ["id", "tenant", "role", "name", "created_at", "revoked_at"])


@keys.command("revoke")
@click.argument("key_id")
def keys_revoke(key_id: str) -> None:
    """Revoke a key (API processes that checked it lately trust it for CIRCUIT_API_KEY_CACHE_S more)."""
    from service import keys as service_keys
    from service.access import local_admin
    from workers.runtime import runtime

    _engine()
    service_keys.revoke(runtime(), local_admin(), key_id)
    click.echo(f"key {key_id} revoked")


@cli.command()
@click.option("--events", "n_events", default=200, show_default=True, help="Lead events to publish.")
@click.option("--concurrency", default=2, show_default=True)
@click.option("--train-budget", default=10.0, show_default=True, help="AutoML seconds if no lead model exists yet.")
def demo(n_events: int, concurrency: int, train_budget: float) -> None:
    """Run the lead-processing example end to end on embedded Redis and SQLite."""
    from workers.demo import run_demo

    sys.exit(run_demo(n_events=n_events, concurrency=concurrency, train_budget_s=train_budget))


@cli.command()
@click.option("--window", default=60.0, show_default=True, help="Seconds of the ledger behind runs/s.")
@click.option("--timeout", default=1.0, show_default=True, help="Seconds to wait for workers to answer.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document, for machines.")
def status(window: float, timeout: float, as_json: bool) -> None:
    """Queues (depth, oldest message), workers (queues, load), runs/s and the ledger lag, now."""
    from service import status as system_status
    from service.access import local_admin
    from workers.runtime import runtime

    _engine()
    found = system_status.read(runtime(), local_admin(), window_s=window, timeout_s=timeout)
    click.echo(json.dumps(found.to_dict(), indent=2) if as_json else system_status.format_text(found))


@cli.command(context_settings={"ignore_unknown_options": True})
@click.option("--address", help="Address to bind (default CIRCUIT_FLOWER_ADDRESS, 127.0.0.1).")
@click.option("--port", type=int, help="Port (default CIRCUIT_FLOWER_PORT, 5555).")
@click.option("--unauthenticated", is_flag=True, help="No login: for local use only.")
@click.argument("flower_args", nargs=-1, type=click.UNPROCESSED)
def flower(address: str | None, port: int | None, unauthenticated: bool, flower_args: tuple[str, ...]) -> None:
    """Start Flower on this system's broker, with a basic-auth login from the settings (never printed)."""
    from circuits.settings import get_settings
    from workers.flower import command

    argv, env = command(get_settings(), address=address, port=port, unauthenticated=unauthenticated, extra=flower_args)
    os.execve(argv[0], argv, env)


# --- security -------------------------------------------------------------------------------


@cli.group()
def security() -> None:
    """Message signing: keys for Celery's auth serializer."""


@security.command("keys")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Folder to write to.")
@click.option("--name", help="Certificate common name (default: circuit-os-<host>).")
@click.option("--days", default=825, show_default=True, type=click.IntRange(min=1), help="Certificate validity.")
@click.option("--force", is_flag=True, help="Replace an existing key.")
def security_keys(out: Path, name: str | None, days: int, force: bool) -> None:
    """Create a private key (mode 0600) and a self-signed certificate; print the settings to use."""
    from workers.security import make_keys

    files = make_keys(out, name=name, days=days, overwrite=force)
    click.echo(f"private key  {files.key} (mode 0600; keep it secret, give it to workers and producers only)")
    click.echo(f"certificate  {files.cert} (trusted by every host that has it in its certificate folder)")
    click.echo("set on every worker and producer:")
    for k, v in files.settings().items():
        click.echo(f"{k}={v}")


def _attach_optional() -> None:
    """The AI engines' commands, when their modules are present."""
    import importlib

    for module, name in (
        ("intelligence.ml.cli", "ml"),
        ("intelligence.rag.cli", "rag"),
        ("intelligence.graph.cli", "graph"),
    ):
        try:
            cli.add_command(getattr(importlib.import_module(module), name))
        except ImportError as exc:
            if exc.name and not exc.name.startswith("intelligence"):
                raise


_attach_optional()


def main() -> None:
    try:
        cli(prog_name="circuit-os")
    except CircuitError as exc:  # raised while click builds the command line, before any command runs
        _fail(str(exc))


if __name__ == "__main__":
    main()
