"""The HTTP API of Circuit OS: FastAPI on uvicorn (``circuit-os serve``)."""

from __future__ import annotations

from interfaces.api.app import create_app

__all__ = ["create_app"]
