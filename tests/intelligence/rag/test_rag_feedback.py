"""Part 7, feedback loop: recorded signals change later rankings, measurably."""

from __future__ import annotations

import sqlalchemy as sa

from circuits.actions import ActionContext
from intelligence.rag.actions import feedback, ingest, retrieve
from intelligence.rag.schemas import DocumentIn, FeedbackInput, IngestInput, RetrieveInput

DOCS = [
    DocumentIn(
        id="refund-v1",
        title="Refund policy",
        text="Refunds: customers may return items for a refund within 14 days. Refunds take two weeks.",
    ),
    DocumentIn(
        id="refund-v2",
        title="Refund policy",
        text="Refunds: customers may return items for a refund within 30 days. Refunds take five days.",
    ),
    DocumentIn(id="shipping", title="Shipping", text="Orders ship within two business days from our warehouse."),
]
QUERY = "refund policy for returned items"


def _ranking(ctx: ActionContext) -> list[str]:
    out = retrieve(ctx, RetrieveInput(collection="policies", query=QUERY, k=3))
    return [h.doc_id for h in out.hits]


def test_votes_and_clicks_reorder_results(ctx: ActionContext) -> None:
    ingest(ctx, IngestInput(collection="policies", documents=DOCS))
    before = _ranking(ctx)
    loser, winner = before[0], before[1]
    assert {loser, winner} == {"refund-v1", "refund-v2"}  # the two versions are neck and neck

    for i in range(3):  # users mark the first answer as wrong, and open the other one
        step = ActionContext(run_id=f"r{i}", step_id="vote", circuit="test", resources=ctx.resources)
        down = feedback(step, FeedbackInput(collection="policies", chunk_id=f"{loser}#0", signal="down", query=QUERY))
        feedback(step, FeedbackInput(collection="policies", doc_id=winner, signal="click", query=QUERY))
        feedback(step, FeedbackInput(collection="policies", doc_id=winner, signal="up", query=QUERY))
    assert down.doc_id == loser and down.usefulness < 0.5

    after = _ranking(ctx)
    assert after[:2] == [winner, loser]
    assert after[2] == "shipping"  # feedback reorders, it does not resurrect the irrelevant


def test_a_retried_step_counts_its_signal_once(ctx: ActionContext) -> None:
    ingest(ctx, IngestInput(collection="policies", documents=DOCS))
    first = feedback(ctx, FeedbackInput(collection="policies", doc_id="shipping", signal="up"))
    again = feedback(ctx, FeedbackInput(collection="policies", doc_id="shipping", signal="up"))  # same run and step
    assert again.id == first.id and again.usefulness == first.usefulness

    from intelligence.rag.service import RagService

    service: RagService = ctx.resource("rag.service", lambda: None)  # type: ignore[arg-type, return-value]
    with service.engine.connect() as conn:  # type: ignore[union-attr]
        rows = conn.execute(sa.text("select signal, value, run_id from rag_feedback")).all()
    assert rows == [("up", 1.0, "test-run:test-step")]


def test_unknown_signals_are_refused(ctx: ActionContext) -> None:
    import pytest

    from circuits.errors import PermanentError

    ingest(ctx, IngestInput(collection="policies", documents=DOCS[:1]))
    with pytest.raises(PermanentError, match="unknown feedback signal 'meh'"):
        feedback(ctx, FeedbackInput(collection="policies", doc_id="refund-v1", signal="meh"))
