"""Part 8, multi-source fusion: results from several sources merge and keep their source."""

from __future__ import annotations

from intelligence.rag.service import RagService
from intelligence.rag.sources import CallableSource, IndexSource, ListSource, Source, search_all

FAQ = [
    {"id": "faq-1", "text": "Refunds for annual plans are prorated for unused months."},
    {"id": "faq-2", "text": "Gift cards cannot be refunded."},
]


def test_fused_results_come_from_both_sources_and_keep_provenance(kb: RagService) -> None:
    chroma = IndexSource(kb.index("helpdesk"))
    faq = ListSource("faq", FAQ)
    assert isinstance(faq, Source) and isinstance(chroma, Source)

    hits = search_all([chroma, faq], "can I get a refund", k=5)

    by_source = {h.source for h in hits}
    assert by_source == {"chroma", "faq"}
    assert hits[0].id in {"refunds#0", "faq:faq-1", "faq:faq-2"}
    faq_hit = next(h for h in hits if h.source == "faq")
    assert faq_hit.metadata["sources"] == ["faq"] and faq_hit.text in {r["text"] for r in FAQ}
    assert next(h for h in hits if h.id == "refunds#0").metadata["sources"] == ["chroma"]


def test_extra_sources_flow_through_the_service_with_their_names(kb: RagService) -> None:
    mcp = CallableSource("mcp", lambda q, k: [{"id": "ticket-7", "text": "Live status: Acme renewal is signed."}])
    got = kb.retrieve("helpdesk", "what is the current status of the Acme renewal", k=5, sources=[mcp])
    assert got.route.intent == "live"
    assert [h.id for h in got.hits if h.source == "mcp"] == ["mcp:ticket-7"]


def test_a_failing_source_does_not_sink_the_others(kb: RagService) -> None:
    def broken(query: str, k: int) -> list[dict[str, str]]:
        raise ConnectionError("graph server down")

    hits = search_all([IndexSource(kb.index("helpdesk")), CallableSource("graph", broken)], "reset password", k=3)
    assert hits and hits[0].doc_id == "password" and {h.source for h in hits} == {"chroma"}
