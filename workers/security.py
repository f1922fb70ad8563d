"""Keys for message signing: an RSA private key and a self-signed certificate (Celery's ``auth``
serializer signs with the key; every worker and producer trusts the certificates in one folder).
"""

from __future__ import annotations

import datetime
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from circuits.errors import ConfigError


@dataclass(frozen=True)
class SigningFiles:
    """Where :func:`make_keys` wrote the key, the certificate and the trusted-certificates folder."""

    key: Path
    cert: Path
    store: Path

    def settings(self) -> dict[str, str]:
        """The CIRCUIT_SIGNING_* variables that switch signing on with these files."""
        return {
            "CIRCUIT_SIGNING_KEY": str(self.key),
            "CIRCUIT_SIGNING_CERT": str(self.cert),
            "CIRCUIT_SIGNING_CERT_STORE": str(self.store),
        }


def make_keys(out: Path, name: str | None = None, days: int = 825, overwrite: bool = False) -> SigningFiles:
    """Write ``out/signing.key`` (RSA 3072, mode 0600) and ``out/certs/<name>.pem`` (self-signed).

    ``out/certs`` is the trusted store: copy other hosts' certificates into it when each host signs
    with its own key. Refuses to replace an existing key unless ``overwrite``.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    name = name or f"circuit-os-{socket.gethostname()}"
    out = out.resolve()
    files = SigningFiles(key=out / "signing.key", cert=out / "certs" / f"{name}.pem", store=out / "certs")
    if files.key.exists() and not overwrite:
        raise ConfigError(f"{files.key} exists; pass --force to replace it")
    files.store.mkdir(parents=True, exist_ok=True)

    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    # created 0600 from the start: the key is never readable by others, not even for a moment
    fd = os.open(files.key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    os.chmod(files.key, 0o600)  # O_CREAT's mode does not apply to a file that existed
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return files
