"""BM25 over a list of texts with bm25s, English stemming and English stop words.

The index is derived state: it is rebuilt from the texts (1,400 Cranfield chunks take
about 0.1 s), so nothing needs pickling and Chroma stays the one store of record.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

log = logging.getLogger(__name__)

K1 = 1.5
B = 0.75


class BM25:
    """Sparse lexical scores for a fixed list of texts (positions are the ids)."""

    def __init__(self, texts: Sequence[str], k1: float = K1, b: float = B) -> None:
        import bm25s
        import Stemmer

        self._tokenizer = bm25s.tokenization.Tokenizer(stemmer=Stemmer.Stemmer("english"), stopwords="en")
        self.size = len(texts)
        self._retriever = bm25s.BM25(k1=k1, b=b, method="lucene")
        if self.size:
            ids = self._tokenizer.tokenize(list(texts), update_vocab=True, return_as="ids", show_progress=False)
            self._retriever.index(ids, show_progress=False)
        self._empty_id = self._tokenizer.get_vocab_dict().get("")  # what an all-unknown query maps to

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every text for ``query`` (zeros when no query term is known)."""
        if not self.size:
            return np.zeros(0, dtype=np.float32)
        ids = self._tokenizer.tokenize([query], update_vocab=False, return_as="ids", show_progress=False)[0]
        ids = [i for i in ids if i != self._empty_id]
        if not ids:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._retriever.get_scores(ids), dtype=np.float32)

    def top(self, query: str, n: int) -> list[tuple[int, float]]:
        """The ``n`` best (position, score) pairs with a positive score, best first."""
        scores = self.scores(query)
        if scores.size == 0:
            return []
        n = min(n, scores.size)
        idx = np.argpartition(-scores, n - 1)[:n]
        idx = idx[np.argsort(-scores[idx], kind="stable")]
        return [(int(i), float(scores[i])) for i in idx if scores[i] > 0]
