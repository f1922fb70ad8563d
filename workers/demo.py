"""``circuit-os demo``: the first two example circuits end to end with nothing set up by hand.

Starts Redis (unless CIRCUIT_REDIS_URL is set), a worker, and local stand-ins for Slack (an
HTTP receiver) and an SMTP server (aiosmtpd), all on 127.0.0.1; uses SQLite. It imports the
first leads of the shipped data set into the CRM (without events), gives them owners, and
publishes a ``lead.created`` event for each: lead processing scores and routes them, and
the hot lead alert tells the owners of those whose score crossed 80. It waits for every
run, prints a summary and what was sent, and stops what it started. No network, no API
key. Exit status 1 if any run failed.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import click
import sqlalchemy as sa

from circuits.errors import ConfigError
from circuits.settings import PACKAGE_ROOT, get_settings
from workers.embedded import CeleryProcess, EmbeddedRedis, free_port

LEADS_CSV = PACKAGE_ROOT / "data" / "x_education_leads" / "Leads.csv"
#: The sales team the demo's leads are shared out to, in turn (a lead's ``owner`` is an address).
OWNERS = ("ana.lima@example.com", "ben.okafor@example.com", "chen.wu@example.com")
SENDER = "circuits@example.com"


def _num(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def lead_events(n: int, path: Path = LEADS_CSV) -> Iterator[dict[str, Any]]:
    """``lead.created`` envelopes from the first ``n`` rows of the leads data."""
    with path.open(newline="", encoding="utf-8") as f:
        for i, row in enumerate(csv.DictReader(f)):
            if i >= n:
                return
            clean = {k: (None if v in ("", "Select") else v) for k, v in row.items()}
            record = {k: v for k, v in row.items() if k not in ("Converted", "Prospect ID", "Lead Number")}
            yield {
                "type": "lead.created",
                "source": "circuit-os/demo",
                "id": f"demo-{uuid.uuid4()}",
                "subject": clean["Prospect ID"],
                "data": {
                    "lead_number": clean["Lead Number"],
                    "origin": clean["Lead Origin"],
                    "lead_source": clean["Lead Source"],
                    "visits": _num(row["TotalVisits"]),
                    "time_on_site_s": _num(row["Total Time Spent on Website"]),
                    "last_activity": clean["Last Activity"],
                    "country": clean["Country"],
                    "city": clean["City"],
                    "occupation": clean["What is your current occupation"],
                    "record": record,
                },
            }


@contextlib.contextmanager
def _redis() -> Iterator[str]:
    if os.environ.get("CIRCUIT_REDIS_URL"):
        yield os.environ["CIRCUIT_REDIS_URL"]
        return
    with EmbeddedRedis() as url:
        click.echo(f"started embedded Redis at {url}")
        yield url


class SlackReceiver:
    """Stands in for Slack: keeps the JSON of every POST with its webhook name (the path's last part)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []
        received, lock = self.messages, threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    message = json.loads(body)
                except ValueError:
                    message = {"text": body.decode("utf-8", "replace")}
                with lock:
                    received.append((self.path.rsplit("/", 1)[-1], message))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")  # what Slack answers

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.1,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def webhooks(self, *names: str) -> dict[str, str]:
        """``{name: URL}``: the value of CIRCUIT_SLACK_WEBHOOKS that points the names here."""
        return {name: f"{self.url}/slack/{name}" for name in names}

    def __enter__(self) -> SlackReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass
class Mailbox:
    """Stands in for the mail server: aiosmtpd on 127.0.0.1 keeping every message it is given."""

    port: int = field(default_factory=free_port)
    messages: list[tuple[list[str], EmailMessage]] = field(default_factory=list)

    def __post_init__(self) -> None:
        try:
            from aiosmtpd.controller import Controller
        except ImportError:
            raise ConfigError("the demo's mail server needs aiosmtpd: pip install 'circuit-os[embedded]'") from None
        self._lock = threading.Lock()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd hook
        msg = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        with self._lock:
            self.messages.append((list(envelope.rcpt_tos), msg))
        return "250 OK"

    def __enter__(self) -> Mailbox:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()


def import_leads(engine: sa.Engine, events: list[dict[str, Any]]) -> int:
    """Load the leads of ``events`` into the CRM (the importer, no record events), each with an owner
    from :data:`OWNERS` in turn, so that the circuits find them; return how many rows were read."""
    from integrations.records import Origin, import_csv, writing

    mapping = {"Prospect ID": "external_id", "Lead Source": "source"}
    report = import_csv(engine, LEADS_CSV, "lead", mapping=mapping, emit_events=False, limit=len(events))
    with writing(engine, origin=Origin(source="circuit-os/demo", emit=False)) as store:
        for i, event in enumerate(events):
            store.upsert("lead", event["subject"], {"owner": OWNERS[i % len(OWNERS)]})
    return report.rows


def _alert_events(engine: sa.Engine, event_ids: list[str]) -> list[str]:
    """Ids of the ml.score_crossed events the ``score`` steps of these events' runs emitted
    (one per level crossed: ``emit:<run>:score:<n>``)."""
    from storage.ledger import RunRow, StepRow

    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(RunRow.id, StepRow.output)
            .join(StepRow, StepRow.run_id == RunRow.id)
            .where(RunRow.event_id.in_(event_ids), StepRow.step_id == "score")
        ).all()
    return [
        f"emit:{run_id}:score:{i}"
        for run_id, output in rows
        if isinstance(output, dict)
        for i in range(len(output.get("crossed") or []))
    ]


def _wait_runs(engine: sa.Engine, event_ids: list[str], timeout: float) -> tuple[int, dict[str, int]]:
    """Wait until every event is recorded and all its runs ended; return (runs expected, by status)."""
    from storage.ledger import EventRow, RunRow

    deadline = time.monotonic() + timeout
    expected, counts = 0, {}
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            recorded = conn.execute(
                sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(EventRow.runs_started), 0)).where(
                    EventRow.id.in_(event_ids)
                )
            ).one()
            counts = dict(
                conn.execute(
                    sa.select(RunRow.status, sa.func.count())
                    .where(RunRow.event_id.in_(event_ids))
                    .group_by(RunRow.status)
                ).all()
            )
        expected = int(recorded[1])
        ended = counts.get("succeeded", 0) + counts.get("failed", 0)
        if recorded[0] == len(event_ids) and ended == expected:
            break
        time.sleep(0.25)
    return expected, counts


def _step_timings(engine: sa.Engine, event_ids: list[str]) -> list[tuple[str, int, float, float]]:
    from storage.ledger import RunRow, StepRow

    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(StepRow.step_id, StepRow.duration_ms)
            .join(RunRow, RunRow.id == StepRow.run_id)
            .where(RunRow.event_id.in_(event_ids))
        ).all()
    by_step: dict[str, list[float]] = {}
    for step_id, ms in rows:
        by_step.setdefault(step_id, []).append(ms or 0.0)
    out = []
    for step_id, values in sorted(by_step.items()):
        values.sort()
        out.append((step_id, len(values), statistics.median(values), values[int(0.95 * (len(values) - 1))]))
    return out


def ensure_lead_model(budget_s: float) -> None:
    """Train and register the lead-scoring model the circuit calls, unless a champion exists."""
    from circuits.actions import ActionContext
    from workers.runtime import runtime

    rt = runtime()
    ctx = ActionContext(run_id="demo", step_id="train", circuit="demo", resources=rt.resources)
    if _has_champion(ctx):
        click.echo("lead_score model: using the registered champion")
        return
    click.echo(f"lead_score model: training with AutoML ({budget_s:.0f}s budget) on the X Education leads...")
    out = rt.registry.get("ml.train").run(ctx, {"name": "lead_score", "budget_s": budget_s})  # the shipped example
    click.echo(
        f"lead_score v{out['version']} {out['status']}: {out['estimator']}, held-out ROC AUC "
        f"{out['metrics'].get('roc_auc', float('nan')):.3f}"
    )


def _has_champion(ctx: Any) -> bool:
    from intelligence.ml.actions import registry

    return registry(ctx).champion("lead_score") is not None


def run_demo(n_events: int = 200, concurrency: int = 2, train_budget_s: float = 10.0) -> int:
    home = Path(os.environ.get("CIRCUIT_HOME", ".circuit-os")).resolve()
    home.mkdir(parents=True, exist_ok=True)
    with _redis() as redis_url, SlackReceiver() as slack, Mailbox() as mail:
        env = {**os.environ, "CIRCUIT_REDIS_URL": redis_url, "CIRCUIT_HOME": str(home)}
        env.setdefault("CIRCUIT_DATABASE_URL", f"sqlite:///{home / 'circuit_os.db'}")
        os.environ.update({k: env[k] for k in ("CIRCUIT_REDIS_URL", "CIRCUIT_HOME", "CIRCUIT_DATABASE_URL")})
        env.update(_receivers_env(slack, mail))
        click.echo(f"local receivers: Slack webhooks at {slack.url}/slack/..., SMTP at 127.0.0.1:{mail.port}")
        from workers.runtime import reset_runtime, runtime

        reset_runtime()
        settings = get_settings()
        from storage.migrate import upgrade
        from workers.app import create_app
        from workers.publish import publish_envelope

        app = create_app()
        upgrade(runtime().engine)
        click.echo(f"database {settings.database_url}; circuits from {settings.circuits}")
        ensure_lead_model(train_budget_s)
        events = list(lead_events(n_events))
        rows = import_leads(runtime().engine, events)
        click.echo(f"imported {rows} leads into the CRM (no record events), owners {', '.join(OWNERS)}")
        args = [
            "worker",
            "-c",
            str(concurrency),
            "--loglevel",
            "INFO",
            "-n",
            f"demo-{os.getpid()}@%h",
            "--without-mingle",
            "--without-gossip",
        ]
        with CeleryProcess(args, env, home / "demo-worker.log") as worker:
            worker.wait_ready(app)
            t0 = time.perf_counter()
            ids = [publish_envelope(e, origin="demo").id for e in events]
            click.echo(f"published {len(ids)} lead.created events in {time.perf_counter() - t0:.2f}s")
            expected, counts = _wait_runs(runtime().engine, ids, timeout=60 + n_events * 0.5)
            alert_ids = _alert_events(runtime().engine, ids)
            alerts, alert_counts = _wait_runs(runtime().engine, alert_ids, timeout=60 + len(alert_ids) * 0.5)
            elapsed = time.perf_counter() - t0
        timings = _step_timings(runtime().engine, ids + alert_ids)
        reset_runtime()
    ended = counts.get("succeeded", 0) + counts.get("failed", 0)
    alerts_ended = alert_counts.get("succeeded", 0) + alert_counts.get("failed", 0)
    click.echo(f"\nevents: {len(ids)}   runs started: {expected}   (events not matching the trigger start none)")
    click.echo("runs by status: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    click.echo(
        f"hot lead alerts: {len(alert_ids)} scores crossed 80 (ml.score_crossed), {alerts} runs: "
        + (", ".join(f"{k} {v}" for k, v in sorted(alert_counts.items())) or "none")
    )
    click.echo(f"all runs ended in {elapsed:.2f}s ({(ended + alerts_ended) / elapsed:.0f} runs/s)\n")
    click.echo(f"{'STEP':<16}{'N':>6}{'P50 MS':>10}{'P95 MS':>10}")
    for step_id, n, p50, p95 in timings:
        click.echo(f"{step_id:<16}{n:>6}{p50:>10.2f}{p95:>10.2f}")
    _print_sent(slack, mail)
    click.echo(f"\nworker log: {home / 'demo-worker.log'}")
    failed = counts.get("failed", 0) + alert_counts.get("failed", 0)
    if failed or ended != expected or alerts_ended != alerts or expected == 0:
        click.secho("demo FAILED: some runs failed or did not finish", fg="red")
        return 1
    click.secho("demo OK", fg="green")
    return 0


def _receivers_env(slack: SlackReceiver, mail: Mailbox) -> dict[str, str]:
    """The worker's settings for the local receivers: whatever Slack or SMTP the caller's
    environment names, the demo's messages stay on this machine."""
    return {
        "CIRCUIT_SLACK_WEBHOOKS": json.dumps(slack.webhooks("leads", "sales")),
        "CIRCUIT_SMTP_HOST": "127.0.0.1",
        "CIRCUIT_SMTP_PORT": str(mail.port),
        "CIRCUIT_SMTP_STARTTLS": "false",  # a plain local server, and no login to protect
        "CIRCUIT_SMTP_SSL": "false",
        "CIRCUIT_SMTP_USER": "",
        "CIRCUIT_SMTP_FROM": SENDER,
    }


def _print_sent(slack: SlackReceiver, mail: Mailbox) -> None:
    """How many Slack messages and emails the circuits sent, and two of each."""
    by_hook: dict[str, int] = {}
    for hook, _ in slack.messages:
        by_hook[hook] = by_hook.get(hook, 0) + 1
    split = ", ".join(f"#{k} {v}" for k, v in sorted(by_hook.items()))
    click.echo("\nsent to the local receivers (nothing left this machine):")
    click.echo(f"  Slack messages: {len(slack.messages)}" + (f" ({split})" if split else ""))
    first_of: dict[str, dict[str, Any]] = {}
    for hook, message in slack.messages:
        first_of.setdefault(hook, message)
    examples = sorted(first_of.items())[:2]  # one of each webhook, if there are two
    if len(examples) < 2:
        examples = slack.messages[:2]
    for hook, message in examples:
        click.echo(f"    #{hook}: {message.get('text', '')}")
    click.echo(f"  emails: {len(mail.messages)}")
    for rcpts, msg in mail.messages[:2]:
        click.echo(f"    to {', '.join(rcpts)}: {msg['Subject']}")
