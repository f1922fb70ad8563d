"""A local stand-in for the Anthropic Messages API, for tests that use the real SDK.

A ThreadingHTTPServer on 127.0.0.1 (free port) that records every request and answers
``POST /v1/messages`` with a canned Messages response. By default the answer quotes the
chunk ids it finds in the prompt (``[doc#0]``), as a grounded model would; tests can
set ``reply`` (a fixed text), ``replies`` (texts answered in turn, one per request, before
falling back to the rest; a repair turn is tested this way), ``cite`` (ids to quote) or
``fail_status`` (an error code).
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_SOURCE_ID = re.compile(r"^\[([^\]\n]+)\]", re.M)


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class AnthropicStub:
    """Start with ``with AnthropicStub() as stub:``; point the SDK at ``stub.base_url``."""

    reply: str | None = None
    replies: list[str] = field(default_factory=list)
    cite: list[str] | None = None
    fail_status: int | None = None
    model: str = "claude-stub-1"
    requests: list[Recorded] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> AnthropicStub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer_for(self, body: dict[str, Any]) -> str:
        """The canned answer: the next of ``replies``, else ``reply``, else a sentence citing ``cite``
        or every id in the prompt."""
        if self.replies:
            return self.replies.pop(0)
        if self.reply is not None:
            return self.reply
        prompt = "\n".join(
            m["content"] if isinstance(m["content"], str) else json.dumps(m["content"])
            for m in body.get("messages", [])
        )
        ids = self.cite if self.cite is not None else _SOURCE_ID.findall(prompt)
        if not ids:
            return "I do not know from the given sources."
        return " ".join(f"Stated in source [{cid}]." for cid in ids)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                stub.requests.append(Recorded("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                if self.path.rstrip("/") != "/v1/messages":
                    return self._send(
                        404, {"type": "error", "error": {"type": "not_found_error", "message": self.path}}
                    )
                if stub.fail_status:
                    kind = "overloaded_error" if stub.fail_status == 529 else "api_error"
                    return self._send(stub.fail_status, {"type": "error", "error": {"type": kind, "message": "stub"}})
                text = stub.answer_for(body)
                self._send(
                    200,
                    {
                        "id": f"msg_stub_{len(stub.requests)}",
                        "type": "message",
                        "role": "assistant",
                        "model": body.get("model", stub.model),
                        "content": [{"type": "text", "text": text}],
                        "stop_reason": "end_turn",
                        "stop_sequence": None,
                        "usage": {"input_tokens": len(json.dumps(body)) // 4, "output_tokens": len(text) // 4},
                    },
                )

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
