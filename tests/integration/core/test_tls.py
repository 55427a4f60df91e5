"""The HTTPS endpoint's certificate: issued once by Forgeline's own CA, reused, reissued
by the same CA when names change; the TLS settings keep their deprecated names working."""

from __future__ import annotations

import ipaddress
import os
import socket
import stat
import subprocess
import sys

import pytest
from cryptography import x509

from forgeline.core import tls
from forgeline.core.settings import Settings, deprecated_names_in_use
from tests.support.server import free_port


def _names(path) -> set[str]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(n) for n in names.get_values_for_type(x509.DNSName)} | {
        str(ip) for ip in names.get_values_for_type(x509.IPAddress)
    }


def _issued_by(cert_file, ca_file) -> bool:
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    ca = x509.load_pem_x509_certificate(ca_file.read_bytes())
    cert.verify_directly_issued_by(ca)  # raises when not
    return True


def test_generated_certificate_is_issued_once_and_reused(tmp_path):
    settings = Settings(data_dir=tmp_path, host="127.0.0.1", public_url="https://git.example.test")
    files = tls.ensure_certificate(settings)
    assert files.generated
    assert files.ca_file == tmp_path / "tls" / "ca.pem" == tls.trusted_ca_file(settings)
    assert {"localhost", "127.0.0.1", "::1", "git.example.test"} <= _names(files.cert_file)
    assert _issued_by(files.cert_file, files.ca_file)
    assert stat.S_IMODE(files.key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "tls" / "ca.key").stat().st_mode) == 0o600
    first = files.cert_file.read_bytes()
    ca = files.ca_file.read_bytes()

    assert tls.ensure_certificate(settings).cert_file.read_bytes() == first

    # A host the certificate does not cover gets a new certificate that does, from the
    # same CA: the file clients trust does not change.
    moved = Settings(data_dir=tmp_path, host="10.1.2.3")
    renewed = tls.ensure_certificate(moved)
    assert renewed.cert_file.read_bytes() != first
    assert str(ipaddress.ip_address("10.1.2.3")) in _names(renewed.cert_file)
    assert renewed.ca_file.read_bytes() == ca
    assert _issued_by(renewed.cert_file, renewed.ca_file)


def test_operator_certificate_is_used_as_given(tmp_path):
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    settings = Settings(data_dir=tmp_path, tls_cert_file=cert, tls_key_file=key)
    files = tls.ensure_certificate(settings)
    assert (files.cert_file, files.key_file, files.ca_file, files.generated) == (
        cert,
        key,
        cert,
        False,
    )
    assert not (tmp_path / "tls").exists()
    with pytest.raises(ValueError, match="FORGELINE_TLS_KEY_FILE"):
        tls.ensure_certificate(Settings(data_dir=tmp_path, tls_cert_file=cert))


def test_https_port_defaults_to_the_next_port_and_can_be_turned_off():
    assert tls.tls_port(Settings(port=4750)) == 4751
    assert tls.tls_port(Settings(port=4750, tls_port=8443)) == 8443
    assert tls.tls_port(Settings(port=4750, tls_port=0)) is None


def test_the_old_variable_names_still_work_and_are_reported(monkeypatch, tmp_path):
    monkeypatch.setenv("FORGELINE_GIT_TLS_PORT", "8443")
    monkeypatch.setenv("FORGELINE_GIT_TLS_CERT_FILE", "c.pem")
    monkeypatch.setenv("FORGELINE_GIT_TLS_KEY_FILE", str(tmp_path / "k.pem"))
    settings = Settings()
    assert settings.tls_port == 8443
    assert settings.tls_cert_file is not None and settings.tls_cert_file.is_absolute()
    assert settings.tls_key_file == tmp_path / "k.pem"
    warnings = deprecated_names_in_use()
    assert len(warnings) == 3
    assert any("FORGELINE_GIT_TLS_PORT" in w and "FORGELINE_TLS_PORT" in w for w in warnings)
    # The new name wins when both are set.
    monkeypatch.setenv("FORGELINE_TLS_PORT", "9443")
    assert Settings().tls_port == 9443
    assert deprecated_names_in_use({"FORGELINE_TLS_PORT": "1"}) == []


def test_serve_warns_of_an_old_name_and_still_obeys_it(tmp_path):
    """FORGELINE_GIT_TLS_PORT still picks the HTTPS port (here a busy one, so `serve` stops
    at once, before writing anything), with a warning naming the new variable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORGELINE_")}
    env["FORGELINE_DATA_DIR"] = str(tmp_path / "never-made")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        env["FORGELINE_GIT_TLS_PORT"] = str(holder.getsockname()[1])
        result = subprocess.run(
            [sys.executable, "-m", "forgeline.cli", "serve", "--port", str(free_port())],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0] == (
        "warning: FORGELINE_GIT_TLS_PORT is deprecated; it still works, but set "
        "FORGELINE_TLS_PORT instead"
    )
    assert "(HTTPS)" in lines[1] and "FORGELINE_TLS_PORT" in lines[1]
    assert not (tmp_path / "never-made").exists()
