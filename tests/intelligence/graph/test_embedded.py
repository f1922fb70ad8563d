"""The embedded server: starts, answers Bolt on loopback only, keeps data across restarts, stops."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from circuits.errors import RetryableError
from intelligence.graph.client import GraphClient
from intelligence.graph.embedded import EmbeddedGraphServer, EmbeddedServerError


def _listening_addresses(pid: int) -> list[tuple[str, int]]:
    """(address hex, port) of every TCP socket ``pid`` listens on, from /proc (no iproute2 needed)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd) if fd.is_symlink() else ""
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            cols = line.split()
            local, state, inode = cols[1], cols[3], cols[9]
            if state == "0A" and inode in inodes:  # 0A = LISTEN
                address, port = local.split(":")
                found.append((address, int(port, 16)))
    return found


# 127.0.0.1 as /proc prints it: little-endian IPv4, or IPv4-mapped IPv6 (::ffff:127.0.0.1).
_LOOPBACK = {"0100007F", "0000000000000000FFFF00000100007F"}


def test_every_listener_is_on_loopback_only(graph_server: EmbeddedGraphServer) -> None:
    assert graph_server.pid is not None
    addresses = _listening_addresses(graph_server.pid)
    assert graph_server.bolt_port in {port for _, port in addresses}, addresses
    assert all(address in _LOOPBACK for address, _ in addresses), addresses


def test_data_survives_a_restart_and_stop_frees_the_port(tmp_path: Path) -> None:
    with EmbeddedGraphServer(tmp_path, password="restart-password") as server:
        c = GraphClient(server.bolt_url, server.user, "restart-password")
        c.write("MERGE (a:Account {name: $n})", {"n": "Persisted Co"})
        c.close()
        port = server.bolt_port
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0, "the server still listens after stop()"
    with EmbeddedGraphServer(tmp_path, password="restart-password", bolt_port=port) as server:
        c = GraphClient(server.bolt_url, server.user, "restart-password")
        assert c.read("MATCH (a:Account {name: $n}) RETURN a.name AS name", {"n": "Persisted Co"}) == [
            {"name": "Persisted Co"}
        ]
        c.close()


def test_port_in_use_is_a_named_error(graph_server: EmbeddedGraphServer, tmp_path: Path) -> None:
    with pytest.raises(EmbeddedServerError, match="already in use"):
        EmbeddedGraphServer(tmp_path, password="another-password", bolt_port=graph_server.bolt_port).start()


def test_unreachable_server_is_retryable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    c = GraphClient(f"bolt://127.0.0.1:{port}", "root", "whatever-password")
    with pytest.raises(RetryableError, match="unavailable"):
        c.read("RETURN 1 AS x")
    c.close()


def test_importing_the_actions_is_fast_and_imports_neither_celery_nor_the_driver() -> None:
    code = (
        "import sys, time; t = time.perf_counter(); import intelligence.graph.actions; "
        "print(time.perf_counter() - t, 'celery' in sys.modules, 'neo4j' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[1:] == ["False", "False"]
    assert float(out[0]) < 1.0
