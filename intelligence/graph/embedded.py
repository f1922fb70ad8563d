"""The embedded knowledge-graph server: ArcadeDB with its Bolt plugin, from PyPI.

No Neo4j server installs here, so the default (and the tests) use ArcadeDB's
embedded package, which bundles a Java runtime and speaks Bolt; the official
``neo4j`` driver talks to it exactly as to Neo4j.

The JVM runs in a child process (``python -m intelligence.graph.embedded``),
never inside a worker or test process: a JVM cannot be restarted in a process,
does not survive ``fork`` (Celery prefork), and writes ``./log`` into its
working directory, which here is the database folder.

Use it as a context manager::

    with EmbeddedGraphServer(settings.home / "graph", password=pw) as server:
        driver = neo4j.GraphDatabase.driver(server.bolt_url, auth=(server.user, pw))
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from circuits.errors import ConfigError

__all__ = ["DEFAULT_BOLT_PORT", "DEFAULT_DATABASE", "EmbeddedServerError", "EmbeddedGraphServer", "free_port", "serve"]

log = logging.getLogger(__name__)

DEFAULT_BOLT_PORT = 7687
DEFAULT_HTTP_PORT = 2480
#: The database Bolt sessions land in when they name none (Neo4j's own default is "neo4j").
DEFAULT_DATABASE = "circuit"
ROOT_USER = "root"  # ArcadeDB's administrator; the only user the embedded server creates
_PASSWORD_ENV = "CIRCUIT_GRAPH_SERVER_PASSWORD"  # handed to the child by env, never on argv (ps shows argv)


class EmbeddedServerError(ConfigError):
    """The embedded graph server did not start or stop (the message carries its log tail)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class EmbeddedGraphServer:
    """Start and stop an ArcadeDB Bolt server in a child process.

    Args:
        root: folder for the databases, config and logs (``settings.home / "graph"``).
        password: the root user's password (at least 8 characters).
        bolt_port: Bolt port; ``0`` or ``None`` picks a free one.
        http_port: ArcadeDB's HTTP port (unused by us, but always bound); ``0``/``None`` = free.
        database: the default database Bolt sessions use; created if missing.
        heap: the JVM's maximum heap.
        start_timeout_s: how long to wait for Bolt to answer.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        password: str,
        bolt_port: int | None = None,
        http_port: int | None = None,
        database: str = DEFAULT_DATABASE,
        heap: str = "512m",
        start_timeout_s: float = 60.0,
    ) -> None:
        if len(password) < 8:
            raise ConfigError("the embedded graph server needs a password of at least 8 characters")
        self.root = Path(root).resolve()
        self.password = password
        self.bolt_port = bolt_port or free_port()
        self.http_port = http_port or free_port()
        self.database = database
        self.heap = heap
        self.start_timeout_s = start_timeout_s
        self.user = ROOT_USER
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bolt_url(self) -> str:
        return f"bolt://127.0.0.1:{self.bolt_port}"

    @property
    def pid(self) -> int | None:
        """The server process id while it runs."""
        return self._proc.pid if self._proc is not None else None

    @property
    def log_path(self) -> Path:
        return self.root / "server.log"

    def start(self) -> EmbeddedGraphServer:
        """Spawn the server and return once Bolt accepts our credentials."""
        if self._proc is not None:
            raise EmbeddedServerError("the embedded graph server is already running")
        for port in (self.bolt_port, self.http_port):
            if _port_open(port):
                raise EmbeddedServerError(f"port {port} on 127.0.0.1 is already in use")
        self.root.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "intelligence.graph.embedded",
            "--root",
            str(self.root),
            "--bolt-port",
            str(self.bolt_port),
            "--http-port",
            str(self.http_port),
            "--database",
            self.database,
            "--heap",
            self.heap,
        ]
        env = {**os.environ, _PASSWORD_ENV: self.password}
        with open(self.log_path, "ab") as out:
            self._proc = subprocess.Popen(cmd, cwd=self.root, env=env, stdout=out, stderr=subprocess.STDOUT)
        log.info("starting embedded graph server pid=%s bolt=%s root=%s", self._proc.pid, self.bolt_url, self.root)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        from neo4j import GraphDatabase  # lazy: only processes that start a server need the driver here
        from neo4j.exceptions import AuthError, ClientError, ServiceUnavailable, SessionExpired

        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise EmbeddedServerError(f"graph server exited with {self._proc.returncode}: {self._log_tail()}")
            if _port_open(self.bolt_port):
                # The right password only: ArcadeDB locks the user out after ~7 wrong ones.
                with GraphDatabase.driver(self.bolt_url, auth=(self.user, self.password)) as driver:
                    try:
                        # Bolt answers before the database exists: wait until a query runs in it.
                        driver.execute_query("RETURN 1 AS ok", database_=self.database)
                        log.info("embedded graph server ready at %s", self.bolt_url)
                        return
                    except AuthError as exc:
                        raise EmbeddedServerError(f"graph server refused the configured password: {exc}") from None
                    except (ServiceUnavailable, ClientError, SessionExpired):
                        pass
            time.sleep(0.2)
        raise EmbeddedServerError(
            f"graph server did not answer on {self.bolt_url} within {self.start_timeout_s:.0f}s: {self._log_tail()}"
        )

    def _log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout_s: float = 30.0) -> None:
        """Ask the server to stop (SIGTERM), and kill it if it has not within ``timeout_s``."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            log.warning("graph server pid=%s did not stop in %.0fs; killing it", proc.pid, timeout_s)
            proc.kill()
            proc.wait(10)
        log.info("embedded graph server stopped (exit %s)", proc.returncode)

    def __enter__(self) -> EmbeddedGraphServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def serve(
    root: Path,
    *,
    password: str,
    bolt_port: int,
    http_port: int,
    database: str,
    heap: str = "512m",
    exit_with_parent: bool = False,
) -> None:
    """Run the ArcadeDB Bolt server in this process until SIGTERM or Ctrl-C (the foreground mode)."""
    try:
        import arcadedb_embedded as adb
    except ImportError:
        raise ConfigError(
            "the embedded graph server needs the 'graph' extra: pip install 'circuit-os[graph]'"
        ) from None
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    http_port = http_port or free_port()  # 0 = any free port (we never use HTTP, but ArcadeDB always binds it)
    os.chdir(root)  # ArcadeDB writes ./log relative to the working directory
    config: dict[str, Any] = {
        "host": "127.0.0.1",  # every listener, Bolt included, on loopback only
        "http_port": http_port,
        "server_plugins": "Bolt:com.arcadedb.bolt.BoltProtocolPlugin",
        "bolt_port": bolt_port,
        "bolt_defaultDatabase": database,
    }
    server = adb.ArcadeDBServer(str(root), root_password=password, config=config, jvm_kwargs={"heap_size": heap})
    stopping = False

    def _stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        server.start()
        if not server._java_server.existsDatabase(database):  # noqa: SLF001 - the wrapper has no exists()
            server.create_database(database)
        log.info("graph server listening on bolt://127.0.0.1:%s (database %s, root %s)", bolt_port, database, root)
        parent = os.getppid()
        while not stopping:
            time.sleep(0.2)
            if exit_with_parent and os.getppid() != parent:  # the test run or app that started us is gone
                log.warning("parent process %s exited; stopping the graph server", parent)
                break
    finally:
        server.stop()
        log.info("graph server stopped")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the child process started by :class:`EmbeddedGraphServer`."""
    parser = argparse.ArgumentParser(prog="python -m intelligence.graph.embedded")
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--bolt-port", type=int, default=DEFAULT_BOLT_PORT)
    parser.add_argument("--http-port", type=int, default=DEFAULT_HTTP_PORT)
    parser.add_argument("--database", default=DEFAULT_DATABASE)
    parser.add_argument("--heap", default="512m")
    args = parser.parse_args(argv)
    password = os.environ.pop(_PASSWORD_ENV, "")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    code = 0
    try:
        serve(
            args.root,
            password=password,
            bolt_port=args.bolt_port,
            http_port=args.http_port,
            database=args.database,
            heap=args.heap,
            exit_with_parent=True,
        )
    except Exception:  # noqa: BLE001 - logged, then the exit code tells the parent
        log.exception("graph server failed")
        code = 1
    # The JVM keeps non-daemon threads after the server stops; leave without waiting on them.
    logging.shutdown()
    os._exit(code)


if __name__ == "__main__":
    main()
