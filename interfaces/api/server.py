"""``circuit-os serve``: the API on uvicorn, on 127.0.0.1 unless told otherwise."""

from __future__ import annotations

import logging

import uvicorn

from interfaces.api.app import create_app

log = logging.getLogger(__name__)


def serve(host: str = "127.0.0.1", port: int = 8000, workers: int = 1, log_level: str = "info") -> None:
    """Run the API until stopped; ``workers`` > 1 starts that many processes (they share limits through Redis)."""
    if workers > 1:
        uvicorn.run(
            "interfaces.api.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            server_header=False,
        )
        return
    uvicorn.run(create_app(), host=host, port=port, log_level=log_level, server_header=False)
