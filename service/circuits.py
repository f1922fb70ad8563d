"""Circuits: list them, check YAML text, deploy a new version, enable and disable.

A deploy is validated against this process's actions, stored as a new version in the
database and announced through the deploy revision (``workers.deployed.bump``); every
worker merges it into its catalogue within about a second, without a restart.
"""

from __future__ import annotations

import hashlib
from typing import Any

from circuits.catalog import Entry
from circuits.errors import ConflictError, DefinitionError, ForbiddenError, NotFoundError
from circuits.loader import CircuitFileErrors, load_text
from circuits.model import Circuit
from circuits.validate import validate
from service import audit
from service.access import Principal, require
from storage import circuit_store
from workers import deployed
from workers.runtime import Runtime


def describe(entry: Entry) -> dict[str, Any]:
    t = entry.circuit.trigger
    return {
        "name": entry.name,
        "version": entry.version,
        "tenant": entry.tenant,
        "enabled": entry.enabled,
        "origin": entry.origin,
        "trigger": t.event or (f"cron {t.schedule}" if t.schedule else ", ".join(t.listens_to())),
        "when": t.when,
        "priority": t.priority,
        "file": entry.source.file,
    }


def list_circuits(rt: Runtime, who: Principal) -> list[dict[str, Any]]:
    """The circuits the caller's tenant runs: shared ones and its own."""
    require(who, "circuits.read")
    entries = rt.catalog.entries.values()
    return [describe(e) for e in sorted(entries, key=lambda e: e.name) if who.sees(e.tenant)]


def get_circuit(rt: Runtime, who: Principal, name: str) -> dict[str, Any]:
    """One circuit with its stored versions (newest first)."""
    require(who, "circuits.read")
    entry = rt.catalog.entries.get(name)
    if entry is None or not who.sees(entry.tenant):
        raise NotFoundError(f"no circuit {name!r}")
    return {**describe(entry), "versions": circuit_store.versions(rt.engine, name)}


def check_text(rt: Runtime, text: str, name: str | None = None) -> tuple[Circuit | None, list[DefinitionError]]:
    """Load and validate YAML text: the circuit (if it loads) and every problem, with its line."""
    file = f"{name or 'circuit'}.yaml"
    try:
        circuit, source = load_text(text, file=file)
    except CircuitFileErrors as exc:
        return None, list(exc.errors)
    except DefinitionError as exc:
        return None, [exc]
    problems = validate(circuit, rt.registry, source)
    if name is not None and circuit.name != name:
        problems.append(source.error(f"name: the file says {circuit.name!r}, the address says {name!r}", ("name",)))
    if circuit.trigger.schedule:
        problems.append(
            source.error("trigger.schedule: scheduled circuits are deployed as files (beat reads them at start)", ())
        )
    return circuit, problems


def validate_text(rt: Runtime, who: Principal, text: str, name: str | None = None) -> list[DefinitionError]:
    require(who, "circuits.write")
    return check_text(rt, text, name)[1]


def _owner(rt: Runtime, name: str) -> tuple[bool, str | None, int]:
    """Whether ``name`` exists, the tenant it belongs to (None: shared) and the newest version number."""
    stored = circuit_store.versions(rt.engine, name)
    if stored:
        return True, stored[0]["tenant"], int(stored[0]["version"])
    entry = rt.catalog.entries.get(name)
    if entry is not None:
        return True, entry.tenant, entry.circuit.version
    return False, None, 0


def deploy(rt: Runtime, who: Principal, name: str, text: str) -> dict[str, Any]:
    """Store ``text`` as the next version of circuit ``name`` for the caller's tenant.

    Raises:
        CircuitFileErrors: every problem, with its line (nothing is stored).
        ConflictError: the name belongs to another tenant, or is shared and the caller is not the platform.
    """
    require(who, "circuits.write")
    circuit, problems = check_text(rt, text, name)
    if problems or circuit is None:
        raise CircuitFileErrors(problems)
    exists, tenant, newest = _owner(rt, name)
    if not who.platform:
        if exists and tenant != who.tenant:
            raise ConflictError(f"circuit name {name!r} is taken; choose another name")
        tenant = who.tenant
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    number = circuit_store.add_version(rt.engine, name, tenant, text, digest, who.subject, at_least=newest + 1)
    deployed.bump(rt)
    audit.record(rt, who, "circuit.deploy", name, tenant, {"version": number, "digest": digest[:12]})
    return {"name": name, "version": number, "tenant": tenant, "digest": digest}


def set_enabled(rt: Runtime, who: Principal, name: str, enabled: bool) -> dict[str, Any]:
    """Enable or disable a circuit: disabled, it starts no run; runs in flight finish."""
    require(who, "circuits.write")
    exists, tenant, _ = _owner(rt, name)
    if not exists or not who.sees(tenant):
        raise NotFoundError(f"no circuit {name!r}")
    if not who.owns(tenant):
        raise ForbiddenError(f"circuit {name!r} is shared by every tenant; only the platform may change it")
    circuit_store.set_enabled(rt.engine, name, enabled, who.subject)
    deployed.bump(rt)
    audit.record(rt, who, "circuit.enable" if enabled else "circuit.disable", name, tenant)
    return {"name": name, "enabled": enabled}
