"""MCP tools for circuits: ``mcp.list_tools`` and ``mcp.call_tool`` through the official ``mcp`` SDK.

Circuits name a server; what that name means (a command run over stdio, or a streamable HTTP
URL) lives only in ``CIRCUIT_MCP_SERVERS``, so a circuit file or an event can never make a
worker start a program or reach an address of its choosing.
"""

from integrations.mcp.config import ServerConfig, server_config
from integrations.mcp.session import ToolCall, ToolInfo, call_tool, list_tools

__all__ = ["ServerConfig", "ToolCall", "ToolInfo", "call_tool", "list_tools", "server_config"]
