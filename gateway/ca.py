"""The centre's private certificate authority (``coldchain ca``), with the ``cryptography``
package: a CA, and the broker's server certificate it signs, so gateways connect with
``mqtts://`` and verify whom they talk to.

    DIR/ca.key    the CA's private key (mode 0600): keep it off the broker if you can
    DIR/ca.crt    the CA certificate: every gateway's bundle carries it (uplink.ca_file)
    PREFIX.key    a server key (mode 0600), PREFIX.crt its certificate, signed by the CA

Keys are ECDSA P-256. The CA is valid ten years by default, a server certificate 825 days
(the longest browsers accept, a habit worth keeping). A server certificate names every host
name and IP address gateways use to reach the broker (subjectAltName); a gateway checks it
as a browser does. A CA and certificates the user already has work too: give their files to
``coldchain broker config --tls-cert/--tls-key`` and ``uplink.ca_file``.
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

CA_DAYS = 3650
SERVER_DAYS = 825


class CaError(RuntimeError):
    """A CA directory that cannot be used as asked."""


@dataclass(frozen=True)
class Issued:
    cert: Path
    key: Path
    not_after: dt.datetime


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def init_ca(
    directory: Path, *, name: str = "coldchain CA", days: int = CA_DAYS
) -> tuple[Path, Path]:
    """A new CA in ``directory``: (ca.crt, ca.key). Refuses to replace one."""
    crt, key_path = directory / "ca.crt", directory / "ca.key"
    if crt.exists() or key_path.exists():
        raise CaError(f"{directory} already holds a CA (ca.crt, ca.key): use it, or another DIR")
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_key(key_path, key)
    _write_cert(crt, cert)
    return crt, key_path


def load_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    try:
        cert = x509.load_pem_x509_certificate((directory / "ca.crt").read_bytes())
        key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), None)
    except (OSError, ValueError) as exc:
        raise CaError(f"{directory}: not a CA made by `coldchain ca init` ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CaError(f"{directory}/ca.key: not an EC key")
    return cert, key


def _alt_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def issue_server(
    directory: Path,
    hosts: list[str],
    out: Path,
    *,
    days: int = SERVER_DAYS,
    not_before: dt.datetime | None = None,
) -> Issued:
    """A server certificate for ``hosts`` (names or IP addresses), signed by the CA in
    ``directory``: ``out``.crt and ``out``.key. ``not_before``: its start (default now; a
    test back-dates one to make it expired)."""
    if not hosts:
        raise CaError("name at least one host name or IP address the gateways connect to")
    ca_cert, ca_key = load_ca(directory)
    crt, key_path = out.parent / (out.name + ".crt"), out.parent / (out.name + ".key")
    if crt.exists() or key_path.exists():
        raise CaError(f"{crt} or {key_path} exists: choose another --out")
    key = ec.generate_private_key(ec.SECP256R1())
    start = not_before or _now() - dt.timedelta(minutes=5)
    end = start + dt.timedelta(days=days)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([_alt_name(h) for h in hosts]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    _write_key(key_path, key)
    _write_cert(crt, cert)
    return Issued(crt, key_path, end)
