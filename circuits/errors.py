"""The one error tree of Circuit OS.

Every error we raise on purpose derives from :class:`CircuitError`::

    CircuitError
    ├── DefinitionError        a circuit file or Python definition is wrong (file, line, what)
    │   └── ExpressionError    a condition or template does not parse or reference-check
    ├── EventError             an event envelope is malformed (names the field)
    ├── ConfigError            a setting is missing or wrong (names the variable)
    │   └── SettingMissingError  also a PermanentError: an action needs a setting that is not set
    ├── ActionError            raised by an action while it runs
    │   ├── RetryableError     transient: retried with backoff, logged without a traceback
    │   └── PermanentError     never retried; the run fails and its on_failure steps run
    │       └── LimitError     an expression went over a resource limit (size, loops, time)
    ├── NotFoundError          a run, model or record asked for by id does not exist
    ├── AccessError            the caller may not do this (the HTTP API and the service layer)
    │   ├── UnauthenticatedError  no valid credentials
    │   └── ForbiddenError     valid credentials, but the role or tenant does not allow it
    ├── ConflictError          a name is taken, or the state does not allow the change
    └── RateLimitedError       over a rate or governor limit; ``retry_after_s`` says when to try again

Adapters translate driver exceptions (redis, SQLAlchemy, httpx, ...) into these.
Constructor arguments are passed through to ``super().__init__`` because Celery
rebuilds exceptions from ``args`` when they cross the result backend.
"""

from __future__ import annotations


class CircuitError(Exception):
    """Root of every error Circuit OS raises on purpose."""


class DefinitionError(CircuitError):
    """A circuit definition is wrong; carries where (file, line) and what."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None) -> None:
        super().__init__(message, file, line)
        self.message = message
        self.file = file
        self.line = line

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        elif self.line:
            where = f"line {self.line}: "
        return f"{where}{self.message}"


class ExpressionError(DefinitionError):
    """A condition or template is not valid."""


class EventError(CircuitError):
    """An event envelope is malformed; ``field`` names the offending field."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message, field)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class ConfigError(CircuitError):
    """A setting is missing or has a wrong value."""


class ActionError(CircuitError):
    """An action failed while running."""


class RetryableError(ActionError):
    """A transient failure: the step is retried with backoff, up to its retry limit.

    ``retry_after_s`` is how long the other side asked us to wait (an HTTP ``Retry-After``), so
    the engine can wait at least that long instead of hammering a server that said "not yet".
    """

    def __init__(self, message: str = "", retry_after_s: float | None = None) -> None:
        super().__init__(message, retry_after_s)
        self.message = message
        self.retry_after_s = retry_after_s

    def __str__(self) -> str:
        return self.message


class PermanentError(ActionError):
    """A failure that retrying cannot fix: the run fails and on_failure runs."""


class LimitError(PermanentError):
    """An expression went over a resource limit: value size, loop iterations or time."""


class SettingMissingError(ConfigError, PermanentError):
    """An action needs a setting that is not set; retrying cannot help, so it is permanent."""


class NotFoundError(CircuitError):
    """Something asked for by id does not exist."""


class AccessError(CircuitError):
    """The caller may not do this."""


class UnauthenticatedError(AccessError):
    """No credentials, or credentials that do not check out (unknown, revoked, expired, bad signature)."""


class ForbiddenError(AccessError):
    """The caller is known, but its role or tenant does not allow this."""


class ConflictError(CircuitError):
    """A name is already taken (by another tenant), or the current state does not allow the change."""


class RateLimitedError(CircuitError):
    """Over a rate limit or a governor limit; ``retry_after_s`` is when a retry may succeed."""

    def __init__(self, message: str = "", retry_after_s: float | None = None) -> None:
        super().__init__(message, retry_after_s)
        self.message = message
        self.retry_after_s = retry_after_s

    def __str__(self) -> str:
        return self.message
