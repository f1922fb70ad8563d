"""``notify.email``: a message through an SMTP server, over STARTTLS or implicit TLS, with AUTH.

Server, login and password come from ``CIRCUIT_SMTP_*`` settings. The password is never sent
over an unencrypted connection. The Message-ID is derived from run and step, so every attempt
of one step sends the same id and a mail system that dedupes on it keeps one copy.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from circuits.actions import ActionContext, action
from circuits.errors import ActionError, PermanentError, RetryableError, SettingMissingError
from circuits.settings import Settings
from integrations.notify.config import known_secrets, one_line, reveal, scrub, settings_of
from integrations.notify.signing import idempotency_key

__all__ = ["EmailInput", "EmailOutput", "send_email"]

_ADDRESS = r"^[^@\s<>,;:\"()\[\]\\]+@[^@\s<>,;:\"()\[\]\\]+$"


class EmailInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: list[str] = Field(min_length=1, max_length=100, description="One address or a list.")
    cc: list[str] = Field(default_factory=list, max_length=100)
    subject: str = Field(min_length=1, max_length=998)
    text: str = Field(description="The plain-text body.")
    html: str | None = Field(None, description="An HTML alternative to the text.")

    @field_validator("to", "cc", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("to", "cc")
    @classmethod
    def _addresses(cls, values: list[str]) -> list[str]:
        for value in values:
            if not re.match(_ADDRESS, value):
                raise ValueError(f"{value!r} is not an email address like name@example.com")
        return values

    @field_validator("subject")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if "\r" in value or "\n" in value:
            raise ValueError("the subject must be one line")
        return value


class EmailOutput(BaseModel):
    accepted: list[str]
    refused: list[str] = Field(default_factory=list)
    message_id: str


def _server(settings: Settings) -> tuple[str, str]:
    """``(host, sender)``, or the setting that is missing."""
    if not settings.smtp_host:
        raise SettingMissingError("notify.email: CIRCUIT_SMTP_HOST is not set")
    sender = settings.smtp_from or settings.smtp_user
    if not sender or "@" not in sender:
        raise SettingMissingError("notify.email: set CIRCUIT_SMTP_FROM to the sender address")
    if settings.smtp_user:
        if settings.smtp_password is None:
            raise SettingMissingError("notify.email: CIRCUIT_SMTP_USER is set but CIRCUIT_SMTP_PASSWORD is not")
        if not (settings.smtp_ssl or settings.smtp_starttls):
            raise SettingMissingError(
                "notify.email: refusing to send the SMTP password unencrypted; "
                "set CIRCUIT_SMTP_STARTTLS=true or CIRCUIT_SMTP_SSL=true"
            )
    return settings.smtp_host, sender


def _message(ctx: ActionContext, inp: EmailInput, sender: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(inp.to)
    if inp.cc:
        msg["Cc"] = ", ".join(inp.cc)
    msg["Subject"] = inp.subject
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = f"<{idempotency_key(ctx.run_id, ctx.step_id)}@{sender.rsplit('@', 1)[1]}>"
    msg.set_content(inp.text)
    if inp.html is not None:
        msg.add_alternative(inp.html, subtype="html")
    return msg


def _deliver(settings: Settings, host: str, msg: EmailMessage, sender: str, rcpts: list[str]) -> dict[str, Any]:
    """Connect, secure, log in and send; the recipients the server refused, by address."""
    tls = ssl.create_default_context(cafile=str(settings.smtp_ca_file) if settings.smtp_ca_file else None)
    timeout = settings.notify_timeout_s
    smtp = (
        smtplib.SMTP_SSL(host, settings.smtp_port, timeout=timeout, context=tls)
        if settings.smtp_ssl
        else smtplib.SMTP(host, settings.smtp_port, timeout=timeout)
    )
    with smtp:
        if not settings.smtp_ssl and settings.smtp_starttls:
            smtp.ehlo()
            if not smtp.has_extn("starttls"):
                raise PermanentError(f"notify.email: SMTP server {host} does not offer STARTTLS")
            smtp.starttls(context=tls)
            smtp.ehlo()
        if settings.smtp_user:
            smtp.login(settings.smtp_user, reveal(settings.smtp_password))
        return dict(smtp.send_message(msg, from_addr=sender, to_addrs=rcpts))


def _translate(exc: Exception, settings: Settings, host: str) -> ActionError:
    """The error kind for an SMTP or network failure; no password, and server text scrubbed."""
    hidden = known_secrets(settings)
    where = f"notify.email: SMTP server {host}:{settings.smtp_port}"
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return PermanentError(f"{where} refused the login of {settings.smtp_user!r} ({exc.smtp_code})")
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return PermanentError(f"{where} does not support what we asked: {scrub(str(exc), hidden)}")
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = {addr: code for addr, (code, _) in exc.recipients.items()}
        kind = RetryableError if all(400 <= c < 500 for c in codes.values()) else PermanentError
        return kind(f"{where} refused every recipient: {codes}")
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        message = f"{where} answered {exc.smtp_code}: {scrub(one_line(text), hidden)}"
        return PermanentError(message) if exc.smtp_code >= 500 else RetryableError(message)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return PermanentError(
            f"{where}: its TLS certificate is not trusted ({exc.verify_message}); see CIRCUIT_SMTP_CA_FILE"
        )
    return RetryableError(f"{where} could not be reached: {type(exc).__name__}: {scrub(str(exc), hidden)}")


@action("notify.email", queue="notify", retries=3, timeout_s=60)
def send_email(ctx: ActionContext, inp: EmailInput) -> EmailOutput:
    """Send an email through the SMTP server in settings (STARTTLS or TLS, with AUTH when a user is set)."""
    settings = settings_of(ctx)
    host, sender = _server(settings)
    msg = _message(ctx, inp, sender)
    rcpts = list(dict.fromkeys([*inp.to, *inp.cc]))
    try:
        refused = _deliver(settings, host, msg, sender, rcpts)
    except ActionError:
        raise
    except (smtplib.SMTPException, OSError) as exc:  # SMTP errors, refused connections, timeouts, TLS
        raise _translate(exc, settings, host) from None
    accepted = [r for r in rcpts if r not in refused]
    ctx.log.info("email %s sent to %d recipients (%d refused)", msg["Message-ID"], len(accepted), len(refused))
    return EmailOutput(accepted=accepted, refused=sorted(refused), message_id=str(msg["Message-ID"]))
