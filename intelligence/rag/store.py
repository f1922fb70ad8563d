"""The Chroma client: embedded PersistentClient under ``home/chroma``, or a server by URL.

Importing this module also registers our embedding function with Chroma, which a
process must do before it reopens a collection.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from circuits.errors import ConfigError, RetryableError
from intelligence.rag import embedding

log = logging.getLogger(__name__)

__all__ = ["chroma_client", "open_collection"]


def chroma_client(home: Path, chroma_url: str | None = None) -> Any:
    """A Chroma client: ``HttpClient`` when ``chroma_url`` is set, else a PersistentClient in ``home/chroma``."""
    import chromadb

    if chroma_url:
        url = urlparse(chroma_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ConfigError(f"CIRCUIT_CHROMA_URL: expected http(s)://host:port, got {chroma_url!r}")
        try:
            return chromadb.HttpClient(
                host=url.hostname, port=url.port or (443 if url.scheme == "https" else 8000), ssl=url.scheme == "https"
            )
        except Exception as exc:  # noqa: BLE001 - the driver raises many kinds; a server may come back
            raise RetryableError(f"Chroma server at {chroma_url} is unreachable: {exc}") from exc
    path = Path(home) / "chroma"
    path.mkdir(parents=True, exist_ok=True)
    log.info("using embedded Chroma at %s", path)
    return chromadb.PersistentClient(path=str(path))


def open_collection(client: Any, name: str, model_path: str | None = None) -> Any:
    """Get or create collection ``name`` with our embedding function (cosine space)."""
    return client.get_or_create_collection(
        name, embedding_function=embedding.MiniLMEmbedding(model_path), metadata={"generation": 0}
    )
