"""One MCP session per call, run to completion inside a synchronous action.

The SDK is async; an action is a plain function in a worker thread with no event loop, so each
call runs its own loop (``anyio.run``) under a hard deadline (``anyio.fail_after``) that covers
starting the server, the handshake and the request. Failures are translated onto our error
tree: an unreachable or crashed server is a :class:`RetryableError`, a protocol error or a
refused request a :class:`PermanentError`.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, TextIO, TypeVar

import anyio

from circuits.errors import ActionError, PermanentError, RetryableError, SettingMissingError
from integrations.mcp.config import ServerConfig

__all__ = ["ToolCall", "ToolInfo", "call_tool", "list_tools"]

log = logging.getLogger(__name__)
T = TypeVar("T")
LIST_PAGES_MAX = 50  # a server whose cursor never ends cannot hang a step
CONNECTION_CLOSED = -32000


@dataclass(frozen=True)
class ToolInfo:
    """What a server says about one of its tools."""

    name: str
    description: str = ""
    input_schema: dict[str, Any] = field(default_factory=dict)
    output_schema: dict[str, Any] | None = None


@dataclass(frozen=True)
class ToolCall:
    """A tool's answer: its structured content if it gave one, else its text."""

    result: Any
    structured: bool
    is_error: bool
    text: str


def _client(cfg: ServerConfig) -> AbstractAsyncContextManager[Any]:
    try:
        from mcp import Client, StdioServerParameters
        from mcp.client.stdio import stdio_client
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise SettingMissingError("MCP tools need the mcp extra: pip install 'circuit-os[mcp]'") from exc
    if cfg.command:
        params = StdioServerParameters(command=cfg.command[0], args=cfg.command[1:], env=cfg.env or None, cwd=cfg.cwd)
        # The server's stderr goes to a real file: the SDK's default is the sys.stderr of the moment
        # it was imported, which in a Celery worker is a LoggingProxy with no fileno.
        return Client(stdio_client(params, errlog=_errlog()))
    return Client(str(cfg.url))


@functools.cache
def _errlog() -> TextIO:
    """The process's real stderr, or the null device when it has none."""
    real = sys.__stderr__
    try:
        if real is not None:
            real.fileno()
            return real
    except (AttributeError, OSError, ValueError):
        pass
    return open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process, like stderr


async def _tools(client: Any) -> list[ToolInfo]:
    tools: list[ToolInfo] = []
    cursor: str | None = None
    for _ in range(LIST_PAGES_MAX):
        page = await client.list_tools(cursor=cursor)
        tools += [
            ToolInfo(t.name, t.description or "", dict(t.input_schema or {}), t.output_schema) for t in page.tools
        ]
        cursor = page.next_cursor
        if not cursor:
            break
    return tools


def _text(content: list[Any]) -> str:
    return "\n".join(str(block.text) for block in content if getattr(block, "type", None) == "text")


def _run(cfg: ServerConfig, timeout_s: float, work: Callable[[Any], Awaitable[T]]) -> T:
    """Open a session with ``cfg``, run ``work(client)`` and close it, all within ``timeout_s``."""

    async def main() -> T:
        with anyio.fail_after(timeout_s):
            async with _client(cfg) as client:
                return await work(client)

    try:
        return anyio.run(main)
    except BaseException as exc:  # noqa: BLE001 - exception groups from the SDK's task groups
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        raise _translate(exc, cfg, timeout_s) from exc


def list_tools(cfg: ServerConfig, timeout_s: float) -> list[ToolInfo]:
    """The tools the server offers."""
    return _run(cfg, timeout_s, _tools)


def call_tool(cfg: ServerConfig, tool: str, arguments: dict[str, Any], timeout_s: float) -> ToolCall:
    """Call ``tool``; an unknown tool fails permanently, naming the server's tools."""

    async def work(client: Any) -> ToolCall:
        known = [t.name for t in await _tools(client)]
        if tool not in known:
            raise PermanentError(f"MCP server {cfg.name!r} has no tool {tool!r}; its tools: {', '.join(known)}")
        res = await client.call_tool(tool, arguments)
        text = _text(list(res.content))
        structured = res.structured_content is not None and not res.is_error
        return ToolCall(res.structured_content if structured else text, structured, bool(res.is_error), text)

    return _run(cfg, timeout_s, work)


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _translate(exc: BaseException, cfg: ServerConfig, timeout_s: float) -> ActionError:
    """Our error for what went wrong talking to ``cfg``; the first telling leaf of a group wins."""
    import httpx2
    from mcp import MCPError

    where = f"MCP server {cfg.name!r} ({cfg.transport})"
    leaves = _leaves(exc)
    for leaf in leaves:
        if isinstance(leaf, ActionError):
            return leaf
        if isinstance(leaf, TimeoutError):
            return RetryableError(f"{where} did not answer within {timeout_s:g} s")
        if isinstance(leaf, FileNotFoundError | PermissionError):
            return PermanentError(f"{where} cannot be started: {leaf}")
        if isinstance(leaf, httpx2.HTTPStatusError):
            status = leaf.response.status_code
            kind = RetryableError if status in (408, 429) or status >= 500 else PermanentError
            return kind(f"{where} answered HTTP {status}")
        if isinstance(leaf, OSError | httpx2.TransportError):
            return RetryableError(f"{where} is unreachable: {leaf}")
        if isinstance(leaf, MCPError):
            if leaf.code == CONNECTION_CLOSED:
                return RetryableError(f"{where} closed the connection: {leaf.message}")
            return PermanentError(f"{where} refused the request: {leaf.message} (code {leaf.code})")
    log.warning("unexpected failure talking to %s", where, exc_info=exc)
    return RetryableError(f"{where} failed: {leaves[0]!r}")
