"""Helper processes a worker starts beside its pool (the ledger writer, the event stream reader).

They run in processes of their own, not threads of the worker's main process, where they
would compete for the GIL with Celery's consumer loop; each exits when its worker is gone.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
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


def terminate(proc: subprocess.Popen[Any] | None, timeout_s: float = 15.0) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
