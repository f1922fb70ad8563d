"""notify.email against aiosmtpd on 127.0.0.1, which demands TLS (STARTTLS, or implicit TLS) and AUTH.

The certificate is made here with ``cryptography``; the client trusts it through
CIRCUIT_SMTP_CA_FILE. The action runs as the engine runs it, through ``ActionSpec.run``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from circuits.actions import ActionContext, ActionRegistry
from circuits.errors import PermanentError, RetryableError, SettingMissingError
from circuits.settings import Settings
from integrations.notify import idempotency_key

#: aiosmtpd warns about AUTH without STARTTLS even when the whole connection is TLS (the "ssl" server)
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

SMTP_USER = "circuit-bot"
SMTP_PASSWORD = "smtp-password-do-not-print-9a7e"
EMAIL = ActionRegistry.from_modules(["integrations.notify.email"]).get("notify.email")


def run(settings: Settings, inputs: dict[str, Any], **ctx: Any) -> dict[str, Any]:
    return EMAIL.run(ActionContext.for_test(settings=settings, **ctx), inputs)


@dataclass
class SmtpServer:
    port: int
    ca_file: Path
    implicit_tls: bool
    messages: list[tuple[list[str], EmailMessage]] = field(default_factory=list)
    logins: list[tuple[str, bool]] = field(default_factory=list)

    def settings(self, **kw: Any) -> Settings:
        base: dict[str, Any] = {
            "smtp_host": "127.0.0.1",
            "smtp_port": self.port,
            "smtp_user": SMTP_USER,
            "smtp_password": SMTP_PASSWORD,
            "smtp_from": "circuits@example.com",
            "smtp_starttls": True,
            "smtp_ssl": self.implicit_tls,
            "smtp_ca_file": self.ca_file,
            "notify_timeout_s": 5,
        }
        return Settings(**{**base, **kw})


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, and its key (PEM files)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "circuit-os test smtp")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(params=["starttls", "ssl"])
def smtp(request: pytest.FixtureRequest, tls_files: tuple[Path, Path]) -> Iterator[SmtpServer]:
    """aiosmtpd on 127.0.0.1 demanding TLS (STARTTLS, or implicit TLS) and AUTH before mail."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    cert_file, key_file = tls_files
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert_file, key_file)
    server = SmtpServer(port=free_port(), ca_file=cert_file, implicit_tls=request.param == "ssl")
    lock = threading.Lock()

    def authenticator(_server: Any, _session: Any, _envelope: Any, _mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            SMTP_USER.encode(),
            SMTP_PASSWORD.encode(),
        )
        with lock:
            server.logins.append((data.login.decode() if isinstance(data, LoginPassword) else "?", ok))
        return AuthResult(success=ok, handled=False)

    class Handler:
        async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd hook
            msg = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
            with lock:
                server.messages.append((list(envelope.rcpt_tos), msg))  # type: ignore[arg-type]
            return "250 OK"

    common: dict[str, Any] = {"authenticator": authenticator, "auth_required": True}
    if request.param == "starttls":
        controller = Controller(
            Handler(), hostname="127.0.0.1", port=server.port, tls_context=tls, require_starttls=True, **common
        )
    else:
        # aiosmtpd counts only STARTTLS as TLS for auth_require_tls; here every byte is already TLS
        controller = Controller(
            Handler(),
            hostname="127.0.0.1",
            port=server.port,
            ssl_context=tls,
            server_hostname="127.0.0.1",
            auth_require_tls=False,
            **common,
        )
    controller.start()
    try:
        yield server
    finally:
        controller.stop()


def test_email_is_delivered_over_tls_with_auth(smtp: SmtpServer) -> None:
    inputs = {
        "to": "ann@example.com",
        "cc": ["bob@example.com"],
        "subject": "Hot lead: Acme",
        "text": "Acme scored 91.",
        "html": "<p>Acme scored <b>91</b>.</p>",
    }
    out = run(smtp.settings(), inputs, run_id="r-1", step_id="mail")
    assert out["accepted"] == ["ann@example.com", "bob@example.com"] and out["refused"] == []
    assert smtp.logins == [(SMTP_USER, True)]
    [(rcpts, msg)] = smtp.messages
    assert rcpts == ["ann@example.com", "bob@example.com"]
    assert (msg["Subject"], msg["To"], msg["Cc"], msg["From"]) == (
        "Hot lead: Acme",
        "ann@example.com",
        "bob@example.com",
        "circuits@example.com",
    )
    assert msg["Message-ID"] == out["message_id"] == f"<{idempotency_key('r-1', 'mail')}@example.com>"
    assert msg.get_body(("plain",)).get_content().strip() == "Acme scored 91."  # type: ignore[union-attr]
    assert "<b>91</b>" in msg.get_body(("html",)).get_content()  # type: ignore[union-attr]


def test_wrong_smtp_password_is_permanent_and_never_printed(smtp: SmtpServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-password-also-secret-77"
    with pytest.raises(PermanentError, match=f"refused the login of '{SMTP_USER}' \\(535\\)") as err:
        run(smtp.settings(smtp_password=wrong), {"to": "a@b.c", "subject": "s", "text": "t"})
    assert smtp.messages == [] and smtp.logins and all(not ok for _, ok in smtp.logins)  # smtplib tries PLAIN, LOGIN
    out = run(smtp.settings(), {"to": "a@b.c", "subject": "s", "text": "t"})
    seen = [str(err.value), repr(err.value.args), json.dumps(out), caplog.text, repr(smtp.settings())]
    assert not [t for t in seen if wrong in t or SMTP_PASSWORD in t]


def test_an_untrusted_certificate_is_permanent(smtp: SmtpServer) -> None:
    with pytest.raises(PermanentError, match="certificate is not trusted.*CIRCUIT_SMTP_CA_FILE"):
        run(smtp.settings(smtp_ca_file=None), {"to": "a@b.c", "subject": "s", "text": "t"})
    assert smtp.messages == [] and smtp.logins == []


def test_email_needs_its_settings_and_never_sends_the_password_in_clear() -> None:
    mail = {"to": "a@b.c", "subject": "s", "text": "t"}
    with pytest.raises(SettingMissingError, match="CIRCUIT_SMTP_HOST"):
        run(Settings(), mail)
    plain = Settings(smtp_host="127.0.0.1", smtp_user="u@b.c", smtp_password="p", smtp_starttls=False)
    with pytest.raises(SettingMissingError, match="refusing to send the SMTP password unencrypted"):
        run(plain, mail)
    with pytest.raises(SettingMissingError, match="CIRCUIT_SMTP_PASSWORD"):
        run(Settings(smtp_host="127.0.0.1", smtp_user="u@b.c"), mail)


def test_email_input_is_checked() -> None:
    settings = Settings(smtp_host="127.0.0.1", smtp_from="x@y.z")
    for bad in (
        {"to": "not-an-address", "subject": "s", "text": "t"},
        {"to": [], "subject": "s", "text": "t"},
        {"to": "a@b.c", "subject": "two\nlines", "text": "t"},
        {"to": "a@b.c", "subject": "s", "text": "t", "bcc": "x@y.z"},
    ):
        with pytest.raises(ValidationError):
            run(settings, bad)


def test_an_smtp_server_that_is_down_is_retryable(tls_files: tuple[Path, Path]) -> None:
    settings = Settings(smtp_host="127.0.0.1", smtp_port=free_port(), smtp_from="x@y.z", notify_timeout_s=2)
    with pytest.raises(RetryableError, match="could not be reached: ConnectionRefusedError"):
        run(settings, {"to": "a@b.c", "subject": "s", "text": "t"})
