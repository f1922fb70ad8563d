"""The four shipped example circuits (examples/circuits/), end to end through a real worker.

The module starts its own worker on ``examples/circuits`` with every default action module,
its own Redis database and a fresh PostgreSQL database (the session worker's settings stay as
other tests need them), a Slack receiver and an SMTP server on 127.0.0.1, the news MCP server
over stdio and a stand-in for the Anthropic Messages API reached through the real SDK. It
checks what a user would: the CRM record changed, the Slack messages and the email arrived
with the lead in them, the digest cites the news, the runs succeeded in the ledger.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from tests.conftest import ROOT, new_id, wait_for
from tests.stubs.anthropic_stub import AnthropicStub
from tests.stubs.http_receiver import HttpReceiver, Received
from workers.embedded import CeleryProcess, free_port

EXAMPLE_CIRCUITS = ROOT / "examples" / "circuits"
REDIS_DB = 7  # the session worker uses database 0 of the same server
OWNER = "ana.lima@example.com"
DRIFTED = "Total Time Spent on Website"


@dataclass
class Mailbox:
    """aiosmtpd on 127.0.0.1 keeping every message it is given, with its envelope recipients."""

    port: int = field(default_factory=free_port)
    messages: list[tuple[list[str], EmailMessage]] = field(default_factory=list)

    def __post_init__(self) -> None:
        from aiosmtpd.controller import Controller

        self._lock = threading.Lock()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd hook
        msg = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        with self._lock:
            self.messages.append((list(envelope.rcpt_tos), msg))  # type: ignore[arg-type]
        return "250 OK"

    def __enter__(self) -> Mailbox:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()


@dataclass
class Stack:
    env: dict[str, str]
    engine: sa.Engine
    slack: HttpReceiver
    mail: Mailbox
    claude: AnthropicStub
    worker: CeleryProcess

    def slack_to(self, webhook: str) -> list[dict[str, Any]]:
        return [json.loads(r.body) for r in list(self.slack.requests) if r.path == f"/slack/{webhook}"]

    def run(self, event_id: str | None = None, circuit: str | None = None, timeout: float = 30) -> dict[str, Any]:
        """The run of ``circuit`` (for ``event_id``) once it has ended, with its steps."""
        from storage.ledger import get_run, list_runs

        def ended() -> dict[str, Any] | None:
            runs = list_runs(self.engine, event_id=event_id, circuit=circuit, limit=5)
            if runs and runs[0]["status"] in ("succeeded", "failed"):
                return get_run(self.engine, runs[0]["id"])
            return None

        return wait_for(ended, timeout, f"the run of {circuit or event_id}")


def _database(postgres_url: str) -> Iterator[str]:
    """A database of its own on the session's PostgreSQL server, dropped at the end."""
    name = f"examples_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{postgres_url.rsplit('/', 1)[0]}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="module")
def stack(redis_url: str, postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    import redis

    from storage.migrate import upgrade
    from workers.runtime import reset_runtime, runtime

    url = f"{redis_url.rsplit('/', 1)[0]}/{REDIS_DB}"
    redis.Redis.from_url(url).flushdb()
    home = tmp_path_factory.mktemp("examples-home")
    databases = _database(postgres_url)
    saved = {k: v for k, v in os.environ.items() if k.startswith("CIRCUIT_")}
    with HttpReceiver() as slack, Mailbox() as mail, AnthropicStub() as claude:
        env = {
            "CIRCUIT_REDIS_URL": url,
            "CIRCUIT_DATABASE_URL": next(databases),
            "CIRCUIT_CIRCUITS": str(EXAMPLE_CIRCUITS),
            "CIRCUIT_HOME": str(home),
            "CIRCUIT_SLACK_WEBHOOKS": json.dumps(
                {w: f"{slack.url}/slack/{w}" for w in ("leads", "sales", "competitors")}
            ),
            "CIRCUIT_SMTP_HOST": "127.0.0.1",
            "CIRCUIT_SMTP_PORT": str(mail.port),
            "CIRCUIT_SMTP_STARTTLS": "false",  # a local server without TLS; tests/integrations cover TLS + AUTH
            "CIRCUIT_SMTP_FROM": "circuits@example.com",
            "CIRCUIT_MCP_SERVERS": json.dumps(
                {"news": {"command": [sys.executable, "-m", "tests.stubs.news_mcp"], "cwd": str(ROOT)}}
            ),
            "CIRCUIT_ANTHROPIC_BASE_URL": claude.base_url,
            "CIRCUIT_ANTHROPIC_API_KEY": "sk-ant-examples-test",
            "CIRCUIT_ML_TRAIN_BUDGET_S": "2",
        }
        for k in saved:  # the session's settings (its action modules, its webhook targets) are not ours
            os.environ.pop(k)
        os.environ.update(env)
        reset_runtime()
        try:
            from workers.app import app

            upgrade(runtime().engine)
            base = {k: v for k, v in os.environ.items() if not k.startswith("CIRCUIT_")}
            args = ["worker", "-c", "3", "--loglevel", "INFO", "-n", f"examples-{uuid.uuid4().hex[:6]}@%h"]
            args += ["--without-mingle", "--without-gossip"]
            log = tmp_path_factory.mktemp("examples-worker") / "worker.log"
            with CeleryProcess(args, {**base, **env}, log, cwd=ROOT) as worker:
                worker.wait_ready(app)
                yield Stack(env, runtime().engine, slack, mail, claude, worker)
        finally:
            for k in env:
                os.environ.pop(k, None)
            os.environ.update(saved)
            reset_runtime()
            next(databases, None)
            redis.Redis.from_url(url).flushdb()


@pytest.fixture(scope="module")
def leads(stack: Stack) -> dict[str, dict[str, Any]]:
    """The lead_score champion (trained in seconds), and one hot and one cold lead of the data set
    as it scores them, each a CRM record with an owner (loaded without events)."""
    from integrations.records.outbox import Origin
    from integrations.records.store import writing
    from intelligence.ml.examples import EXAMPLE_FILES, EXAMPLES
    from intelligence.ml.promotion import train_and_register
    from intelligence.ml.registry import ModelRegistry
    from intelligence.ml.scoring import Scorer

    registry = ModelRegistry(stack.engine, Path(stack.env["CIRCUIT_HOME"]) / "models")
    spec = EXAMPLES["leads"].model_copy(update={"sample": 2000})
    _, trained = train_and_register(registry, "lead_score", spec, engine="baseline", budget_s=5)
    pool = pd.read_csv(EXAMPLE_FILES["leads"], keep_default_na=False).sample(300, random_state=3)
    records = pool.to_dict("records")
    scores = Scorer(trained.pipeline, trained.schema).proba(records) * 100
    assert scores.max() >= 85 and scores.min() < 50, "the model does not spread the scores as expected"
    picked = {
        "hot": {"record": records[int(scores.argmax())], "owner": OWNER},
        "cold": {"record": records[int(scores.argmin())], "owner": "ben.okafor@example.com"},
    }
    with writing(stack.engine, origin=Origin(source="tests/examples", emit=False)) as store:
        for kind, lead in picked.items():
            lead["id"] = f"lead-{kind}-{uuid.uuid4().hex[:8]}"
            store.upsert("lead", lead["id"], {"owner": lead["owner"], "source": lead["record"]["Lead Source"] or None})
    return picked


def _crm(stack: Stack, external_id: str) -> dict[str, Any]:
    from integrations.records.store import Store

    with stack.engine.connect() as conn:
        record = Store(conn, "default").get("lead", external_id=external_id)
    assert record is not None
    return record


def _posted(requests: list[Received], webhook: str, text: str) -> dict[str, Any]:
    found = [json.loads(r.body) for r in requests if r.path == f"/slack/{webhook}" and text in r.body.decode()]
    assert len(found) == 1, [r.body for r in requests]
    return found[0]


def test_lead_processing_scores_routes_updates_the_crm_and_posts_to_slack(
    stack: Stack, leads: dict[str, dict[str, Any]]
) -> None:
    from workers.publish import publish

    runs = {}
    for kind, lead in leads.items():
        event = publish("lead.created", {"record": lead["record"]}, subject=lead["id"], id=new_id(f"lead-{kind}"))
        runs[kind] = stack.run(event.id, "lead-processing", timeout=60)
    for run in runs.values():
        assert run["status"] == "succeeded", run["error"]

    steps = {kind: {s["step_id"]: s for s in run["steps"]} for kind, run in runs.items()}
    hot_score, cold_score = (steps[k]["score"]["output"]["score"] for k in ("hot", "cold"))
    assert hot_score >= 80 > cold_score
    assert steps["hot"]["score"]["output"]["crossed"] == [{"level": 80.0, "direction": "up"}]
    assert steps["cold"]["score"]["output"]["crossed"] == []
    assert steps["hot"]["route"]["output"]["taken"] == "then" and steps["cold"]["route"]["output"]["taken"] == "else"
    assert {"mark_hot", "announce"} <= set(steps["hot"]) and "mark_nurture" in steps["cold"]

    # the CRM: the status the run set, and the score
    hot, cold = _crm(stack, leads["hot"]["id"]), _crm(stack, leads["cold"]["id"])
    assert (hot["status"], hot["score"]) == ("hot", round(hot_score, 1))
    assert (cold["status"], cold["score"]) == ("nurture", round(cold_score, 1))
    assert hot["owner"] == OWNER  # untouched

    # Slack: the new-leads channel heard of the hot lead only
    announced = _posted(stack.slack.wait_for(1), "leads", leads["hot"]["id"])
    assert f"Hot lead {leads['hot']['id']} scored {round(hot_score, 1)}: routed to sales" == announced["text"]
    assert announced["blocks"][0]["type"] == "section" and "Why: " in announced["blocks"][1]["elements"][0]["text"]
    assert not any(leads["cold"]["id"] in str(m) for m in stack.slack_to("leads"))


def test_hot_lead_alert_tells_the_owner_on_slack_and_by_email(stack: Stack, leads: dict[str, dict[str, Any]]) -> None:
    """Runs after lead processing: the hot lead's score crossed 80 there (ml.score_crossed)."""
    from storage.ledger import list_runs

    [scored] = [
        r for r in list_runs(stack.engine, circuit="lead-processing", limit=10) if r["event_id"].startswith("lead-hot")
    ]
    alert = stack.run(f"emit:{scored['id']}:score:0", "hot-lead-alert", timeout=60)
    assert alert["status"] == "succeeded", alert["error"]
    steps = {s["step_id"]: s for s in alert["steps"]}
    assert steps["lead"]["output"]["record"]["owner"] == OWNER and steps["tell"]["output"]["taken"] == "then"

    lead = leads["hot"]["id"]
    posted = _posted(stack.slack.wait_for(2), "sales", lead)
    assert posted["text"].startswith(f"Hot lead {lead} for {OWNER}: score ")

    wait_for(lambda: stack.mail.messages, 20, "the email to the owner")
    [(rcpts, msg)] = stack.mail.messages
    assert rcpts == [OWNER] and msg["To"] == OWNER and msg["From"] == "circuits@example.com"
    assert msg["Subject"].startswith(f"Hot lead {lead}: score ")
    body = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert f"Lead {lead} just scored" in body and "You own this lead" in body

    # the cold lead crossed nothing, so no alert started for it
    assert [r["event_id"] for r in list_runs(stack.engine, circuit="hot-lead-alert", limit=10)] == [alert["event_id"]]


def test_competitor_intelligence_posts_a_digest_of_the_news_on_its_schedule(stack: Stack) -> None:
    from workers.app import app
    from workers.tasks import SCHEDULED_TASK

    app.send_task(SCHEDULED_TASK, args=["competitor-intelligence"])  # what beat sends at 07:00
    run = stack.run(circuit="competitor-intelligence", timeout=60)
    assert run["status"] == "succeeded", run["error"]
    steps = {s["step_id"]: s for s in run["steps"]}
    assert steps["found"]["output"] == {"stories": 7}  # Acme 3, Globex 3 (one shared with Acme), Initech 1
    digest = steps["digest"]["output"]
    assert digest["model"] and digest["usage"]["input_tokens"] > 0 and not digest["offline"]

    # Claude was asked about the stories the MCP tool found, one line each
    [request] = stack.claude.requests
    prompt = request.body["messages"][0]["content"]
    assert "Acme:\n[n1] Acme launches AI sales assistant (TechWire" in prompt
    assert "Initech:\n[n4] Initech opens a Berlin office" in prompt
    assert "sk-ant-examples-test" in request.headers.get("authorization", request.headers.get("x-api-key", ""))

    # and its answer (the stub quotes the story ids it was given) is the digest posted to Slack
    [posted] = stack.slack_to("competitors")
    assert posted["text"].startswith("Competitor digest (7 stories on Acme, Globex, Initech): Stated in source [n1].")
    assert all(f"[n{i}]" in posted["text"] for i in range(1, 7))
    assert posted["blocks"][1]["text"]["text"] == digest["summary"]


def test_nightly_retraining_measures_drift_then_retrains(stack: Stack) -> None:
    from circuits.actions import ActionContext
    from circuits.settings import get_settings
    from intelligence.ml import actions
    from intelligence.ml.contracts import PredictInput
    from intelligence.ml.examples import EXAMPLE_FILES
    from storage.ledger import EventRow
    from workers.app import app
    from workers.tasks import SCHEDULED_TASK

    # a day of scoring after a web site change: visits now last far longer than in the training data
    live = pd.read_csv(EXAMPLE_FILES["leads"], keep_default_na=False).sample(300, random_state=11)
    moved = [{**r, DRIFTED: int(r[DRIFTED]) + 3000} for r in live.to_dict("records")]
    ctx = ActionContext.for_test(settings=get_settings(), run_id="web-traffic", step_id="score")
    try:
        actions.predict(ctx, PredictInput(model="lead_score", records=moved, explain=False))
    finally:
        ctx.resources.close()

    app.send_task(SCHEDULED_TASK, args=["nightly-retrain"])  # what beat sends at 02:00
    run = stack.run(circuit="nightly-retrain", timeout=90)
    assert run["status"] == "succeeded", run["error"]
    steps = {s["step_id"]: s["output"] for s in run["steps"]}
    assert steps["drift_leads"]["checked"] and steps["drift_leads"]["rows"] >= 300
    assert steps["drift_leads"]["drifted"][0] == DRIFTED
    assert steps["drift_churn"]["checked"] is False  # no churn model yet: reported, not failed

    # the drift was announced as an AI-native event, for any circuit to trigger on
    def announced() -> Any:
        with stack.engine.connect() as conn:
            return conn.execute(sa.select(EventRow).where(EventRow.id == f"emit:{run['id']}:drift_leads:0")).first()

    event = wait_for(announced, 20, "the ml.drift_detected event in the ledger")
    assert event.type == "ml.drift_detected" and event.subject == "lead_score" and DRIFTED in event.data["features"]

    leads, churn = steps["retrain_leads"], steps["retrain_churn"]
    assert leads["challenger_version"] == 2 and leads["reason"] and leads["champion_metrics"] is not None
    assert churn == {**churn, "promoted": True, "champion_version": 1, "reason": "first model of this name"}
    assert steps["report"]["logged"].startswith(f"lead_score: drifted ['{DRIFTED}']")
