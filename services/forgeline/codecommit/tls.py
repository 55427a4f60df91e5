"""The certificate of the HTTPS endpoint that git (and git-remote-codecommit) talks to.

An operator's certificate (settings git_tls_cert_file / git_tls_key_file) is used as
given. Without one, a self-signed certificate is generated once into <data-dir>/tls/,
valid for localhost, the loopback addresses and the configured host names; clients
trust it with GIT_SSL_CAINFO or `http.<url>.sslCAInfo`.
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
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from forgeline.core.settings import Settings

CERT_NAME = "git.crt"
KEY_NAME = "git.key"
VALIDITY = dt.timedelta(days=3650)
RENEW_BEFORE = dt.timedelta(days=30)
_WILDCARD_HOSTS = ("", "0.0.0.0", "::")


@dataclasses.dataclass(frozen=True)
class TlsFiles:
    cert_file: Path
    key_file: Path
    self_signed: bool


def tls_port(settings: Settings) -> int | None:
    """The HTTPS port: the setting, else the HTTP port + 1; None when turned off."""
    if settings.git_tls_port is None:
        return settings.port + 1
    return settings.git_tls_port or None


def certificate_hosts(settings: Settings) -> list[str]:
    """Names and addresses the self-signed certificate is made for."""
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
    """The operator's certificate, or the self-signed one (made or renewed if needed)."""
    if settings.git_tls_cert_file or settings.git_tls_key_file:
        if not (settings.git_tls_cert_file and settings.git_tls_key_file):
            raise ValueError("set both FORGELINE_GIT_TLS_CERT_FILE and FORGELINE_GIT_TLS_KEY_FILE")
        return TlsFiles(settings.git_tls_cert_file, settings.git_tls_key_file, self_signed=False)
    directory = settings.data_dir / "tls"
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(directory / CERT_NAME, directory / KEY_NAME, self_signed=True)
    hosts = certificate_hosts(settings)
    # Several processes may start at once: one generates, the others then reuse its pair.
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _still_good(files, hosts):
            _generate(files, hosts)
    return files


def _still_good(files: TlsFiles, hosts: list[str]) -> bool:
    if not (files.cert_file.exists() and files.key_file.exists()):
        return False
    try:
        cert = x509.load_pem_x509_certificate(files.cert_file.read_bytes())
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return False
    covered = {str(name) for name in names.get_values_for_type(x509.DNSName)}
    covered |= {str(address) for address in names.get_values_for_type(x509.IPAddress)}
    wanted = {_normalized(host) for host in hosts}
    fresh = cert.not_valid_after_utc - dt.datetime.now(dt.UTC) > RENEW_BEFORE
    return fresh and wanted <= covered


def _normalized(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host.lower()


def _generate(files: TlsFiles, hosts: list[str]) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host.lower()))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Forgeline git endpoint")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write(files.key_file, key_pem, 0o600)
    _write(files.cert_file, cert.public_bytes(serialization.Encoding.PEM), 0o644)


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
    """How a git user trusts this endpoint's certificate."""
    if not files.self_signed:
        return f"git over HTTPS: {url}/v1/repos/<name> (certificate {files.cert_file})"
    return (
        f"git over HTTPS: {url}/v1/repos/<name> uses a self-signed certificate. Trust it with\n"
        f"  export GIT_SSL_CAINFO={files.cert_file.resolve()}\n"
        f"or, for this server only:\n"
        f"  git config --global http.{url}/.sslCAInfo {files.cert_file.resolve()}"
    )
