"""Circuits deployed through the API, merged into a worker's catalogue without a restart.

A deploy, enable or disable stores its change in the database and then increments
:data:`REVISION_KEY` in Redis. Every process checks that counter at most once a second
(:func:`refresh`, called when the catalogue is used) and, when it moved, rebuilds its
catalogue: the file circuits it started with, overlaid by the newest stored version of
each deployed circuit, with the enabled flags applied. A stored version that does not
validate against this worker's actions is logged and skipped (the previous one stays).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import TYPE_CHECKING

import redis
import sqlalchemy as sa

from circuits.catalog import Catalog, Entry
from circuits.compiler import Compiler
from circuits.errors import DefinitionError
from circuits.loader import CircuitFileErrors, load_text
from circuits.validate import validate
from storage import circuit_store

if TYPE_CHECKING:
    from workers.runtime import Runtime

log = logging.getLogger(__name__)
REVISION_KEY = "circuit:catalog:rev"
CHECK_EVERY_S = 1.0
RETRY_AFTER_FAILURE_S = 30.0


def bump(rt: Runtime) -> int:
    """Tell every process that the deployed circuits changed; this one looks again at its next use."""
    revision = int(rt.redis.incr(REVISION_KEY))
    rt.catalog_checked_at = 0.0
    return revision


def _revision(rt: Runtime) -> str:
    raw = rt.redis.get(REVISION_KEY)
    return raw.decode() if raw is not None else "0"


def _stored(rt: Runtime) -> tuple[list[dict[str, object]], dict[str, bool]]:
    try:
        return circuit_store.latest_versions(rt.engine), circuit_store.states(rt.engine)
    except sa.exc.ProgrammingError:  # tables not created yet: then nothing was ever deployed
        return [], {}
    except sa.exc.OperationalError as exc:
        if "no such table" in str(exc):  # SQLite's word for the same
            return [], {}
        raise


def deployed_entry(rt: Runtime, row: dict[str, object], compiler: Compiler) -> Entry:
    """The catalogue entry of one stored version; its version number is the stored one."""
    circuit, source = load_text(str(row["text"]), file=f"{row['name']} v{row['version']} (deployed)")
    circuit = circuit.model_copy(update={"version": int(str(row["version"]))})
    problems = validate(circuit, rt.registry, source)
    if problems:
        raise CircuitFileErrors(problems)
    tenant = row["tenant"]
    return Entry(
        circuit,
        source,
        compiler.circuit(circuit),
        compiler.on_failure(circuit),
        tenant=str(tenant) if tenant is not None else None,
        origin="deployed",
    )


def build(rt: Runtime, base: list[Entry]) -> Catalog:
    """The file circuits ``base`` overlaid with the deployed ones and the enabled flags."""
    try:
        revision = _revision(rt)  # read before the database: a deploy in between is seen next time
    except redis.RedisError as exc:
        log.warning("cannot read the deploy revision (%s); deployed circuits are read again later", exc)
        revision = None
    entries = {e.name: e for e in base}
    failed = False
    try:
        rows, flags = _stored(rt)
    except sa.exc.SQLAlchemyError as exc:
        log.error("cannot read deployed circuits, running the file circuits only for now: %s", exc)
        rows, flags, failed = [], {}, True
    compiler = Compiler(rt.registry)
    for row in rows:
        try:
            entries[str(row["name"])] = deployed_entry(rt, row, compiler)
        except DefinitionError as exc:
            log.error("deployed circuit %s v%s does not run here, skipped: %s", row["name"], row["version"], exc)
    for name, enabled in flags.items():
        if name in entries and not enabled:
            entries[name] = dataclasses.replace(entries[name], enabled=False)
    catalog = Catalog(list(entries.values()), revision, base)
    catalog.failed = failed or revision is None
    return catalog


def refresh(rt: Runtime, catalog: Catalog) -> Catalog | None:
    """A rebuilt catalogue if the deployed circuits changed since ``catalog`` was built, else None.

    Checks Redis at most once a second per process; a Redis error keeps the catalogue as it is.
    """
    now = time.monotonic()
    if now - rt.catalog_checked_at < CHECK_EVERY_S:
        return None
    rt.catalog_checked_at = now
    try:
        revision = _revision(rt)
    except redis.RedisError:
        return None
    stale = catalog.failed and now - rt.catalog_built_at > RETRY_AFTER_FAILURE_S
    if revision == catalog.revision and not stale:
        return None
    rt.catalog_built_at = now
    fresh = build(rt, catalog.base)
    log.info("deployed circuits changed (revision %s): %d circuits", revision, len(fresh))
    return fresh
