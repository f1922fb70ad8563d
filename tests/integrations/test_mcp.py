"""mcp.list_tools and mcp.call_tool through the official SDK client, against a news-search MCP server
(tests/stubs/news_mcp.py, written with the SDK) started over stdio and over streamable HTTP."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from circuits.actions import ActionContext, ActionRegistry
from circuits.errors import ConfigError, PermanentError, RetryableError
from circuits.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
NEWS = json.loads((ROOT / "tests" / "fixtures" / "news.json").read_text(encoding="utf-8"))
STDIO = {"command": [sys.executable, "-m", "tests.stubs.news_mcp"], "cwd": str(ROOT)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def http_url() -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.stubs.news_mcp", "--http", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, "the MCP server did not start"
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}/mcp"
    proc.terminate()  # uvicorn waits for requests in flight (the slow tool): kill it if it lingers
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@pytest.fixture(params=["stdio", "http"])
def ctx(request: pytest.FixtureRequest) -> ActionContext:
    news = STDIO if request.param == "stdio" else {"url": request.getfixturevalue("http_url")}
    return ActionContext.for_test(settings=Settings(mcp_servers={"news": news}, mcp_timeout_s=20.0))


def run(ctx: ActionContext, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """Through the action's spec, as a worker calls it (input validation, JSON output)."""
    return ActionRegistry.from_modules(["integrations.mcp.actions"]).get(name).run(ctx, inputs)


def test_list_tools_gives_names_and_schemas(ctx: ActionContext) -> None:
    out = run(ctx, "mcp.list_tools", {"server": "news"})
    tools = {t["name"]: t for t in out["tools"]}
    assert out["server"] == "news" and set(tools) == {"search_news", "headline", "slow"}
    search = tools["search_news"]
    assert "news" in search["description"] and search["input_schema"]["required"] == ["query"]
    assert set(search["input_schema"]["properties"]) == {"query", "limit"}
    assert search["output_schema"]["required"] == ["query", "items"]


def test_call_tool_returns_the_structured_result(ctx: ActionContext) -> None:
    out = run(
        ctx, "mcp.call_tool", {"server": "news", "tool": "search_news", "arguments": {"query": "acme", "limit": 2}}
    )
    assert out["structured"] is True and out["tool"] == "search_news"
    expected = [i for i in NEWS if "acme" in f"{i['title']} {i['summary']}".lower()][:2]
    assert out["result"] == {"query": "acme", "items": expected}
    assert [i["id"] for i in out["result"]["items"]] == ["n1", "n3"]


def test_a_tool_that_reports_an_error_fails_permanently_with_its_message(ctx: ActionContext) -> None:
    with pytest.raises(PermanentError, match="MCP tool 'headline' on 'news' failed: .*no news item 'n404'"):
        run(ctx, "mcp.call_tool", {"server": "news", "tool": "headline", "arguments": {"item_id": "n404"}})


def test_an_unknown_tool_names_the_known_ones(ctx: ActionContext) -> None:
    with pytest.raises(PermanentError, match="has no tool 'search'; its tools: search_news, headline, slow"):
        run(ctx, "mcp.call_tool", {"server": "news", "tool": "search", "arguments": {}})


def test_a_slow_tool_times_out(ctx: ActionContext) -> None:
    started = time.monotonic()
    with pytest.raises(RetryableError, match=r"MCP server 'news' \(.*\) did not answer within 1.5 s"):
        run(ctx, "mcp.call_tool", {"server": "news", "tool": "slow", "arguments": {"seconds": 8}, "timeout_s": 1.5})
    assert time.monotonic() - started < 10  # the deadline holds; closing a stdio server takes a moment more


def test_an_unknown_server_names_the_configured_ones() -> None:
    ctx = ActionContext.for_test(settings=Settings(mcp_servers={"news": STDIO, "crm": {"url": "http://x/mcp"}}))
    with pytest.raises(PermanentError, match="unknown MCP server 'web'; configured: crm, news"):
        run(ctx, "mcp.list_tools", {"server": "web"})


def test_no_servers_configured_is_a_permanent_config_error() -> None:
    ctx = ActionContext.for_test(settings=Settings(mcp_servers={}))
    with pytest.raises(ConfigError, match="set CIRCUIT_MCP_SERVERS") as caught:
        run(ctx, "mcp.list_tools", {"server": "news"})
    assert isinstance(caught.value, PermanentError)


def test_a_wrong_server_entry_is_refused() -> None:
    ctx = ActionContext.for_test(settings=Settings(mcp_servers={"news": {"command": ["x"], "url": "http://x/mcp"}}))
    with pytest.raises(PermanentError, match=r"CIRCUIT_MCP_SERVERS\['news'\] is wrong: .*either"):
        run(ctx, "mcp.list_tools", {"server": "news"})


def test_unreachable_servers_are_retryable() -> None:
    down = {"url": f"http://127.0.0.1:{_free_port()}/mcp"}
    crashes = {"command": [sys.executable, "-c", "import sys; sys.exit(3)"]}
    ctx = ActionContext.for_test(settings=Settings(mcp_servers={"down": down, "crashes": crashes}, mcp_timeout_s=10))
    with pytest.raises(RetryableError, match="MCP server 'down' \\(streamable-http\\) is unreachable"):
        run(ctx, "mcp.list_tools", {"server": "down"})
    with pytest.raises(RetryableError, match="MCP server 'crashes' \\(stdio\\) closed the connection"):
        run(ctx, "mcp.call_tool", {"server": "crashes", "tool": "anything"})


def test_a_missing_command_is_permanent() -> None:
    ctx = ActionContext.for_test(settings=Settings(mcp_servers={"gone": {"command": ["/nonexistent/mcp-server"]}}))
    with pytest.raises(PermanentError, match="MCP server 'gone' \\(stdio\\) cannot be started"):
        run(ctx, "mcp.list_tools", {"server": "gone"})


def test_servers_come_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIRCUIT_MCP_SERVERS", json.dumps({"news": STDIO}))
    monkeypatch.setenv("CIRCUIT_MCP_TIMEOUT_S", "20")
    ctx = ActionContext.for_test(settings=Settings())
    out = run(ctx, "mcp.call_tool", {"server": "news", "tool": "headline", "arguments": {"item_id": "n4"}})
    assert out["result"] == {"result": "Initech opens a Berlin office"}  # a str tool's structured wrapper
