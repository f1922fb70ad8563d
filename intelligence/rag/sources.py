"""Multi-source retrieval: one small interface, adapters, and fusion that keeps provenance.

Anything with ``name`` and ``search(query, k) -> list[Hit]`` is a :class:`Source`: the
Chroma hybrid index, an in-process list of records, the knowledge graph, MCP tool
results. The graph and MCP clients live elsewhere; :class:`CallableSource` adapts any
function returning dicts into hits, so they plug in without this package importing them.
Fusion is weighted reciprocal rank fusion (scores of different sources are not
comparable, ranks are); every fused hit keeps ``source`` and ``metadata["sources"]``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from intelligence.rag import fusion
from intelligence.rag.index import HybridIndex, Strategy
from intelligence.rag.sparse import BM25
from intelligence.rag.types import Hit

log = logging.getLogger(__name__)


@runtime_checkable
class Source(Protocol):
    """A place results come from."""

    name: str

    def search(self, query: str, k: int) -> list[Hit]: ...


class IndexSource:
    """The Chroma collection, searched hybrid (dense + BM25)."""

    def __init__(self, index: HybridIndex, strategy: Strategy = "hybrid", alpha: float = fusion.DEFAULT_ALPHA) -> None:
        self.index, self.name, self.strategy, self.alpha = index, index.source, strategy, alpha

    def search(self, query: str, k: int) -> list[Hit]:
        return self.index.search(query, k, self.strategy, self.alpha)


class ListSource:
    """BM25 over records held in memory (an FAQ, a config table, a tool's last output)."""

    def __init__(self, name: str, records: Sequence[Mapping[str, Any]], text_key: str = "text", id_key: str = "id"):
        self.name = name
        self._records = [dict(r) for r in records]
        self._text_key, self._id_key = text_key, id_key
        self._bm25 = BM25([str(r.get(text_key, "")) for r in self._records])

    def search(self, query: str, k: int) -> list[Hit]:
        return [
            _to_hit(self.name, self._records[i], score, self._text_key, self._id_key)
            for i, score in self._bm25.top(query, k)
        ]


class CallableSource:
    """Adapt ``fn(query, k) -> list[dict]`` (graph query, MCP tool call) into a Source.

    Each dict needs a text (``text_key``) and may carry an id, a score and metadata;
    a failing source is logged and yields nothing, so one broken tool cannot sink retrieval.
    """

    def __init__(
        self,
        name: str,
        fn: Callable[[str, int], Sequence[Mapping[str, Any]]],
        text_key: str = "text",
        id_key: str = "id",
    ) -> None:
        self.name, self._fn, self._text_key, self._id_key = name, fn, text_key, id_key

    def search(self, query: str, k: int) -> list[Hit]:
        try:
            rows = self._fn(query, k)
        except Exception:  # noqa: BLE001 - isolate a failing source; the others still answer
            log.warning("source %s failed for %r", self.name, query, exc_info=True)
            return []
        n = len(rows)
        return [
            _to_hit(self.name, row, float(row.get("score", n - i)), self._text_key, self._id_key)
            for i, row in enumerate(rows[:k])
        ]


def _to_hit(source: str, row: Mapping[str, Any], score: float, text_key: str, id_key: str) -> Hit:
    rid = str(row.get(id_key) or hashlib.sha1(str(row.get(text_key)).encode()).hexdigest()[:12])
    meta = {k: v for k, v in row.items() if k not in (text_key, "score") and isinstance(v, str | int | float | bool)}
    return Hit(
        id=f"{source}:{rid}",
        text=str(row.get(text_key, "")),
        score=score,
        source=source,
        doc_id=f"{source}:{rid}",
        title=str(row.get("title", "")),
        metadata=meta,
        scores={source: score},
    )


def search_all(sources: Sequence[Source], query: str, k: int, weights: Mapping[str, float] | None = None) -> list[Hit]:
    """Ask every source for ``k`` results and fuse them by weighted RRF (each hit keeps its source)."""
    lists = {src.name: src.search(query, k) for src in sources}
    log.debug("sources answered: %s", {name: len(hits) for name, hits in lists.items()})
    return fusion.rrf(lists, weights=weights)[:k]
