"""Per-process cache of loaded models, refreshed when the registry names a new champion.

One instance lives in each worker process (through ``ctx.resource``). Each call asks the
database which version is champion (one indexed row) and reloads only when it changed,
so a promotion or rollback takes effect on the next prediction in every worker.
"""

from __future__ import annotations

import logging
import threading

from circuits.errors import NotFoundError
from intelligence.ml.registry import ModelRegistry
from intelligence.ml.scoring import Scorer

log = logging.getLogger(__name__)


class ModelCache:
    """Loaded scorers by (name, version, file checksum)."""

    def __init__(self, registry: ModelRegistry, max_items: int = 8) -> None:
        self.registry = registry
        self.max_items = max_items
        self._items: dict[tuple[str, int, str], Scorer] = {}
        self._champions: dict[str, tuple[int, str]] = {}
        self._lock = threading.Lock()
        self.loads = 0

    def champion(self, name: str) -> Scorer:
        """The scorer of ``name``'s current champion."""
        ref = self.registry.champion_ref(name)
        if ref is None:
            raise NotFoundError(f"model {name!r} has no champion: train one with `circuit-os ml train` or ml.train")
        previous = self._champions.get(name)
        if previous is not None and previous != ref:
            log.info("champion of %s changed from v%d to v%d: reloading", name, previous[0], ref[0])
            self._items.pop((name, *previous), None)
        self._champions[name] = ref
        return self._scorer(name, *ref)

    def version(self, name: str, version: int) -> Scorer:
        """The scorer of a given version (evaluations, shadow scoring)."""
        info = self.registry.get(name, version)
        return self._scorer(name, info.version, info.artifact_sha256)

    def _scorer(self, name: str, version: int, sha: str) -> Scorer:
        key = (name, version, sha)
        scorer = self._items.get(key)
        if scorer is not None:
            return scorer
        with self._lock:
            scorer = self._items.get(key)
            if scorer is None:
                info = self.registry.get(name, version)
                scorer = Scorer(self.registry.load(info), info.schema, version=info.version, name=name)
                self.loads += 1
                if len(self._items) >= self.max_items:
                    self._items.pop(next(iter(self._items)))
                self._items[key] = scorer
        return scorer

    def close(self) -> None:
        self._items.clear()
        self.registry.engine.dispose()
