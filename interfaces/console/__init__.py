"""The console: a static page (HTML, vanilla JS, CSS in ``static/``) served at ``/`` by the API process.

It reads and steers runs through the JSON API with the caller's own credentials, so it sees
exactly what the API lets that caller see.
"""

from __future__ import annotations

from pathlib import Path

STATIC = Path(__file__).resolve().parent / "static"
