"""The HTTPS endpoint's certificate: generated once, reused, renewed when names change."""

from __future__ import annotations

import ipaddress
import stat

import pytest
from cryptography import x509

from forgeline.codecommit import tls
from forgeline.core.settings import Settings


def _names(path) -> set[str]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(n) for n in names.get_values_for_type(x509.DNSName)} | {
        str(ip) for ip in names.get_values_for_type(x509.IPAddress)
    }


def test_self_signed_certificate_is_made_once_and_reused(tmp_path):
    settings = Settings(data_dir=tmp_path, host="127.0.0.1", public_url="https://git.example.test")
    files = tls.ensure_certificate(settings)
    assert files.self_signed
    assert {"localhost", "127.0.0.1", "::1", "git.example.test"} <= _names(files.cert_file)
    assert stat.S_IMODE(files.key_file.stat().st_mode) == 0o600
    first = files.cert_file.read_bytes()

    assert tls.ensure_certificate(settings).cert_file.read_bytes() == first

    # A host the certificate does not cover gets a new certificate that does.
    moved = Settings(data_dir=tmp_path, host="10.1.2.3")
    renewed = tls.ensure_certificate(moved)
    assert renewed.cert_file.read_bytes() != first
    assert str(ipaddress.ip_address("10.1.2.3")) in _names(renewed.cert_file)


def test_operator_certificate_is_used_as_given(tmp_path):
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    settings = Settings(data_dir=tmp_path, git_tls_cert_file=cert, git_tls_key_file=key)
    files = tls.ensure_certificate(settings)
    assert (files.cert_file, files.key_file, files.self_signed) == (cert, key, False)
    assert not (tmp_path / "tls").exists()
    with pytest.raises(ValueError):
        tls.ensure_certificate(Settings(data_dir=tmp_path, git_tls_cert_file=cert))


def test_https_port_defaults_to_the_next_port_and_can_be_turned_off():
    assert tls.tls_port(Settings(port=4750)) == 4751
    assert tls.tls_port(Settings(port=4750, git_tls_port=8443)) == 8443
    assert tls.tls_port(Settings(port=4750, git_tls_port=0)) is None
