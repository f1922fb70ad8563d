"""Helper processes a worker starts beside its pool (the ledger writer, the event stream reader).

They run in processes of their own, not threads of the worker's main process, where they
would compete for the GIL with Celery's consumer loop; each exits when its worker is gone.
One of each works per host (and Redis): a host running a worker per queue would otherwise run
as many readers and writers, competing for its cores; the others stand by (:func:`one_per_host`).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def spawn(module: str) -> subprocess.Popen[Any]:
    """Start ``python -m module --parent <this pid>``."""
    return subprocess.Popen([sys.executable, "-m", module, "--parent", str(os.getpid())], env=os.environ.copy())


def watch_parent(parent: int, stop: Any, what: str) -> None:
    """Call ``stop()`` once ``parent`` is gone (checked every second, from a daemon thread)."""

    def watch() -> None:
        while os.getppid() == parent:
            threading.Event().wait(1.0)
        log.warning("the worker that started the %s is gone; stopping", what)
        stop()

    threading.Thread(target=watch, daemon=True, name=f"watch-{what}").start()


_held: list[int] = []  # lock files held for the life of this process


def one_per_host(what: str, key: str, stopping: threading.Event, poll_s: float = 1.0) -> bool:
    """Wait until this process is the one ``what`` working for ``key`` on this host: True once it is, False
    if ``stopping`` is set first. The lock (``flock`` on a file in the temp folder) goes with the process
    that holds it, however it ends, so a helper standing by takes over within ``poll_s``."""
    digest = hashlib.sha256(f"{what}|{key}".encode()).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"circuit-os-{digest}.lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:  # another user's lock file, a read-only temp folder: work, as before this lock
        log.warning("cannot open %s (%s); this %s works without standing by", path, exc, what)
        return True
    waiting = False
    while not stopping.is_set():
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not waiting:
                log.info("another %s works on this host; standing by to take over", what)
                waiting = True
            stopping.wait(poll_s)
            continue
        if waiting:
            log.info("taking over as this host's %s", what)
        _held.append(fd)
        return True
    os.close(fd)
    return False


def terminate(proc: subprocess.Popen[Any] | None, timeout_s: float = 15.0) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
