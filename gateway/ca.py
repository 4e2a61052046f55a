"""The centre's private certificate authority (``coldchain ca``), with the ``cryptography``
package: a CA, and the broker's server certificate it signs, so gateways connect with
``mqtts://`` and verify whom they talk to.

    DIR/ca.key    the CA's private key (mode 0600): keep it off the broker if you can
    DIR/ca.crt    the CA certificate: every gateway's bundle carries it (uplink.ca_file)
    PREFIX.key    a server key (mode 0600), PREFIX.crt its certificate, signed by the CA
    DIR/clients.json, DIR/crl.pem   with mutual TLS: every client certificate the CA issued,
                  and the revocation list the broker reads (see issue_client below)

Keys are ECDSA P-256. The CA is valid ten years by default, a server certificate 825 days
(the longest browsers accept, a habit worth keeping). A server certificate names every host
name and IP address gateways use to reach the broker (subjectAltName); a gateway checks it
as a browser does. A CA and certificates the user already has work too: give their files to
``coldchain broker config --tls-cert/--tls-key`` and ``uplink.ca_file``.

Mutual TLS (``coldchain broker config --client-ca DIR``): the broker also demands a client
certificate from this CA and takes its common name as the broker identity; every gateway's
bundle then carries a certificate of its own (:func:`issue_client`), and revoking a gateway
revokes its certificates (:func:`revoke_clients`, the CRL).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import ipaddress
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
SERVER_DAYS = 825
CLIENT_DAYS = 825  # a gateway's certificate: rotate the gateway before it runs out


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


def pair(prefix: Path) -> tuple[Path, Path]:
    """``prefix``.crt and ``prefix``.key."""
    return prefix.parent / (prefix.name + ".crt"), prefix.parent / (prefix.name + ".key")


def _alt_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _leaf(
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    name: str,
    *,
    days: int,
    not_before: dt.datetime | None,
    usage: x509.ObjectIdentifier,
    alt_names: list[x509.GeneralName] | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A new key and its end-entity certificate (common name ``name``), signed by ``ca``."""
    ca_cert, ca_key = ca
    key = ec.generate_private_key(ec.SECP256R1())
    start = not_before or _now() - dt.timedelta(minutes=5)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


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
    ca = load_ca(directory)
    crt, key_path = pair(out)
    if crt.exists() or key_path.exists():
        raise CaError(f"{crt} or {key_path} exists: choose another --out")
    cert, key = _leaf(
        ca,
        hosts[0],
        days=days,
        not_before=not_before,
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        alt_names=[_alt_name(h) for h in hosts],
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    _write_key(key_path, key)
    _write_cert(crt, cert)
    return Issued(crt, key_path, cert.not_valid_after_utc)


# --- client certificates (mutual TLS) -------------------------------------------------------
# The broker maps a client certificate's common name to the broker identity of that name
# (``use_identity_as_username``), so a client certificate is a broker identity: the CA keeps
# a ledger of every one it issued (DIR/clients.json) and a revocation list (DIR/crl.pem) the
# broker reads, naming every certificate of an identity that was revoked or retired.

LEDGER = "clients.json"
CRL = "crl.pem"


@dataclass(frozen=True)
class ClientCert:
    """A client certificate and its key, PEM (the key exists nowhere else)."""

    name: str
    serial: int
    cert: bytes
    key: bytes
    not_after: dt.datetime


@contextlib.contextmanager
def _ledger(directory: Path) -> Iterator[list[dict[str, Any]]]:
    """The ledger's entries, to read and change under a lock (the CLI and the hub's API may
    both issue); written back, atomically, when the block ends without an error."""
    # read-only: whoever made the lock file (root running the CLI, or the hub), all may lock
    fd = os.open(directory / (LEDGER + ".lock"), os.O_RDONLY | os.O_CREAT, 0o644)
    with os.fdopen(fd) as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = directory / LEDGER
        try:
            entries: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["issued"]
        except FileNotFoundError:
            entries = []
        except (ValueError, KeyError, TypeError) as exc:
            raise CaError(f"{path}: not a ledger coldchain wrote ({exc})") from None
        before = json.dumps(entries)
        yield entries
        if json.dumps(entries) != before:
            tmp = path.with_name(LEDGER + ".tmp")
            tmp.write_text(json.dumps({"issued": entries}, indent=1) + "\n", encoding="utf-8")
            os.replace(tmp, path)


def issue_client(
    directory: Path,
    name: str,
    *,
    days: int = CLIENT_DAYS,
    not_before: dt.datetime | None = None,
) -> ClientCert:
    """A client certificate for the broker identity ``name``, signed by the CA in
    ``directory`` and entered in its ledger."""
    ca = load_ca(directory)
    cert, key = _leaf(
        ca, name, days=days, not_before=not_before, usage=ExtendedKeyUsageOID.CLIENT_AUTH
    )
    with _ledger(directory) as entries:
        entries.append(
            {
                "serial": f"{cert.serial_number:x}",
                "name": name,
                "not_after": cert.not_valid_after_utc.isoformat(),
                "revoked": None,
            }
        )
    return ClientCert(
        name,
        cert.serial_number,
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        cert.not_valid_after_utc,
    )


def write_client(prefix: Path, issued: ClientCert) -> tuple[Path, Path]:
    """``prefix``.crt and ``prefix``.key (mode 0600), replacing older ones."""
    crt, key = pair(prefix)
    key.unlink(missing_ok=True)
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(issued.key)
    crt.write_bytes(issued.cert)
    return crt, key


def revoke_clients(directory: Path, names: list[str]) -> list[str]:
    """Revoke every unrevoked certificate issued to one of ``names`` and write the CRL
    again: the serials revoked (hex). The broker refuses them once it reloads the CRL."""
    wanted = set(names)
    now = _now().isoformat()
    revoked = []
    with _ledger(directory) as entries:
        for e in entries:
            if e["name"] in wanted and e["revoked"] is None:
                e["revoked"] = now
                revoked.append(e["serial"])
    write_crl(directory)
    return revoked


def write_crl(directory: Path) -> Path:
    """``directory``/crl.pem: every revoked client certificate, signed by the CA. Its next
    update is the CA's own expiry: OpenSSL refuses every client once a CRL's next update has
    passed, so a CRL that must be re-signed on a schedule would one day lock out the fleet."""
    ca_cert, ca_key = load_ca(directory)
    with _ledger(directory) as entries:
        revoked = [e for e in entries if e["revoked"] is not None]
    now = _now()
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(now - dt.timedelta(minutes=5))
        .next_update(ca_cert.not_valid_after_utc)
    )
    for e in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(int(e["serial"], 16))
            .revocation_date(dt.datetime.fromisoformat(e["revoked"]))
            .build()
        )
    crl = builder.sign(ca_key, hashes.SHA256())
    path = directory / CRL
    tmp = path.with_name(CRL + ".tmp")
    tmp.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    os.chmod(tmp, 0o644)  # the broker's user reads it
    os.replace(tmp, path)
    return path
