"""Certificates for the sandbox: a throw-away CA, a serving certificate for 127.0.0.1 and
localhost, and client certificates whose CN and O carry a user and its groups.

Writes PEM files into a directory; keys never leave it and are readable by the owner only.
A state directory keeps its PKI: `load_or_create_pki` reuses the files a previous run wrote.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALIDITY = dt.timedelta(days=365)


@dataclass(frozen=True, slots=True)
class CertificatePair:
    cert: Path
    key: Path


@dataclass(frozen=True, slots=True)
class SandboxPki:
    ca: CertificatePair
    server: CertificatePair


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)


def _builder(
    subject: x509.Name, issuer: x509.Name, public: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
    )


def create_pki(directory: Path) -> SandboxPki:
    """A CA and a serving certificate for 127.0.0.1, ::1 and localhost."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cvsync-sandbox-ca")])
    ca_cert = (
        _builder(ca_name, ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca = CertificatePair(directory / "ca.crt", directory / "ca.key")
    ca.cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    _write_key(ca.key, ca_key)

    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        _builder(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cvsync-sandbox")]),
            ca_name,
            server_key.public_key(),
        )
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server = CertificatePair(directory / "server.crt", directory / "server.key")
    server.cert.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    _write_key(server.key, server_key)
    return SandboxPki(ca, server)


def load_or_create_pki(directory: Path) -> SandboxPki:
    """The CA and serving certificate already in `directory`, or new ones when any file is
    missing or the serving certificate has expired; clients that trust the CA keep working."""
    ca = CertificatePair(directory / "ca.crt", directory / "ca.key")
    server = CertificatePair(directory / "server.crt", directory / "server.key")
    paths = (ca.cert, ca.key, server.cert, server.key)
    if all(path.is_file() for path in paths) and _still_valid(server.cert):
        return SandboxPki(ca, server)
    return create_pki(directory)


def _still_valid(path: Path) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except ValueError:
        return False
    return cert.not_valid_after_utc > dt.datetime.now(dt.UTC) + dt.timedelta(days=1)


def issue_client_certificate(
    pki: SandboxPki, directory: Path, user: str, groups: tuple[str, ...] = ()
) -> CertificatePair:
    """A client certificate the sandbox maps to `user` (CN) in `groups` (O), as kube does."""
    ca_cert = x509.load_pem_x509_certificate(pki.ca.cert.read_bytes())
    ca_key = serialization.load_pem_private_key(pki.ca.key.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, group) for group in groups]
        + [x509.NameAttribute(NameOID.COMMON_NAME, user)]
    )
    cert = (
        _builder(subject, ca_cert.subject, key.public_key())
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    safe_name = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in user)
    pair = CertificatePair(
        directory / f"client-{safe_name}.crt", directory / f"client-{safe_name}.key"
    )
    pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(pair.key, key)
    return pair


def identity_from_peer_certificate(
    peer: dict[str, object] | None,
) -> tuple[str, tuple[str, ...]] | None:
    """(user, groups) from the dict ssl.SSLSocket.getpeercert() returns, or None."""
    if not peer:
        return None
    user = ""
    groups: list[str] = []
    subject = peer.get("subject", ())
    assert isinstance(subject, tuple)
    for rdn in subject:
        for attribute, value in rdn:
            if attribute == "commonName":
                user = value
            elif attribute == "organizationName":
                groups.append(value)
    return (user, tuple(groups)) if user else None
