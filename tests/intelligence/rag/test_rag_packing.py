"""Part 6, context packing: token budget kept, duplicates dropped, diverse chunks preferred."""

from __future__ import annotations

from intelligence.rag.packing import estimate_tokens, pack
from intelligence.rag.types import Hit


def _hit(hid: str, text: str, score: float) -> Hit:
    return Hit(id=hid, text=text, score=score, source="chroma", doc_id=hid.split("#")[0])


REFUND = "Refunds are paid back to the original card within five business days of the request."
REFUND_AGAIN = "Refunds are paid back to the original card within five business days of the request ."
REFUND_REWORDED = "Refunds are paid back to the card within five business days after the request is approved."
EXCEPTIONS = "Gift cards and custom orders cannot be refunded, but store credit can be offered instead."


def test_duplicates_are_dropped_and_diversity_wins_over_repetition() -> None:
    hits = [
        _hit("a#0", REFUND, 1.0),
        _hit("copy#0", REFUND_AGAIN, 0.99),  # the same passage ingested twice
        _hit("b#0", REFUND_REWORDED, 0.95),  # says the same thing in other words
        _hit("c#0", EXCEPTIONS, 0.80),  # less relevant but new information
    ]
    packed = pack(hits, budget=10_000)
    assert "copy#0" in packed.duplicates and "copy#0" not in [h.id for h in packed.hits]
    assert [h.id for h in packed.hits][:2] == ["a#0", "c#0"]  # MMR takes the new facts before the rewording

    relevance_only = pack(hits, budget=10_000, lam=1.0)
    assert [h.id for h in relevance_only.hits][:2] == ["a#0", "b#0"]


def test_the_budget_is_never_exceeded() -> None:
    hits = [_hit(f"d{i}#0", f"topic {i} " + "word " * 40 * (i + 1), 1.0 - i / 10) for i in range(6)]
    budget = estimate_tokens(hits[0].text) + estimate_tokens(hits[2].text) + 5
    packed = pack(hits, budget=budget)
    assert packed.tokens <= budget
    assert packed.tokens == sum(estimate_tokens(h.text) for h in packed.hits)
    assert packed.over_budget and packed.hits[0].id == "d0#0"
