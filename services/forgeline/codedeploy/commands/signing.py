"""The server's deployment-specification signer, and the PKCS7 envelope it signs.

AWS's agent takes a specification only as PKCS7/JSON: a PEM PKCS#7 SignedData with the
content attached and the signer's certificate embedded (what `openssl smime -sign
-nodetach -binary -outform PEM` makes). The signer is a key and self-signed certificate of
this server's own, made on first use into <data-dir>/codedeploy/ beside the TLS material
and kept from then on; our agent can pin that certificate (signer.pem).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fcntl
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from forgeline.core.settings import Settings
from forgeline.core.tls import self_signed, write_private, write_public

SIGNED_FORMAT = "PKCS7/JSON"
SIGNER_DIRECTORY = "codedeploy"
CERT_NAME = "signer.pem"
KEY_NAME = "signer.key"
VALIDITY = dt.timedelta(days=3650)
RENEW_BEFORE = dt.timedelta(days=30)


@dataclasses.dataclass(frozen=True)
class Signer:
    certificate: x509.Certificate
    key: rsa.RSAPrivateKey

    def sign(self, content: bytes) -> str:
        """`content` as a PEM PKCS#7 SignedData: attached, binary, signer certificate embedded."""
        signed = (
            pkcs7.PKCS7SignatureBuilder()
            .set_data(content)
            .add_signer(self.certificate, self.key, hashes.SHA256())
            # Binary: the JSON is signed byte for byte (no MIME canonical line endings).
            .sign(serialization.Encoding.PEM, [pkcs7.PKCS7Options.Binary])
        )
        return signed.decode("ascii")


def signer_files(settings: Settings) -> tuple[Path, Path]:
    directory = settings.data_dir / SIGNER_DIRECTORY
    return directory / CERT_NAME, directory / KEY_NAME


_lock = threading.Lock()
_signers: dict[Path, Signer] = {}


def get_signer(settings: Settings) -> Signer:
    """This server's signer, made on first use (by one process; the others read it)."""
    cert_file, key_file = signer_files(settings)
    with _lock:
        signer = _signers.get(cert_file)
        if signer is None or not _fresh(signer.certificate):
            signer = _load_or_make(cert_file, key_file)
            _signers[cert_file] = signer
        return signer


def _load_or_make(cert_file: Path, key_file: Path) -> Signer:
    cert_file.parent.mkdir(parents=True, exist_ok=True)
    with open(cert_file.parent / ".signer.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        signer = _load(cert_file, key_file)
        if signer is None or not _fresh(signer.certificate):
            signer = new_signer()
            write_private(key_file, _key_pem(signer.key))
            write_public(cert_file, signer.certificate.public_bytes(serialization.Encoding.PEM))
        return signer


def _load(cert_file: Path, key_file: Path) -> Signer | None:
    if not (cert_file.exists() and key_file.exists()):
        return None
    try:
        certificate = x509.load_pem_x509_certificate(cert_file.read_bytes())
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    except ValueError:
        return None
    if not isinstance(key, rsa.RSAPrivateKey) or key.public_key() != certificate.public_key():
        return None
    return Signer(certificate, key)


def _fresh(certificate: x509.Certificate) -> bool:
    return certificate.not_valid_after_utc - dt.datetime.now(dt.UTC) > RENEW_BEFORE


def new_signer() -> Signer:
    """A new key and self-signed certificate (in memory)."""
    # RSA: every OpenSSL an agent may run on verifies it.
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Forgeline"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Forgeline deployment specification signer"),
        ]
    )
    certificate = self_signed(key, name, VALIDITY, ca=False)
    return Signer(certificate, key)


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
