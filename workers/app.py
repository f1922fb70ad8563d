"""The Celery application: ``celery -A workers worker`` finds ``workers.app``."""

from __future__ import annotations

from celery import Celery

from workers import signals, tasks


def create_app() -> Celery:
    app = Celery("circuit_os")
    app.config_from_object("celeryconfig")
    tasks.install(app)
    signals.connect(app)
    return app


app = create_app()
