"""Records and record triggers: CRUD and queries on SQLite and PostgreSQL, the outbox, triggers
through the real worker, the chain-depth guard, a retried step's write, and `records import`.

Tests stay apart by tenant: every test writes under a tenant of its own.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from circuits.actions import ActionContext
from circuits.errors import PermanentError
from circuits.settings import Settings
from integrations.records import actions as data
from integrations.records import outbox
from integrations.records.schema import OUTBOX, TABLES
from integrations.records.store import Store, writing
from storage.base import make_engine
from storage.migrate import upgrade
from tests.conftest import ROOT, new_id, wait_for

LEADS_CSV = ROOT / "data" / "x_education_leads" / "Leads.csv"
HOSTILE = "x'; DROP TABLE crm_leads; --"


class Records:
    """One database and one tenant, and the way to call the data.* actions on them."""

    def __init__(self, engine: Engine, url: str) -> None:
        self.engine = engine
        self.tenant = new_id("t")
        self.settings = Settings(database_url=url, records_bulk_max=5, records_query_max_limit=50)
        self.contexts: list[ActionContext] = []

    def ctx(self, run_id: str | None = None, step_id: str = "s", attempt: int = 1, **event: Any) -> ActionContext:
        c = ActionContext.for_test(
            self.settings,
            run_id=run_id or new_id("run"),
            step_id=step_id,
            circuit="t-circuit",
            attempt=attempt,
            event={"tenant": self.tenant, **event},
        )
        self.contexts.append(c)
        return c

    def call(self, fn: Callable[..., Any], ctx: ActionContext | None = None, **inp: Any) -> dict[str, Any]:
        spec = fn.__circuit_action__  # type: ignore[attr-defined]
        return spec.run(ctx or self.ctx(), inp)  # type: ignore[no-any-return]

    def outbox(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(OUTBOX.c.envelope).where(OUTBOX.c.tenant == self.tenant).order_by(OUTBOX.c.created_at)
            ).fetchall()
        return [dict(r.envelope) for r in rows]


@pytest.fixture(params=["sqlite", "postgresql"])
def records(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Records]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/records.db"
        engine = make_engine(url)
        upgrade(engine)
    else:
        engine = request.getfixturevalue("ledger")
        url = request.getfixturevalue("engine_env")["CIRCUIT_DATABASE_URL"]
    r = Records(engine, url)
    yield r
    for c in r.contexts:
        c.resources.close()
    if request.param == "sqlite":
        engine.dispose()


@pytest.fixture()
def publishing(engine_env: dict[str, str]) -> Iterator[None]:
    """Record events written in this process go to the worker's ingest, as the CLI sends them."""
    from workers.publish import publish_envelope

    outbox.set_publisher(lambda envelope: publish_envelope(envelope, origin="test"))
    yield
    outbox.set_publisher(None)


def _lead(r: Records, **values: Any) -> dict[str, Any]:
    return r.call(data.create, object="lead", values=values)["record"]  # type: ignore[no-any-return]


# --- schema -----------------------------------------------------------------------------------


def test_migration_has_the_columns_of_the_schema(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/m.db")
    upgrade(engine)
    inspector = sa.inspect(engine)
    for table in [*TABLES.values(), OUTBOX]:
        assert {c["name"] for c in inspector.get_columns(table.name)} == set(table.c.keys()), table.name
    assert {u["name"] for u in inspector.get_unique_constraints("crm_leads")} == {"uq_crm_leads_external_id"}


# --- CRUD and queries -------------------------------------------------------------------------


def test_create_get_update_delete(records: Records) -> None:
    r = records
    made = r.call(data.create, object="lead", values={"email": "ada@example.com", "external_id": "L1", "score": 42})
    assert made["op"] == "created" and made["record"]["score"] == 42.0
    lead_id = made["id"]
    by_id = r.call(data.get, object="lead", id=lead_id)
    by_ext = r.call(data.get, object="lead", external_id="L1")
    assert by_id == by_ext and by_id["found"] and by_id["record"]["email"] == "ada@example.com"
    up = r.call(data.update, object="lead", external_id="L1", set={"status": "hot", "custom.segment": "smb"})
    assert up["op"] == "updated" and up["record"]["custom"] == {"segment": "smb"}
    assert up["changed"] == {"status": {"old": None, "new": "hot"}, "custom.segment": {"old": None, "new": "smb"}}
    same = r.call(data.update, object="lead", id=lead_id, set={"status": "hot"})
    assert same["op"] == "unchanged" and same["changed"] == {}
    gone = r.call(data.delete, object="lead", id=lead_id)
    assert gone["op"] == "deleted" and r.call(data.get, object="lead", id=lead_id) == {"found": False, "record": None}
    assert r.call(data.delete, object="lead", id=lead_id)["op"] == "missing"
    with pytest.raises(PermanentError, match="no lead with id"):
        r.call(data.update, object="lead", id=lead_id, set={"status": "x"})
    with pytest.raises(PermanentError, match="exists already"):
        for _ in range(2):
            r.call(data.create, object="lead", values={"external_id": "dup"})
    other_tenant = r.ctx()
    other_tenant.event["tenant"] = "someone-else"
    assert r.call(data.get, ctx=other_tenant, object="lead", external_id="dup")["found"] is False


def test_every_filter_op(records: Records) -> None:
    r = records
    rows = [
        {
            "external_id": "a",
            "last_name": "Ames",
            "score": 10,
            "status": "new",
            "custom": {"visits": 1, "tier": "gold"},
        },
        {"external_id": "b", "last_name": "Baker", "score": 50, "status": "hot", "custom": {"visits": 7, "vip": True}},
        {"external_id": "c", "last_name": "Cole", "score": 90, "custom": {"visits": "many", "tier": "Golden"}},
        {"external_id": "d", "last_name": "Dunn", "status": "new"},
    ]
    for row in rows:
        _lead(r, **row)

    def ids(*filters: dict[str, Any], **kw: Any) -> list[str]:
        out = r.call(data.query, object="lead", filters=list(filters), sort=["external_id"], **kw)
        return [rec["external_id"] for rec in out["records"]]

    assert ids({"field": "status", "op": "eq", "value": "new"}) == ["a", "d"]
    assert ids({"field": "status", "op": "ne", "value": "new"}) == ["b", "c"]  # empty counts as different
    assert ids({"field": "score", "op": "lt", "value": 50}) == ["a"]
    assert ids({"field": "score", "op": "le", "value": 50}) == ["a", "b"]
    assert ids({"field": "score", "op": "gt", "value": "50"}) == ["c"]  # coerced to the field's type
    assert ids({"field": "score", "op": "ge", "value": 50}) == ["b", "c"]
    assert ids({"field": "last_name", "op": "in", "value": ["Cole", "Ames", "Zed"]}) == ["a", "c"]
    assert ids({"field": "last_name", "op": "contains", "value": "KE"}) == ["b"]
    assert ids({"field": "status", "op": "is_null", "value": True}) == ["c"]
    assert ids({"field": "score", "op": "is_null", "value": False}) == ["a", "b", "c"]
    # custom fields through the JSON path; a number compares with numbers only
    assert ids({"field": "custom.visits", "op": "gt", "value": 0}) == ["a", "b"]
    assert ids({"field": "custom.visits", "op": "eq", "value": "many"}) == ["c"]
    assert ids({"field": "custom.visits", "op": "in", "value": [1, 7]}) == ["a", "b"]
    assert ids({"field": "custom.tier", "op": "contains", "value": "gold"}) == ["a", "c"]
    assert ids({"field": "custom.tier", "op": "ne", "value": "gold"}) == ["b", "c", "d"]
    assert ids({"field": "custom.vip", "op": "eq", "value": True}) == ["b"]
    assert ids({"field": "custom.tier", "op": "is_null"}) == ["b", "d"]
    assert ids(where={"status": "new", "last_name": "Dunn"}) == ["d"]
    page = r.call(data.query, object="lead", sort=["-score"], limit=2)
    assert [x["external_id"] for x in page["records"]] == ["c", "b"] and page["has_more"] and page["count"] == 2
    with pytest.raises(PermanentError, match="over CIRCUIT_RECORDS_QUERY_MAX_LIMIT=50"):
        r.call(data.query, object="lead", limit=51)


def test_values_are_parameters_never_sql(records: Records) -> None:
    r = records
    made = _lead(r, last_name=HOSTILE, custom={"note": HOSTILE}, external_id=HOSTILE)
    for f in ({"field": "last_name", "value": HOSTILE}, {"field": "custom.note", "value": HOSTILE}):
        out = r.call(data.query, object="lead", filters=[f])
        assert [x["id"] for x in out["records"]] == [made["id"]]
    assert r.call(data.get, object="lead", external_id=HOSTILE)["record"]["last_name"] == HOSTILE
    assert (
        r.call(data.query, object="lead", filters=[{"field": "last_name", "op": "contains", "value": "%"}])["records"]
        == []
    )  # LIKE wildcards are escaped
    with pytest.raises(PermanentError, match="unknown field"):
        r.call(data.query, object="lead", filters=[{"field": "last_name; DROP TABLE crm_leads", "value": 1}])
    with pytest.raises(PermanentError, match="letters, digits and underscores"):
        r.call(data.query, object="lead", filters=[{"field": "custom.a') or 1=1 --", "value": 1}])
    assert sa.inspect(r.engine).has_table("crm_leads")


def test_unknown_object_field_and_op_name_the_allowed_ones(records: Records) -> None:
    r = records
    with pytest.raises(PermanentError, match=r"unknown object 'leed'; use one of lead, account, contact, opport"):
        r.call(data.query, object="leed")
    with pytest.raises(PermanentError) as exc:
        r.call(data.query, object="lead", filters=[{"field": "emial", "value": "x"}])
    assert "unknown field 'emial' of lead; allowed: id, external_id, created_at, updated_at, email," in str(exc.value)
    assert "custom.<name>" in str(exc.value)
    with pytest.raises(PermanentError, match=r"unknown filter op 'like'; use one of eq, ne, lt, le, gt, ge, in"):
        r.call(data.query, object="lead", filters=[{"field": "email", "op": "like", "value": "x"}])
    with pytest.raises(PermanentError, match="unknown field 'bogus' of account"):
        r.call(data.create, object="account", values={"name": "Acme", "bogus": 1})
    with pytest.raises(PermanentError, match="unknown field 'nope' of lead"):
        r.call(data.query, object="lead", sort=["-nope"])
    with pytest.raises(PermanentError, match=r"lead\.score: 'lots' is not a number"):
        r.call(data.create, object="lead", values={"score": "lots"})
    with pytest.raises(PermanentError, match="lead.created_at is set by the store"):
        r.call(data.create, object="lead", values={"created_at": "2024-01-01"})


def test_upsert_by_external_id(records: Records) -> None:
    r = records
    first = r.call(data.upsert, object="contact", external_id="C-9", values={"email": "c@x.io", "first_name": "C"})
    again = r.call(data.upsert, object="contact", external_id="C-9", values={"first_name": "Cy"})
    same = r.call(data.upsert, object="contact", external_id="C-9", values={"first_name": "Cy"})
    assert (first["op"], again["op"], same["op"]) == ("created", "updated", "unchanged")
    assert first["id"] == again["id"] and again["record"]["email"] == "c@x.io"
    assert again["changed"] == {"first_name": {"old": "C", "new": "Cy"}}
    types = [e["type"] for e in r.outbox()]
    assert types == ["contact.created", "contact.updated"]


def test_bulk_writes(records: Records) -> None:
    r = records
    made = r.call(
        data.create_many, object="opportunity", records=[{"name": f"o{i}", "amount": i * 100} for i in range(3)]
    )
    assert made["created"] == 3 and len(made["ids"]) == 3
    upd = r.call(
        data.update_many,
        object="opportunity",
        updates=[{"id": made["ids"][0], "set": {"stage": "won"}}, {"id": made["ids"][1], "set": {"amount": 100}}],
    )
    assert (upd["updated"], upd["unchanged"]) == (1, 1)
    ups = r.call(
        data.upsert_many,
        object="account",
        records=[{"external_id": "A1", "name": "Acme"}, {"external_id": "A2", "employees": "12"}],
    )
    assert ups["created"] == 2
    ups = r.call(data.upsert_many, object="account", records=[{"external_id": "A1", "name": "Acme Inc"}])
    assert ups["updated"] == 1
    gone = r.call(data.delete_many, object="opportunity", ids=made["ids"][:2] + ["nope"], external_ids=[])
    assert (gone["deleted"], gone["missing"]) == (2, 1)
    left = r.call(data.query, object="opportunity")["records"]
    assert [x["name"] for x in left] == ["o2"]
    with pytest.raises(PermanentError, match="6 records, over CIRCUIT_RECORDS_BULK_MAX=5"):
        r.call(data.create_many, object="lead", records=[{} for _ in range(6)])
    with pytest.raises(PermanentError, match="unknown field"):  # all or none
        r.call(data.create_many, object="lead", records=[{"email": "ok@x.io"}, {"wrong": 1}])
    assert r.call(data.query, object="lead")["records"] == []


# --- the outbox -------------------------------------------------------------------------------


def test_a_write_and_its_event_commit_together(records: Records) -> None:
    r = records
    with r.engine.begin() as conn:
        store = Store(conn, r.tenant)
        made = store.create("lead", {"email": "a@x.io", "status": "new"})
        inside = conn.execute(sa.select(sa.func.count()).where(OUTBOX.c.tenant == r.tenant)).scalar()
        assert inside == 1 and r.outbox() == []  # staged in this transaction, invisible outside it
    [event] = r.outbox()
    assert (
        event["type"] == "lead.created" and event["subject"] == made.id and event["data"]["record"]["status"] == "new"
    )
    with r.engine.begin() as conn:
        update = Store(conn, r.tenant).update("lead", {"status": "working", "score": 3}, id=made.id)
    events = r.outbox()
    assert update.op == "updated" and len(events) == 2 and events[1]["type"] == "lead.updated"
    changed = events[1]["data"]["changed"]
    assert changed == {"status": {"old": "new", "new": "working"}, "score": {"old": None, "new": 3.0}}
    assert events[1]["data"]["record"]["status"] == "working" and events[1]["chaindepth"] == 0


def test_a_rolled_back_write_emits_nothing(records: Records) -> None:
    r = records

    class Boom(Exception):
        pass

    with pytest.raises(Boom), writing(r.engine, r.tenant) as store:
        store.create("lead", {"external_id": "rolled"})
        store.create("account", {"name": "also rolled back"})
        raise Boom
    assert r.outbox() == []
    assert r.call(data.get, object="lead", external_id="rolled")["found"] is False


def test_a_retried_steps_write_emits_its_event_once(records: Records) -> None:
    r = records
    lead = _lead(r, status="new")
    run = new_id("run")
    for attempt in (1, 2):  # the second attempt writes a new value, its event id is the first one's
        out = r.call(data.update, r.ctx(run, "touch", attempt), object="lead", id=lead["id"], set={"score": attempt})
        assert out["op"] == "updated"
    for attempt in (1, 2):  # a retried create finds the record it made
        made = r.call(data.create, r.ctx(run, "make", attempt), object="account", values={"name": "Once"})
    assert made["op"] == "unchanged" and len(r.call(data.query, object="account")["records"]) == 1
    types = [e["type"] for e in r.outbox()]
    assert types == ["lead.created", "lead.updated", "account.created"]


def test_events_carry_the_chain_one_hop_deeper(records: Records) -> None:
    r = records
    ctx = r.ctx(chaindepth=2, chain=["a", "b"])
    _lead_id = r.call(data.create, ctx, object="lead", values={})["id"]
    [event] = r.outbox()
    assert (event["chaindepth"], event["chain"], event["subject"]) == (3, ["a", "b", "t-circuit"], _lead_id)


def test_sweep_publishes_what_was_left_unsent(records: Records) -> None:
    r = records
    lead = _lead(r)  # no publisher installed: the event waits in the outbox
    got: list[dict[str, Any]] = []
    outbox.sweep(r.engine, got.append, older_than_s=0)
    assert lead["id"] in [e["subject"] for e in got]
    assert lead["id"] not in [e["subject"] for e in outbox.unsent(r.engine)]
    got.clear()
    outbox.sweep(r.engine, got.append, older_than_s=0)
    assert lead["id"] not in [e["subject"] for e in got]


# --- record triggers through the real worker --------------------------------------------------


def _event_row(engine: Engine, event_id: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT * FROM circuit_events WHERE id = :id"), {"id": event_id}).first()
    return None if row is None else dict(row._mapping)


def _events_of(engine: Engine, record_id: str, type_: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT * FROM circuit_events WHERE subject = :s AND type = :t"), {"s": record_id, "t": type_}
        ).fetchall()
    return [dict(r._mapping) for r in rows]


def test_a_status_change_fires_the_record_trigger(
    ledger: Engine, worker: Any, run_of: Callable[..., dict[str, Any]], publishing: None
) -> None:
    from workers.publish import publish

    tenant = new_id("t")
    with writing(ledger, tenant) as store:
        lead = store.create("lead", {"status": "new", "email": "t@x.io"})
    with writing(ledger, tenant) as store:
        store.update("lead", {"status": "won"}, id=lead.id)
    [event] = store.events
    run = run_of(event["id"], "t-record-trigger")
    assert run["status"] == "succeeded"
    assert run["steps"][0]["output"] == {"lead": lead.id, "old": "new", "new": "won", "depth": 0}

    publish("test.record_write", {"lead": lead.id, "set": {"status": "hot"}}, id=new_id(), tenant=tenant)
    updated = wait_for(lambda: [e for e in _events_of(ledger, lead.id, "lead.updated") if e["id"] != event["id"]])
    run = run_of(updated[0]["id"], "t-record-trigger")
    assert run["steps"][0]["output"] == {"lead": lead.id, "old": "won", "new": "hot", "depth": 1}

    with writing(ledger, tenant) as store:
        store.update("lead", {"score": 12, "email": "new@x.io"}, id=lead.id)
    [other] = store.events
    row = wait_for(lambda: _event_row(ledger, other["id"]), 30, "the score change in the ledger")
    assert row["runs_started"] == 0


def test_a_self_loop_stops_at_the_max_chain_depth(
    ledger: Engine, worker: Any, run_of: Callable[..., dict[str, Any]], publishing: None
) -> None:
    from storage.ledger import rejected_events

    tenant = new_id("t")
    with writing(ledger, tenant) as store:
        lead = store.create("lead", {"source": "loop-test", "score": 0})
    with writing(ledger, tenant) as store:
        store.update("lead", {"score": 1}, id=lead.id)

    def refused() -> dict[str, Any] | None:
        return next((x for x in rejected_events(ledger, 200) if lead.id in x["raw"]), None)

    dead = wait_for(refused, 60, "the dead letter of the self-loop")
    chain = " -> ".join(["t-lead-touch"] * 6)
    assert dead["error"] == f"lead.updated refused: {chain}: chain depth 6 over CIRCUIT_MAX_CHAIN_DEPTH=5"
    assert dead["origin"] == "chain-depth"

    def runs() -> int:
        with ledger.connect() as conn:
            return int(
                conn.execute(
                    sa.text(
                        "SELECT count(*) FROM circuit_runs r JOIN circuit_events e ON r.event_id = e.id"
                        " WHERE e.subject = :s AND r.circuit = 't-lead-touch'"
                    ),
                    {"s": lead.id},
                ).scalar_one()
            )

    wait_for(lambda: runs() == 6, 30, "six runs in the ledger")
    time.sleep(1.5)
    assert runs() == 6  # max depth + 1, and no more
    with ledger.connect() as conn:
        score = conn.execute(sa.select(TABLES["lead"].c.score).where(TABLES["lead"].c.id == lead.id)).scalar_one()
    assert score == 7


def test_a_retried_step_publishes_its_write_once(
    ledger: Engine, worker: Any, run_of: Callable[..., dict[str, Any]]
) -> None:
    from workers.publish import publish

    tenant = new_id("t")
    with writing(ledger, tenant) as store:
        lead = store.create("lead", {"status": "new"})
    event = publish("test.record_retry", {"lead": lead.id}, id=new_id(), tenant=tenant)
    run = run_of(event.id, "t-record-retry")
    assert run["status"] == "succeeded" and run["steps"][0]["attempts"] == 2
    updates = wait_for(lambda: _events_of(ledger, lead.id, "lead.updated"), 30, "the update event in the ledger")
    time.sleep(1.0)
    assert len(_events_of(ledger, lead.id, "lead.updated")) == len(updates) == 1
    assert updates[0]["data"]["changed"]["score"] == {"old": None, "new": 1.0}
    with ledger.connect() as conn:
        staged = conn.execute(
            sa.select(sa.func.count()).where(OUTBOX.c.subject == lead.id, OUTBOX.c.type == "lead.updated")
        ).scalar_one()
        score = conn.execute(sa.select(TABLES["lead"].c.score).where(TABLES["lead"].c.id == lead.id)).scalar_one()
    assert staged == 1 and score == 2.0


# --- records import ---------------------------------------------------------------------------


def _first_rows(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "leads.csv"
    with LEADS_CSV.open(newline="", encoding="utf-8") as f:
        path.write_text("".join(next(f) for _ in range(n + 1)), encoding="utf-8", newline="")
    return path


def test_records_import_cli(engine_env: dict[str, str], ledger: Engine, worker: Any, tmp_path: Path) -> None:
    from tests.workers.test_cli import cli

    csv_file = _first_rows(tmp_path, 500)
    tenant = new_id("t")
    args = ["records", "import", str(csv_file), "--object", "lead", "--tenant", tenant, "--json"]
    maps = ["--map", "Prospect ID=external_id", "--map", "Lead Source=source"]
    out = cli(engine_env, *args, *maps)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert (report["rows"], report["created"], report["skipped"]) == (500, 500, 0)
    assert "importing lead" in out.stderr  # the progress bar
    table = TABLES["lead"]
    with ledger.connect() as conn:
        count = conn.execute(sa.select(sa.func.count()).where(table.c.tenant == tenant)).scalar_one()
        first = conn.execute(
            sa.select(table).where(
                table.c.tenant == tenant, table.c.external_id == "7927b2df-8bba-4d29-b9a2-b6e0beafe620"
            )
        ).one()
        events = conn.execute(
            sa.select(sa.func.count(), sa.func.count(OUTBOX.c.sent_at)).where(OUTBOX.c.tenant == tenant)
        ).one()
    assert count == 500 and tuple(events) == (500, 500)  # one lead.created each, all published
    assert first.source == "Olark Chat" and first.custom["lead_number"] == 660737
    assert "specialization" not in first.custom  # "Select" means not chosen
    again = json.loads(cli(engine_env, *args, *maps).stdout)
    assert (again["unchanged"], again["created"], again["updated"]) == (500, 0, 0)

    quiet = new_id("t")
    out = cli(engine_env, *args[:-3], "--tenant", quiet, "--limit", "20", "--no-events", "--json", *maps)
    assert json.loads(out.stdout)["created"] == 20
    with ledger.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).where(OUTBOX.c.tenant == quiet)).scalar_one() == 0
    bad = cli(engine_env, "records", "import", str(csv_file), "--object", "lead", "--map", "Prospect ID=nope")
    assert bad.returncode == 1 and "unknown field 'nope' of lead" in bad.stderr
