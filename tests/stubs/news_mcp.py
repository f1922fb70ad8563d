"""A small MCP server written with the official SDK: news search over a local JSON file.

Run it as ``python -m tests.stubs.news_mcp`` (stdio) or
``python -m tests.stubs.news_mcp --http PORT`` (streamable HTTP on 127.0.0.1).
The tests reach it only through ``integrations.mcp`` and the SDK's client.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel

NEWS_FILE = Path(os.environ.get("NEWS_FILE", Path(__file__).resolve().parent.parent / "fixtures" / "news.json"))

server = MCPServer("news")


class NewsItem(BaseModel):
    id: str
    title: str
    source: str
    published: str
    summary: str


class NewsResults(BaseModel):
    query: str
    items: list[NewsItem]


@server.tool()
def search_news(query: str, limit: int = 5) -> NewsResults:
    """Search the news file for items whose title or summary mentions every word of the query."""
    words = query.lower().split()
    items: list[dict[str, Any]] = json.loads(NEWS_FILE.read_text(encoding="utf-8"))
    hits = [i for i in items if all(w in f"{i['title']} {i['summary']}".lower() for w in words)]
    return NewsResults(query=query, items=[NewsItem(**i) for i in hits[:limit]])


@server.tool()
def headline(item_id: str) -> str:
    """The title of one news item, as plain text."""
    for item in json.loads(NEWS_FILE.read_text(encoding="utf-8")):
        if item["id"] == item_id:
            return str(item["title"])
    raise ToolError(f"no news item {item_id!r}")


@server.tool()
def slow(seconds: float) -> str:
    """Sleep, then answer (for timeout tests)."""
    time.sleep(seconds)
    return "done"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", type=int, help="serve streamable HTTP on 127.0.0.1:PORT instead of stdio")
    args = parser.parse_args()
    if args.http:
        server.run("streamable-http", host="127.0.0.1", port=args.http)
    else:
        server.run()


if __name__ == "__main__":
    main()
