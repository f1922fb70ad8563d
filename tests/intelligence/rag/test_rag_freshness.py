"""Part 5, freshness: stale documents are flagged and re-ingested from their source by a scheduled circuit."""

from __future__ import annotations

import json
import time
from pathlib import Path

import yaml

from circuits.actions import ActionContext, ActionRegistry
from intelligence.rag import actions
from intelligence.rag.actions import flag_stale, ingest, refresh, retrieve
from intelligence.rag.schemas import DocumentIn, FlagStaleInput, IngestInput, RefreshInput, RetrieveInput

ROOT = Path(__file__).resolve().parents[3]
HOUR = 3600.0


def _write(path: Path, rows: list[dict[str, object]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_stale_documents_are_flagged_and_refreshed_from_their_source(ctx: ActionContext, tmp_path: Path) -> None:
    source = tmp_path / "prices.jsonl"
    old = time.time() - 2 * HOUR
    rows = [
        {
            "id": "price-list",
            "title": "Price list",
            "text": "The Pro plan costs 20 euros per month.",
            "timestamp": old,
            "ttl_s": HOUR,
        },
        {"id": "about", "title": "About us", "text": "We were founded in Lyon in 2012.", "ttl_s": 30 * 24 * HOUR},
    ]
    _write(source, rows)
    ingest(ctx, IngestInput(collection="website", path=str(source)))
    ingest(
        ctx,
        IngestInput(
            collection="website",
            documents=[
                DocumentIn(
                    id="memo", text="Old memo about moving the office to the second floor.", timestamp=old, ttl_s=HOUR
                )
            ],
        ),
    )

    hit = retrieve(ctx, RetrieveInput(collection="website", query="how much is the Pro plan", k=1)).hits[0]
    assert hit.doc_id == "price-list" and hit.stale

    assert flag_stale(ctx, FlagStaleInput(collection="website")).stale == ["memo", "price-list"]

    rows[0]["text"] = "The Pro plan costs 25 euros per month from March."  # the source changed meanwhile
    _write(source, rows)
    out = refresh(ctx, RefreshInput(collection="website"))
    assert out.refreshed == ["price-list"]
    assert "no source_uri" in out.failed["memo"]  # inline text cannot be fetched again; it stays flagged

    assert flag_stale(ctx, FlagStaleInput(collection="website")).stale == ["memo"]
    hit = retrieve(ctx, RetrieveInput(collection="website", query="how much is the Pro plan", k=1)).hits[0]
    assert hit.doc_id == "price-list" and not hit.stale and "25 euros" in hit.text


def test_a_document_going_stale_emits_knowledge_stale_once(ctx: ActionContext) -> None:
    old = time.time() - 2 * HOUR
    docs = [
        DocumentIn(id="price-list", text="The Pro plan costs 20 euros per month.", timestamp=old, ttl_s=HOUR),
        DocumentIn(id="about", text="We were founded in Lyon in 2012.", ttl_s=30 * 24 * HOUR),
    ]
    ingest(ctx, IngestInput(collection="website", documents=docs))

    out = flag_stale(ctx, FlagStaleInput(collection="website"))
    assert out.stale == out.flagged == ["price-list"]
    [event] = ctx.emitted
    assert event["type"] == "rag.knowledge_stale" and event["subject"] == "website"
    assert event["data"] == {"collection": "website", "stale": ["price-list"], "count": 1}

    sweep = ActionContext(run_id="run-2", step_id="sweep", circuit="t", resources=ctx.resources)
    again = flag_stale(sweep, FlagStaleInput(collection="website"))
    assert again.stale == ["price-list"] and again.flagged == [] and sweep.emitted == []  # still stale, not news


def test_unchanged_documents_are_not_embedded_again(ctx: ActionContext) -> None:
    docs = [DocumentIn(id="a", text="alpha text"), DocumentIn(id="b", text="beta text")]
    assert ingest(ctx, IngestInput(collection="website", documents=docs)).ingested == ["a", "b"]
    again = ingest(ctx, IngestInput(collection="website", documents=[docs[0], DocumentIn(id="b", text="beta v2")]))
    assert again.skipped == ["a"] and again.ingested == ["b"]


def test_refresh_circuit_runs_hourly_and_uses_real_actions() -> None:
    from circuits.loader import load_file
    from circuits.validate import validate

    path = ROOT / "examples" / "circuits" / "rag_refresh.yaml"
    loaded, source = load_file(path)
    assert validate(loaded, ActionRegistry.from_modules([actions]), source) == []  # the engine accepts it

    circuit = yaml.safe_load(path.read_text())
    assert circuit["trigger"] == {"schedule": "0 * * * *"}
    registry = ActionRegistry.from_modules([actions])
    assert [s["action"] for s in circuit["steps"]] == ["rag.flag_stale", "rag.refresh"]
    for step in circuit["steps"]:
        spec = registry.get(step["action"])
        spec.input_model.model_validate(step["with"])  # the step's inputs are valid for its action
        assert set(step) <= {"id", "action", "with", "if"}
