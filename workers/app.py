"""The Celery application: ``celery -A workers worker`` finds ``workers.app``."""

from __future__ import annotations

import importlib

import kombu.pools
from celery import Celery

from workers import broker, signals, tasks


def create_app() -> Celery:
    broker.install()
    app = Celery("circuit_os")
    app.config_from_object("celeryconfig")
    tasks.install(app)
    signals.connect(app)
    _secure(app)
    return app


def _secure(app: Celery) -> None:
    """Register the signing serializer when CIRCUIT_SIGNING_* are set (celeryconfig then asks for it).

    Only JSON stays enabled beside it: pickle, YAML and msgpack are switched off in any case.
    """
    if app.conf.task_serializer != "auth":
        return
    from celery.exceptions import CeleryError

    from circuits.errors import ConfigError

    try:
        app.setup_security(
            allowed_serializers=["json"],
            key=app.conf.security_key,
            cert=app.conf.security_certificate,
            store=app.conf.security_cert_store,
            serializer="json",
        )
    except (OSError, ValueError, CeleryError) as exc:  # a missing file, a bad key or certificate
        raise ConfigError(f"message signing: {exc}") from None


def rebind() -> None:
    """Read the settings into the app again, and drop connections made with the old ones.

    The app is configured when first imported; tests, the demo and the fuzz suite change
    ``CIRCUIT_*`` variables later (through :func:`workers.runtime.reset_runtime`).
    """
    import celeryconfig

    importlib.reload(celeryconfig)
    kombu.pools.reset()  # first: kombu keeps producer pools per URL, closed ones included
    # setting by setting: config_from_object(force=True) would also drop the task routes install() set
    app.conf.update({k: v for k, v in vars(celeryconfig).items() if not k.startswith("_") and k in app.conf})
    _secure(app)
    if app._pool is not None:
        app._pool.force_close_all()
    app._pool = None
    if "amqp" in app.__dict__:
        app.amqp._producer_pool = None  # producers hold connections made with the old URL
        app.amqp.__dict__.pop("send_task_message", None)  # it keeps the task serializer it first saw
    app.__dict__.pop("control", None)  # its mailbox keeps the producer pool it first used
    vars(app._local).pop("backend", None)  # the result backend this thread built on the old URL


app = create_app()
