"""The one service layer: runs, events, circuits, keys and the audit log.

The CLI (``workers/cli.py``) and the HTTP API (``interfaces/api``) both call these
functions, so the rules live once: who may do what (:mod:`service.access`), which
tenant's data a caller sees, what is audited. Every function takes the process's
:class:`workers.runtime.Runtime` and the :class:`service.access.Principal` acting.
Errors are the named ones of :mod:`circuits.errors`; interfaces map them to exit codes
or HTTP statuses.
"""

from __future__ import annotations

from workers.runtime import Runtime, runtime

__all__ = ["Runtime", "runtime"]
