"""Read documents from where users keep them: a JSONL file, a text file, a folder.

Every document remembers its ``source_uri`` (the file it came from) so the refresh
circuit can read it again when it goes stale.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from circuits.errors import NotFoundError, PermanentError
from intelligence.rag.types import Document

TEXT_SUFFIXES = (".txt", ".md", ".rst")


def document_from_record(row: dict[str, Any], source_uri: str = "", now: float | None = None) -> Document:
    """A Document from a dict with ``id`` or ``_id``, ``text`` and optional title/ttl_s/authority/tags."""
    doc_id = row.get("id", row.get("_id"))
    if doc_id is None or "text" not in row:
        raise PermanentError(f"document record needs 'id' (or '_id') and 'text': got keys {sorted(row)}")
    kwargs: dict[str, Any] = {
        "id": str(doc_id),
        "text": str(row["text"]),
        "title": str(row.get("title") or ""),
        "source_uri": str(row.get("source_uri") or source_uri),
        "timestamp": float(row.get("timestamp") or (time.time() if now is None else now)),
        "tags": tuple(row.get("tags") or ()),
    }
    for name in ("ttl_s", "authority"):
        if row.get(name) is not None:
            kwargs[name] = float(row[name])
    return Document(**kwargs)


def documents_from_path(path: str | Path, **defaults: Any) -> list[Document]:
    """Documents from a ``.jsonl`` file (one record a line), a text file, or a folder of text files."""
    p = Path(str(path).removeprefix("file://"))
    if not p.exists():
        raise NotFoundError(f"no such file or folder: {p}")
    files = sorted(f for f in p.rglob("*") if f.suffix in (*TEXT_SUFFIXES, ".jsonl")) if p.is_dir() else [p]
    docs: list[Document] = []
    for f in files:
        if f.suffix == ".jsonl":
            with f.open(encoding="utf-8") as fh:
                docs += [document_from_record({**defaults, **json.loads(line)}, str(f)) for line in fh if line.strip()]
        else:
            doc_id = str(f.relative_to(p)) if p.is_dir() else f.name
            docs.append(document_from_record({**defaults, "id": doc_id, "text": f.read_text(encoding="utf-8")}, str(f)))
    return docs


def reload_document(source_uri: str, doc_id: str, **defaults: Any) -> Document:
    """Read ``doc_id`` again from ``source_uri`` (for the refresh circuit)."""
    if not source_uri:
        raise PermanentError(f"document {doc_id!r} has no source_uri; it cannot be refreshed")
    p = Path(source_uri.removeprefix("file://"))
    if p.suffix == ".jsonl":
        for doc in documents_from_path(p, **defaults):
            if doc.id == doc_id:
                return doc
        raise NotFoundError(f"document {doc_id!r} is no longer in {p}")
    if not p.exists():
        raise NotFoundError(f"source of {doc_id!r} is gone: {p}")
    return document_from_record({**defaults, "id": doc_id, "text": p.read_text(encoding="utf-8")}, str(p))
