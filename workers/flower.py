"""``circuit-os flower``: Flower on this system's broker, with a login unless switched off for local use.

The credentials come from the settings (``CIRCUIT_FLOWER_USER``, ``CIRCUIT_FLOWER_PASSWORD``) and
reach Flower through its ``FLOWER_BASIC_AUTH`` variable, never its command line (where ``ps``
would show them) and never printed. Every task message carries its circuit, run and step in its
``kwargsrepr`` (:mod:`workers.tagging`): Flower's search ``kwargs:run=<run id>`` lists one run.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import sys
from collections.abc import Mapping

from circuits.errors import ConfigError
from circuits.settings import Settings

log = logging.getLogger(__name__)


def _loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def command(
    s: Settings,
    *,
    address: str | None = None,
    port: int | None = None,
    unauthenticated: bool = False,
    extra: tuple[str, ...] = (),
    env: Mapping[str, str] = os.environ,
) -> tuple[list[str], dict[str, str]]:
    """The command line and environment that start Flower; ConfigError when no login is configured."""
    address = address or s.flower_address
    port = port or s.flower_port
    child = {k: v for k, v in env.items() if k not in ("FLOWER_BASIC_AUTH", "FLOWER_UNAUTHENTICATED_API")}
    if unauthenticated:
        if not _loopback(address):
            log.warning("flower: no login, on %s: anyone who reaches this address sees and controls tasks", address)
    else:
        if not s.flower_user or s.flower_password is None:
            raise ConfigError(
                "Flower needs a login: set CIRCUIT_FLOWER_USER and CIRCUIT_FLOWER_PASSWORD, "
                "or pass --unauthenticated for local use"
            )
        password = s.flower_password.get_secret_value()
        if "," in s.flower_user or "," in password or ":" in s.flower_user:
            raise ConfigError("CIRCUIT_FLOWER_USER may not hold ',' or ':', nor CIRCUIT_FLOWER_PASSWORD ','")
        child["FLOWER_BASIC_AUTH"] = f"{s.flower_user}:{password}"
    argv = [sys.executable, "-m", "celery", "-A", "workers", "flower", f"--address={address}", f"--port={port}"]
    return [*argv, *extra], child
