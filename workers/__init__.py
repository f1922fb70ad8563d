"""Composition root: wires circuits, intelligence and storage to Celery.

``celery -A workers worker`` uses :data:`workers.app.app`.
"""

from workers.app import app

__all__ = ["app"]
