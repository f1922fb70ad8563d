"""Scaling out across hosts: Redis, PostgreSQL and the worker pools run as separate hosts (network
namespaces on a bridge, each with its own 10.x address; every server binds to its own address).

Host ``a`` runs a pool for control work (``events,core``) and a pool for ``data`` work; host ``b``
runs a second ``data`` pool. A batch of runs completes across them; then host ``b`` is cut off
mid-batch (its link goes down, its processes live on, unreachable) and the batch still completes:
the watchdog on host ``a`` resumes the runs whose steps ``b`` held, once their leases lapse.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, wait_for

BATCH = 40
WORK_S = 1.0

ACTIONS = '''
import os, time
from pydantic import BaseModel
from circuits.actions import ActionContext, action

class WorkIn(BaseModel):
    n: int
    seconds: float

class WorkOut(BaseModel):
    n: int
    host: str

@action("ops.work", queue="data", timeout_s=30)
def work(ctx: ActionContext, inp: WorkIn) -> WorkOut:
    """A slow data step that says which host ran it."""
    time.sleep(inp.seconds)
    return WorkOut(n=inp.n, host=os.environ["OPS_HOST"])
'''

CIRCUIT = f"""
name: t-multihost
trigger: {{event: ops.batch}}
steps:
  - {{id: prep, action: core.set, with: {{n: "{{{{ event.data.n }}}}"}}}}
  - {{id: work, action: ops.work, with: {{n: "{{{{ steps.prep.n }}}}", seconds: {WORK_S}}}}}
  - {{id: done, action: core.set, with: {{host: "{{{{ steps.work.host }}}}"}}}}
"""


def _netns_usable() -> str | None:
    """Why the test cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root to make network namespaces"
    if shutil.which("ip") is None:
        return "needs iproute2's ip"
    probe = f"circuit-probe-{uuid.uuid4().hex[:6]}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"ip netns is unavailable: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


_WHY = _netns_usable()
pytestmark = pytest.mark.skipif(_WHY is not None, reason=_WHY or "")


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, text=True)


class Lab:
    """A bridge and one namespace per host; ``close()`` kills every process in them and removes them."""

    def __init__(self, tmp: Path) -> None:
        self.tag = uuid.uuid4().hex[:5]
        self.net = f"10.{random.randint(100, 250)}.{random.randint(0, 254)}"
        self.bridge = f"cbr{self.tag}"
        self.tmp = tmp
        self.hosts: dict[str, str] = {}  # name -> address
        self.procs: list[subprocess.Popen[bytes]] = []
        sh("ip", "link", "add", self.bridge, "type", "bridge")
        sh("ip", "addr", "add", f"{self.net}.1/24", "dev", self.bridge)
        sh("ip", "link", "set", self.bridge, "up")

    def ns(self, host: str) -> str:
        return f"circuit-{self.tag}-{host}"

    def host(self, name: str) -> str:
        ns, addr = self.ns(name), f"{self.net}.{len(self.hosts) + 2}"
        outside, inside = f"v{self.tag}{name}", f"i{self.tag}{name}"
        sh("ip", "netns", "add", ns)
        self.hosts[name] = addr
        sh("ip", "link", "add", outside, "type", "veth", "peer", "name", inside)
        sh("ip", "link", "set", inside, "netns", ns)
        sh("ip", "link", "set", outside, "master", self.bridge)
        sh("ip", "link", "set", outside, "up")
        sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{addr}/24", "dev", inside)
        sh("ip", "netns", "exec", ns, "ip", "link", "set", inside, "up")
        sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        return addr

    def cut(self, name: str) -> None:
        """Take the host off the network: its link goes down, its processes keep running."""
        sh("ip", "netns", "exec", self.ns(name), "ip", "link", "set", f"i{self.tag}{name}", "down")

    def run(self, host: str, cmd: list[str], env: dict[str, str], log: str) -> subprocess.Popen[bytes]:
        with (self.tmp / log).open("wb") as out:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", self.ns(host), *cmd],
                env=env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs.append(proc)
        return proc

    def log(self, name: str) -> str:
        return (self.tmp / name).read_text(errors="replace")

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError, subprocess.SubprocessError):
                    os.killpg(proc.pid, signal.SIGKILL)
        for name in self.hosts:  # anything else left in the namespace (ledger writer, pool children)
            pids = subprocess.run(["ip", "netns", "pids", self.ns(name)], capture_output=True, text=True).stdout
            for pid in pids.split():
                with contextlib.suppress(ProcessLookupError, PermissionError, subprocess.SubprocessError):
                    os.kill(int(pid), signal.SIGKILL)
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError, PermissionError, subprocess.SubprocessError):
                proc.wait(10)
        for name in self.hosts:
            subprocess.run(["ip", "netns", "del", self.ns(name)], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)


@pytest.fixture()
def lab(tmp_path: Path) -> Iterator[Lab]:
    lab = Lab(tmp_path)
    try:
        yield lab
    finally:
        lab.close()


def _postgres(lab: Lab, addr: str) -> str:
    from workers.embedded import EmbeddedPostgres

    pg = EmbeddedPostgres()
    pg._run(pg._bin("initdb"), "-D", str(pg.data), "-U", "postgres", "-A", "trust", "-E", "UTF8")
    with (pg.data / "pg_hba.conf").open("a") as hba:
        hba.write(f"host all all {lab.net}.0/24 trust\n")
    opts = f"-c listen_addresses={addr} -c port=5432 -c unix_socket_directories={pg.dir} -c fsync=off"
    cmd = ["runuser", "-u", "postgres", "--", pg._bin("postgres"), "-D", str(pg.data), *opts.split()]
    lab.run("pg", cmd, dict(os.environ), "postgres.log")
    lab.procs[-1].pg_dir = pg.dir  # type: ignore[attr-defined]
    return f"postgresql+psycopg://postgres@{addr}:5432/postgres"


def test_a_batch_completes_across_hosts_and_survives_losing_one(lab: Lab, tmp_path: Path) -> None:
    import sqlalchemy as sa

    from workers.embedded import redis_binary

    redis_addr, pg_addr, a_addr, b_addr = (lab.host(h) for h in ("redis", "pg", "a", "b"))
    assert len({redis_addr, pg_addr, a_addr, b_addr}) == 4
    lab.run(
        "redis",
        [
            redis_binary(),
            "--bind",
            redis_addr,
            "--port",
            "6379",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        dict(os.environ),
        "redis.log",
    )
    database_url = _postgres(lab, pg_addr)
    try:
        code = tmp_path / "code"
        (code / "circuits").mkdir(parents=True)
        (code / "ops_actions.py").write_text(ACTIONS)
        (code / "circuits" / "multihost.yaml").write_text(CIRCUIT)
        env = {
            **os.environ,
            "PYTHONPATH": f"{code}{os.pathsep}{ROOT}",
            "CIRCUIT_REDIS_URL": f"redis://{redis_addr}:6379/0",
            "CIRCUIT_DATABASE_URL": database_url,
            "CIRCUIT_CIRCUITS": str(code / "circuits"),
            "CIRCUIT_ACTION_MODULES": "circuits.builtin,ops_actions",
            "CIRCUIT_HOME": str(tmp_path / "home"),
            "CIRCUIT_LEDGER_IN_WORKER": "false",
            "CIRCUIT_AUTO_MIGRATE": "false",
            "CIRCUIT_STALL_AFTER_S": "10",
            "CIRCUIT_STEP_LEASE_S": "10",
            "CIRCUIT_WATCHDOG_INTERVAL_S": "1",
        }
        wait_for(lambda: _pings(f"redis://{redis_addr}:6379/0"), 20, "Redis on its host")
        wait_for(lambda: _connects(database_url), 30, "PostgreSQL on its host")
        cli = [sys.executable, "-m", "workers.cli"]
        subprocess.run([*cli, "db", "upgrade"], env=env, cwd=ROOT, check=True, capture_output=True, timeout=60)

        lab.run("pg", [sys.executable, "-m", "workers.ledger_writer"], env, "ledger.log")
        celery = [sys.executable, "-m", "celery", "-A", "workers", "worker", "--loglevel", "INFO", "-c", "2"]
        pools = [
            ("a", "core", ["-Q", "events,core", "-n", "core@a"]),
            ("a", "data", ["-Q", "data", "-n", "data@a"]),
            ("b", "data", ["-Q", "data", "-n", "data@b"]),
        ]
        for host, kind, args in pools:
            lab.run(host, [*celery, *args], {**env, "OPS_HOST": host}, f"{kind}@{host}.log")
        for host, kind, _ in pools:
            wait_for(lambda n=f"{kind}@{host}.log": " ready." in lab.log(n), 60, f"the {kind} pool on host {host}")

        batch = f"b-{uuid.uuid4().hex[:6]}"
        publish = (
            "import sys; from workers.publish import publish\n"
            f"for n in range({BATCH}): publish('ops.batch', {{'n': n}}, id=f'{batch}-{{n}}')\n"
        )
        subprocess.run([sys.executable, "-c", publish], env=env, cwd=ROOT, check=True, timeout=60)
        engine = sa.create_engine(database_url)

        def runs() -> list[dict[str, Any]]:
            with engine.connect() as c:
                rows = c.execute(
                    sa.text("SELECT id, status FROM circuit_runs WHERE circuit = 't-multihost'")
                ).mappings()
                return [dict(r) for r in rows]

        def steps_by_host() -> dict[str, int]:
            with engine.connect() as c:
                rows = c.execute(
                    sa.text("SELECT output FROM circuit_steps WHERE step_id = 'work' AND status = 'succeeded'")
                ).scalars()
                out: dict[str, int] = {}
                for o in rows:
                    host = (json.loads(o) if isinstance(o, str) else o or {}).get("host", "?")
                    out[host] = out.get(host, 0) + 1
                return out

        wait_for(lambda: steps_by_host().get("b", 0) >= 3 and steps_by_host().get("a", 0) >= 3, 60, "work on both")
        ended = sum(r["status"] == "succeeded" for r in runs())
        assert ended < BATCH, "the batch ended before host b could be cut off"
        lab.cut("b")  # mid-batch: b holds steps it can neither finish nor hand back
        cut_at = time.monotonic()

        def all_done() -> bool:
            got = runs()
            return len(got) == BATCH and all(r["status"] == "succeeded" for r in got)

        wait_for(all_done, 75, f"all {BATCH} runs to succeed after host b was cut off")
        recovered_s = time.monotonic() - cut_at
        by_host = steps_by_host()
        assert by_host.get("a", 0) + by_host.get("b", 0) == BATCH, by_host
        received = "Task circuit.action.ops.work["  # one pool per kind of work
        assert received not in lab.log("core@a.log") and received in lab.log("data@b.log")
        print(f"steps by host {by_host}; the batch ended {recovered_s:.1f}s after host b was cut off")
    finally:
        lab.close()
        for proc in lab.procs:
            if hasattr(proc, "pg_dir"):
                shutil.rmtree(proc.pg_dir, ignore_errors=True)


def _pings(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


def _connects(url: str) -> bool:
    import sqlalchemy as sa

    try:
        with sa.create_engine(url, pool_pre_ping=False).connect():
            return True
    except sa.exc.OperationalError:
        return False
