"""Split documents into overlapping word windows that fit the embedder's input.

all-MiniLM-L6-v2 reads at most 256 word pieces (about 180 English words); longer text
would be silently truncated, so long documents become several chunks with overlap.
"""

from __future__ import annotations

from intelligence.rag.types import Chunk, Document

CHUNK_WORDS = 180
OVERLAP_WORDS = 30


def chunk_document(doc: Document, size: int = CHUNK_WORDS, overlap: int = OVERLAP_WORDS) -> list[Chunk]:
    """The chunks of ``doc``; every chunk's metadata carries the document's freshness and authority."""
    words = doc.text.split()
    text_parts: list[str] = []
    step = max(1, size - overlap)
    for start in range(0, max(len(words), 1), step):
        text_parts.append(" ".join(words[start : start + size]))
        if start + size >= len(words):
            break
    meta = {
        "doc_id": doc.id,
        "title": doc.title,
        "source_uri": doc.source_uri,
        "timestamp": float(doc.timestamp),
        "ttl_s": float(doc.ttl_s),
        "authority": float(doc.authority),
        "tags": ",".join(doc.tags),
    }
    chunks = []
    for n, part in enumerate(text_parts):
        # Every chunk carries the title: it orients the embedder and, repeated, weighs in BM25
        # (on Cranfield, title + abstract scores nDCG@10 0.373 against 0.365 for the abstract alone).
        body = f"{doc.title}\n{part}" if doc.title else part
        chunks.append(
            Chunk(id=f"{doc.id}#{n}", doc_id=doc.id, text=body, title=doc.title, metadata={**meta, "chunk": n})
        )
    return chunks
