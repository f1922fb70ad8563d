"""Per-process state of a worker or producer: settings, Redis, actions, circuits, resources.

Built on first use and rebuilt after a fork, so nothing is opened at import time
and no connection is shared between prefork children.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from functools import cached_property
from typing import TYPE_CHECKING

import redis

from circuits.actions import ActionRegistry, Resources
from circuits.catalog import Catalog
from circuits.compiler import walk
from circuits.model import WaitForStep
from circuits.settings import DEFAULT_ACTION_MODULES, Settings, get_settings
from storage.base import make_engine
from workers.claims import Claims, Heartbeat

if TYPE_CHECKING:
    from workers.triggers import Triggers

log = logging.getLogger(__name__)


class Runtime:
    """Everything a task needs that is expensive to build, built once per process."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self.pid = os.getpid()
        self.resources = Resources(self.settings)
        self.catalog_checked_at = 0.0  # when the deploy revision was last checked (workers.deployed)
        self.catalog_built_at = 0.0

    @cached_property
    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.settings.redis_url, health_check_interval=30)

    @cached_property
    def claims(self) -> Claims:
        return Claims(self.redis, self.settings.step_lease_s)

    @cached_property
    def heartbeat(self) -> Heartbeat:
        return Heartbeat(self.redis, self.settings.step_lease_s)

    @cached_property
    def registry(self) -> ActionRegistry:
        from circuits.actions import entry_point_modules  # plugins: the circuit_os.actions entry points

        modules = [*self.settings.action_modules, *entry_point_modules()]
        return ActionRegistry.from_modules(modules, optional=DEFAULT_ACTION_MODULES)

    @property
    def catalog(self) -> Catalog:
        """The file circuits merged with the deployed ones; kept in ``__dict__`` (see :func:`runtime`)
        and rebuilt when a deploy, enable or disable moved the revision (checked at most once a second)."""
        from workers import deployed

        current: Catalog | None = self.__dict__.get("catalog")
        if current is None:
            files = Catalog.load(self.settings.circuits, self.registry)
            log.info("loaded %d circuits from %s", len(files), self.settings.circuits)
            self.catalog_checked_at = self.catalog_built_at = time.monotonic()
            current = self.__dict__["catalog"] = deployed.build(self, list(files.entries.values()))
        elif (fresh := deployed.refresh(self, current)) is not None:
            current = self.__dict__["catalog"] = fresh
            for name in ("awaited", "triggers"):  # derived from the catalogue
                self.__dict__.pop(name, None)
        return current

    def refresh_catalog(self) -> None:
        """Pick up circuits deployed, enabled or disabled since the last check (at most once a second)."""
        self.catalog  # noqa: B018 - reading it refreshes it

    @cached_property
    def triggers(self) -> Triggers:
        from workers.triggers import Triggers

        return Triggers(self)

    @cached_property
    def awaited(self) -> dict[str, set[str]]:
        """Event types some ``wait_for`` step waits for, with the expressions that key them."""
        out: dict[str, set[str]] = {}
        for entry in self.catalog.entries.values():
            for step in walk(entry.circuit.steps + entry.circuit.on_failure):
                if isinstance(step, WaitForStep):
                    out.setdefault(step.wait_for.event, set()).add(step.wait_for.match)
        return out

    @cached_property
    def engine(self):  # type: ignore[no-untyped-def]
        return make_engine(self.settings.database_url)

    def close(self) -> None:
        self.resources.close()
        if "redis" in self.__dict__:
            self.redis.close()
        if "engine" in self.__dict__:
            self.engine.dispose()


_runtime: Runtime | None = None


def runtime() -> Runtime:
    """This process's runtime; a forked child gets its own connections but keeps the parent's
    registry and compiled catalogue, which are plain immutable data."""
    global _runtime
    if _runtime is None:
        _runtime = Runtime()
    elif _runtime.pid != os.getpid():
        parent = _runtime
        _runtime = Runtime(parent.settings)
        for name in ("registry", "catalog"):
            if name in parent.__dict__:
                _runtime.__dict__[name] = parent.__dict__[name]
    return _runtime


def reset_runtime() -> None:
    """Forget the runtime (after settings change, in tests and the demo)."""
    global _runtime
    if _runtime is not None and _runtime.pid == os.getpid():
        _runtime.close()
    _runtime = None
    get_settings.cache_clear()
    app = sys.modules.get("workers.app")
    if app is not None:  # imported already: make it use the new settings too
        app.rebind()
