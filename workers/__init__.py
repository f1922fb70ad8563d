"""Composition root: wires circuits, intelligence and storage to Celery.

``celery -A workers worker`` finds ``workers.app``. It is built on first access
(PEP 562), so importing a helper module such as ``workers.embedded`` does not
build the Celery app.
"""

from typing import Any

__all__ = ["app"]


def __getattr__(name: str) -> Any:
    if name == "app":
        from workers.app import app

        return app
    raise AttributeError(name)
