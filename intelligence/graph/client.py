"""A thin wrapper over the official ``neo4j`` driver: connection, read/write, error mapping.

Reads run in an explicit transaction that is always rolled back, so even a
catalogue template that wrote by mistake could not change the graph (ArcadeDB,
unlike Neo4j, lets writes through a driver "read" transaction). Driver errors
are translated into the Circuit OS error tree here and nowhere else.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from circuits.errors import ConfigError, PermanentError, RetryableError
from intelligence.graph.embedded import DEFAULT_BOLT_PORT

if TYPE_CHECKING:
    from neo4j import Driver

__all__ = ["GraphClient", "client_from_settings", "default_url"]

log = logging.getLogger(__name__)


def default_url() -> str:
    """Where the embedded server listens when ``CIRCUIT_NEO4J_URL`` is unset."""
    return f"bolt://127.0.0.1:{DEFAULT_BOLT_PORT}"


class GraphClient:
    """One driver (a connection pool) and the database its sessions use.

    Args:
        url: Bolt URL (``bolt://`` or ``neo4j://``).
        user: user name.
        password: password.
        database: database name; ``None`` = the server's default.
    """

    def __init__(self, url: str, user: str, password: str, database: str | None = None) -> None:
        try:
            from neo4j import GraphDatabase
        except ImportError:
            raise ConfigError("the knowledge graph needs the 'graph' extra: pip install 'circuit-os[graph]'") from None
        self.url = url
        self.database = database
        self.driver: Driver = GraphDatabase.driver(url, auth=(user, password), max_connection_pool_size=16)

    def read(self, cypher: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run a read query and return its rows as dicts; the transaction is rolled back."""
        with self._translated(), self._read_session() as session:
            tx = session.begin_transaction()
            try:
                return [record.data() for record in tx.run(cypher, dict(params or {}))]
            finally:
                tx.rollback()

    @contextmanager
    def reader(self) -> Iterator[Callable[[str, Mapping[str, Any] | None], list[dict[str, Any]]]]:
        """Several reads in one transaction (one BEGIN/ROLLBACK), for callers that chain queries."""
        with self._translated(), self._read_session() as session:
            tx = session.begin_transaction()

            def run(cypher: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
                return [record.data() for record in tx.run(cypher, dict(params or {}))]

            try:
                yield run
            finally:
                tx.rollback()

    def write(self, cypher: str, params: Mapping[str, Any] | None = None) -> dict[str, int]:
        """Run a write query in a committed transaction (retried by the driver on transient errors)."""

        def work(tx: Any) -> dict[str, int]:
            counters = tx.run(cypher, dict(params or {})).consume().counters
            return {
                "nodes_created": counters.nodes_created,
                "relationships_created": counters.relationships_created,
                "properties_set": counters.properties_set,
            }

        with self._translated(), self.driver.session(database=self.database) as session:
            return session.execute_write(work)

    def _read_session(self) -> Any:
        # READ access lets a Neo4j cluster route reads to followers; it does not make them read-only
        # on ArcadeDB, hence the rollback in read()/reader().
        return self.driver.session(database=self.database, default_access_mode="READ")

    @contextmanager
    def _translated(self) -> Iterator[None]:
        from neo4j import exceptions as ne

        try:
            yield
        except ne.AuthError as exc:
            raise ConfigError(
                f"graph at {self.url} refused the credentials (CIRCUIT_NEO4J_USER/PASSWORD): {exc}"
            ) from None
        except (ne.ServiceUnavailable, ne.SessionExpired, ne.TransientError) as exc:
            raise RetryableError(
                f"graph at {self.url} is unavailable ({exc}); is `circuit-os graph serve` running?"
            ) from None
        except ne.Neo4jError as exc:
            raise PermanentError(f"graph query failed: {exc.message or exc}") from None

    def close(self) -> None:
        """Close the pool; :class:`circuits.actions.Resources` calls this at process shutdown."""
        self.driver.close()


def client_from_settings(settings: Any = None) -> GraphClient:
    """Build the client from Settings: ``neo4j_url`` if set, else the embedded server's default port."""
    if settings is None:
        from circuits.settings import get_settings

        settings = get_settings()
    url = settings.neo4j_url or default_url()
    # neo4j_database is not a Settings field yet: None means the server's default database.
    database = getattr(settings, "neo4j_database", None)
    log.info("graph client for %s (database %s)", url, database or "server default")
    return GraphClient(url, settings.neo4j_user, settings.neo4j_password, database)
