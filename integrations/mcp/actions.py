"""MCP actions: ``mcp.list_tools`` and ``mcp.call_tool`` against servers named in the settings."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from circuits.actions import ActionContext, action
from circuits.errors import PermanentError
from integrations.mcp.config import server_config
from integrations.mcp.session import call_tool as _call_tool
from integrations.mcp.session import list_tools as _list_tools

__all__ = ["call_tool", "list_tools"]


def _settings(ctx: ActionContext) -> Any:
    if ctx.settings is not None:
        return ctx.settings
    from circuits.settings import get_settings

    return get_settings()


class _ServerInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    server: str = Field(min_length=1, description="A name from CIRCUIT_MCP_SERVERS.")
    timeout_s: float | None = Field(
        None, gt=0, le=600, description="Deadline for start, handshake and call; default CIRCUIT_MCP_TIMEOUT_S."
    )

    def deadline(self, settings: Any) -> float:
        return float(self.timeout_s or settings.mcp_timeout_s)


class ListToolsInput(_ServerInput):
    pass


class ToolOut(BaseModel):
    name: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None = None


class ListToolsOutput(BaseModel):
    server: str
    tools: list[ToolOut]


class CallToolInput(_ServerInput):
    tool: str = Field(min_length=1)
    arguments: dict[str, Any] = Field(default_factory=dict)


class CallToolOutput(BaseModel):
    server: str
    tool: str
    result: Any = Field(description="The tool's structured content, or its text if it gave none.")
    structured: bool


@action("mcp.list_tools", queue="llm", retries=2, timeout_s=120, side_effects=False)
def list_tools(ctx: ActionContext, inp: ListToolsInput) -> ListToolsOutput:
    """List the tools a configured MCP server offers, with their input schemas."""
    settings = _settings(ctx)
    tools = _list_tools(server_config(settings, inp.server), inp.deadline(settings))
    return ListToolsOutput(server=inp.server, tools=[ToolOut(**vars(t)) for t in tools])


@action("mcp.call_tool", queue="llm", retries=2, timeout_s=120)
def call_tool(ctx: ActionContext, inp: CallToolInput) -> CallToolOutput:
    """Call a tool on a configured MCP server; a tool that reports an error fails the step."""
    settings = _settings(ctx)
    cfg = server_config(settings, inp.server)
    got = _call_tool(cfg, inp.tool, inp.arguments, inp.deadline(settings))
    if got.is_error:
        raise PermanentError(f"MCP tool {inp.tool!r} on {inp.server!r} failed: {got.text or '(no message)'}")
    ctx.log.info("mcp %s.%s answered (%s)", inp.server, inp.tool, "structured" if got.structured else "text")
    return CallToolOutput(server=inp.server, tool=inp.tool, result=got.result, structured=got.structured)
