"""The MCP servers a worker may reach, read from ``CIRCUIT_MCP_SERVERS``.

A JSON object, name -> ``{"command": [...], "env": {...}, "cwd": ...}`` (stdio: the worker
starts the command and talks over its stdin/stdout) or ``{"url": "http://host:port/mcp"}``
(streamable HTTP).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from circuits.errors import PermanentError, SettingMissingError

__all__ = ["ServerConfig", "server_config"]


class ServerConfig(BaseModel):
    """One named MCP server: a command for stdio, or a URL for streamable HTTP."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    command: list[str] | None = Field(None, min_length=1)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    url: str | None = Field(None, pattern=r"^https?://")

    @model_validator(mode="after")
    def _one_transport(self) -> ServerConfig:
        if (self.command is None) == (self.url is None):
            raise ValueError('give either "command" (stdio) or "url" (streamable HTTP)')
        if self.url is not None and (self.env or self.cwd):
            raise ValueError('"env" and "cwd" apply to stdio servers only')
        return self

    @property
    def transport(self) -> str:
        return "stdio" if self.command else "streamable-http"


def server_config(settings: Any, name: str) -> ServerConfig:
    """The server ``name`` from the settings; an unknown name fails naming the known ones."""
    servers: dict[str, Any] = dict(getattr(settings, "mcp_servers", None) or {})
    if not servers:
        raise SettingMissingError(f"no MCP servers are configured; set CIRCUIT_MCP_SERVERS to name {name!r}")
    if name not in servers:
        raise PermanentError(f"unknown MCP server {name!r}; configured: {', '.join(sorted(servers))}")
    raw = servers[name]
    try:
        return ServerConfig.model_validate({**(raw if isinstance(raw, dict) else {"url": raw}), "name": name})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or name}: {e['msg']}" for e in exc.errors())
        raise PermanentError(f"CIRCUIT_MCP_SERVERS[{name!r}] is wrong: {problems}") from None
