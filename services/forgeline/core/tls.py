"""The certificate of the server's HTTPS endpoint, and the one CA file its clients trust.

The HTTPS port serves the whole server: the API, git over HTTPS (git-remote-codecommit
speaks only HTTPS) and the CodeDeploy agents' command service (AWS's agent speaks only
HTTPS and stops at start on a certificate it does not trust).

An operator's certificate (settings tls_cert_file / tls_key_file) is used as given. Without
one, Forgeline makes a small CA of its own once (<data-dir>/tls/ca.pem) and issues the
server certificate from it, for localhost, the loopback addresses and the configured host
names. A certificate for new names is issued by the same CA, so the file clients were told
to trust stays right: they are pointed at the CA, not at the certificate.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fcntl
import ipaddress
import os
import socket
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from forgeline.core.settings import Settings

TLS_DIRECTORY = "tls"
CA_CERT_NAME = "ca.pem"
CA_KEY_NAME = "ca.key"
CERT_NAME = "server.crt"
KEY_NAME = "server.key"
CA_VALIDITY = dt.timedelta(days=3650)
CERT_VALIDITY = dt.timedelta(days=825)
RENEW_BEFORE = dt.timedelta(days=30)
_WILDCARD_HOSTS = ("", "0.0.0.0", "::")


@dataclasses.dataclass(frozen=True)
class TlsFiles:
    cert_file: Path
    key_file: Path
    # The one file a client trusts: the generated CA, or the operator's certificate file
    # (right when it is self-signed or its chain ends at the root).
    ca_file: Path
    generated: bool


def tls_port(settings: Settings) -> int | None:
    """The HTTPS port: the setting, else the HTTP port + 1; None when turned off."""
    if settings.tls_port is None:
        return int(settings.port) + 1
    return int(settings.tls_port) or None


def trusted_ca_file(settings: Settings) -> Path:
    """The file clients of this server's HTTPS endpoint trust (it may not exist yet: the
    server makes it on first start)."""
    if settings.tls_cert_file:
        return settings.tls_cert_file
    return settings.data_dir / TLS_DIRECTORY / CA_CERT_NAME


def certificate_hosts(settings: Settings) -> list[str]:
    """Names and addresses the generated certificate is made for."""
    hosts = ["localhost", "127.0.0.1", "::1"]
    if settings.host not in _WILDCARD_HOSTS:
        hosts.append(settings.host)
    else:
        hosts.append(socket.gethostname())
    if settings.public_url:
        public_host = urlsplit(settings.public_url).hostname
        if public_host:
            hosts.append(public_host)
    return list(dict.fromkeys(hosts))


def ensure_certificate(settings: Settings) -> TlsFiles:
    """The operator's certificate, or the generated one (made or renewed if needed)."""
    if settings.tls_cert_file or settings.tls_key_file:
        if not (settings.tls_cert_file and settings.tls_key_file):
            raise ValueError("set both FORGELINE_TLS_CERT_FILE and FORGELINE_TLS_KEY_FILE")
        return TlsFiles(
            settings.tls_cert_file,
            settings.tls_key_file,
            ca_file=settings.tls_cert_file,
            generated=False,
        )
    directory = settings.data_dir / TLS_DIRECTORY
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(
        directory / CERT_NAME,
        directory / KEY_NAME,
        ca_file=trusted_ca_file(settings),
        generated=True,
    )
    ca_key_file = directory / CA_KEY_NAME
    hosts = certificate_hosts(settings)
    # Several processes may start at once: one generates, the others then reuse its files.
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        ca = _load_ca(files.ca_file, ca_key_file) or _generate_ca(files.ca_file, ca_key_file)
        if not _cert_still_good(files, ca[0], hosts):
            _issue(files, *ca, hosts)
    return files


def _fresh(cert: x509.Certificate) -> bool:
    return cert.not_valid_after_utc - dt.datetime.now(dt.UTC) > RENEW_BEFORE


_Ca = tuple[x509.Certificate, ec.EllipticCurvePrivateKey]


def _load_ca(ca_file: Path, ca_key_file: Path) -> _Ca | None:
    """The CA made earlier, unless it is missing, unreadable or about to expire."""
    if not (ca_file.exists() and ca_key_file.exists()):
        return None
    try:
        cert = x509.load_pem_x509_certificate(ca_file.read_bytes())
        key = serialization.load_pem_private_key(ca_key_file.read_bytes(), password=None)
    except ValueError:
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        return None
    return (cert, key) if _fresh(cert) else None


def _cert_still_good(files: TlsFiles, ca_cert: x509.Certificate, hosts: list[str]) -> bool:
    if not (files.cert_file.exists() and files.key_file.exists()):
        return False
    try:
        cert = x509.load_pem_x509_certificate(files.cert_file.read_bytes())
        cert.verify_directly_issued_by(ca_cert)
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    covered = {str(name) for name in names.get_values_for_type(x509.DNSName)}
    covered |= {str(address) for address in names.get_values_for_type(x509.IPAddress)}
    wanted = {_normalized(host) for host in hosts}
    return _fresh(cert) and wanted <= covered


def _normalized(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host.lower()


def self_signed(
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
    name: x509.Name,
    validity: dt.timedelta,
    *,
    ca: bool,
) -> x509.Certificate:
    """A self-signed certificate: a CA's (signs certificates) or a signer's (signs data)."""
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=not ca,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _generate_ca(ca_file: Path, ca_key_file: Path) -> _Ca:
    key = ec.generate_private_key(ec.SECP256R1())
    # A new name each time: a client that trusted an older CA must not take this one for it.
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Forgeline"),
            x509.NameAttribute(
                NameOID.COMMON_NAME, f"Forgeline local CA {x509.random_serial_number() % 10**8}"
            ),
        ]
    )
    cert = self_signed(key, name, CA_VALIDITY, ca=True)
    write_private(ca_key_file, _private_pem(key))
    write_public(ca_file, cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _issue(
    files: TlsFiles,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    hosts: list[str],
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host.lower()))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Forgeline HTTPS endpoint")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(min(now + CERT_VALIDITY, ca_cert.not_valid_after_utc))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    write_private(files.key_file, _private_pem(key))
    write_public(files.cert_file, cert.public_bytes(serialization.Encoding.PEM))


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_private(path: Path, data: bytes) -> None:
    """Write a key readable by its owner only, atomically (readers never see half a key)."""
    _write(path, data, 0o600)


def write_public(path: Path, data: bytes) -> None:
    _write(path, data, 0o644)


def _write(path: Path, data: bytes, mode: int) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)


def trust_instructions(files: TlsFiles, url: str) -> str:
    """What the operator needs to know at start: where HTTPS answers and which CA file
    its clients (git, the AWS CLI and SDKs, CodeDeploy agents) must trust."""
    ca = files.ca_file.resolve()
    if not files.generated:
        return (
            f"HTTPS (API, git, CodeDeploy agents): {url} with certificate {files.cert_file}; "
            f"clients trust the CA that issued it"
        )
    return (
        f"HTTPS (API, git, CodeDeploy agents): {url}, certificate issued by Forgeline's own CA.\n"
        f"  Its CA file: {ca}\n"
        f"  git:              export GIT_SSL_CAINFO={ca}\n"
        f"  AWS CLI, boto3:   export AWS_CA_BUNDLE={ca}\n"
        f"  CodeDeploy agent: SSL_CERT_FILE, AWS_SSL_CA_BUNDLE and AWS_CA_BUNDLE={ca}"
    )
