"""Part 3, value scoring: freshness, authority, usefulness and context move a result, by configured weights."""

from __future__ import annotations

import time

from intelligence.rag.scoring import ValueWeights, freshness, value_rank
from intelligence.rag.service import RagService
from intelligence.rag.types import Document, Hit

NOW = 1_700_000_000.0
DAY = 86400.0


def _hit(hid: str, score: float, **meta: object) -> Hit:
    return Hit(id=hid, text=f"text of {hid}", score=score, source="chroma", doc_id=hid, metadata=dict(meta))


def test_each_value_part_can_overturn_a_small_relevance_lead() -> None:
    old = _hit("old", 1.00, timestamp=NOW - 30 * DAY, ttl_s=7 * DAY)
    new = _hit("new", 0.98, timestamp=NOW - 1 * DAY, ttl_s=7 * DAY)
    floor = _hit("floor", 0.0, timestamp=NOW, ttl_s=7 * DAY)  # fixes the min-max scale
    ranked = value_rank([old, new, floor], now=NOW)
    assert [h.id for h in ranked[:2]] == ["new", "old"]
    assert ranked[1].scores["stale"] == 1.0 and "stale" not in ranked[0].scores

    trusted = _hit("trusted", 0.97, authority=1.0)
    rumour = _hit("rumour", 1.0, authority=0.0)
    assert value_rank([rumour, trusted, _hit("floor", 0.0)], weights=ValueWeights(authority=0.5))[0].id == "trusted"

    liked = value_rank([_hit("a", 1.0), _hit("b", 0.97), _hit("f", 0.0)], usefulness={"a": 0.2, "b": 0.9})
    assert liked[0].id == "b"

    tagged = _hit("eu", 0.97, tags="eu,billing")
    ctx = value_rank([_hit("us", 1.0, tags="us"), tagged, _hit("f", 0.0)], context={"tags": ["eu"]})
    assert ctx[0].id == "eu" and ctx[0].scores["context"] == 1.0


def test_relevance_only_weights_ignore_the_other_parts() -> None:
    hits = [_hit("a", 1.0, authority=0.0), _hit("b", 0.9, authority=1.0), _hit("c", 0.0)]
    ranked = value_rank(hits, weights=ValueWeights(relevance=1, freshness=0, authority=0, usefulness=0, context=0))
    assert [h.id for h in ranked] == ["a", "b", "c"]


def test_freshness_halves_at_the_time_to_live() -> None:
    assert freshness({"timestamp": NOW - DAY, "ttl_s": DAY}, NOW) == (0.5, False)
    value, stale = freshness({"timestamp": NOW - 3 * DAY, "ttl_s": DAY}, NOW)
    assert stale and value == 0.125
    assert freshness({}, NOW) == (0.5, False)  # unknown age: neutral


def test_service_prefers_the_fresh_copy_of_the_same_content(service: RagService) -> None:
    text = "The enterprise plan costs 40 dollars per seat per month, billed yearly."
    now = time.time()
    service.ingest(
        "pricing",
        [
            Document(id="pricing-2021", title="Pricing", text=text, timestamp=now - 400 * DAY, ttl_s=90 * DAY),
            Document(id="pricing-2025", title="Pricing", text=text, timestamp=now - 2 * DAY, ttl_s=90 * DAY),
        ],
    )
    hits = service.retrieve("pricing", "how much does the enterprise plan cost", k=2).hits
    assert [h.doc_id for h in hits] == ["pricing-2025", "pricing-2021"]
    assert hits[1].scores.get("stale") == 1.0
