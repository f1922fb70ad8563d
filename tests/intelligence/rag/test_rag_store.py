"""Chroma placement: embedded under home/chroma by default, a real Chroma server when chroma_url is set."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from circuits.errors import ConfigError
from circuits.settings import Settings
from intelligence.rag import store
from intelligence.rag.service import RagService
from intelligence.rag.types import Document


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[str]:
    """``chroma run`` (shipped with chromadb) on a free port; its data in tmp_path."""
    exe = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
    port = _free_port()
    proc = subprocess.Popen(
        [exe, "run", "--path", str(tmp_path / "server"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("chroma server did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_embedded_store_lives_under_home(service: RagService, settings: Settings) -> None:
    service.ingest("notes", [Document(id="n1", text="The quarterly review is on Friday.")])
    assert (settings.home / "chroma").is_dir()
    assert service.retrieve("notes", "when is the quarterly review", k=1).hits[0].doc_id == "n1"


def test_chroma_url_uses_the_server(settings: Settings, chroma_server: str) -> None:
    remote = settings.model_copy(update={"chroma_url": chroma_server})
    service = RagService.from_settings(remote)
    try:
        service.ingest("notes", [Document(id="n1", text="The quarterly review is on Friday.")])
        assert service.retrieve("notes", "when is the quarterly review", k=1).hits[0].doc_id == "n1"
    finally:
        service.close()
    assert not (settings.home / "chroma").exists()  # nothing was written locally
    other = store.chroma_client(Path("/nonexistent"), chroma_server)  # another process, same server
    assert other.get_collection("notes").count() == 1


def test_a_malformed_chroma_url_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="CIRCUIT_CHROMA_URL"):
        store.chroma_client(tmp_path, "localhost:8000")
