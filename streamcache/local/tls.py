"""Throwaway TLS material for a local ``redis-server --tls-port``: a CA and a server certificate.

The server certificate names ``localhost`` and ``127.0.0.1``, so clients can
verify both the chain (``ssl_ca_certs`` = the CA file, i.e. REDIS_TLS_CA_FILE)
and the host name. Made with the ``cryptography`` package when it is
installed, else with the ``openssl`` command.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from streamcache.local.redis_server import RedisServer, free_port

_DAYS = 2


@dataclass(frozen=True)
class TlsFiles:
    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def server_cert(self) -> Path:
        return self.directory / "server.crt"

    @property
    def server_key(self) -> Path:
        return self.directory / "server.key"

    def redis_server_args(self, port: int) -> list[str]:
        """``redis-server`` arguments: TLS only on ``port``, plain TCP off, no client certificates."""
        return [
            "--tls-port",
            str(port),
            "--port",
            "0",
            "--tls-cert-file",
            str(self.server_cert),
            "--tls-key-file",
            str(self.server_key),
            "--tls-ca-cert-file",
            str(self.ca_cert),
            "--tls-auth-clients",
            "no",
        ]


def make_tls_files(directory: Path | None = None, common_name: str = "streamcache-local-ca") -> TlsFiles:
    """Write ``ca.crt``, ``server.crt`` and ``server.key`` into ``directory`` (a new temp dir by default)."""
    files = TlsFiles(directory or Path(tempfile.mkdtemp(prefix="streamcache-tls-")))
    try:
        import cryptography  # noqa: F401
    except ImportError:
        _with_openssl(files, common_name)
    else:
        _with_cryptography(files, common_name)
    return files


def _with_cryptography(files: TlsFiles, common_name: str) -> None:
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    ca = (
        _builder(ca_name, ca_name, ca_key.public_key(), now, _DAYS)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    server_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    server = (
        _builder(server_name, ca_name, server_key.public_key(), now, _DAYS)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    files.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.server_cert.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    files.server_key.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _ca_key_usage() -> Any:
    from cryptography import x509

    flags = dict.fromkeys(
        ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement"),
        False,
    )
    return x509.KeyUsage(**flags, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False)


def _builder(subject: Any, issuer: Any, public_key: Any, now: Any, days: int) -> Any:
    import datetime

    from cryptography import x509

    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
    )


def _with_openssl(files: TlsFiles, common_name: str) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise FileNotFoundError("neither the cryptography package nor the openssl command is available")
    d = files.directory

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True)

    run("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(d / "ca.key"))
    ca_key = str(d / "ca.key")
    run("req", "-x509", "-new", "-key", ca_key, "-days", str(_DAYS), "-subj", f"/CN={common_name}",
        "-out", str(files.ca_cert))  # fmt: skip
    run("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(files.server_key))
    run("req", "-new", "-key", str(files.server_key), "-subj", "/CN=localhost", "-out", str(d / "server.csr"))
    (d / "ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
    run("x509", "-req", "-in", str(d / "server.csr"), "-CA", str(files.ca_cert), "-CAkey", ca_key,
        "-CAcreateserial", "-days", str(_DAYS), "-extfile", str(d / "ext.cnf"),
        "-out", str(files.server_cert))  # fmt: skip


class TlsRedisServer(RedisServer):
    """A ``redis-server`` that speaks TLS only, with certificates from ``make_tls_files``."""

    def __init__(self, files: TlsFiles, extra_args: Sequence[str] = ()) -> None:
        port = free_port()
        super().__init__(port=port, extra_args=[*files.redis_server_args(port), *extra_args])
        self.files = files

    @property
    def url(self) -> str:
        return f"rediss://127.0.0.1:{self.port}/0"

    def client(self, **options: Any) -> redis.Redis:
        """A verified (CA and host name) TLS client to this node alone, e.g. for admin commands."""
        return redis.Redis.from_url(self.url, ssl_ca_certs=str(self.files.ca_cert), **options)


@contextmanager
def running_tls_redis() -> Iterator[TlsRedisServer]:
    """A TLS-only redis-server on a free port; ``.url`` is rediss://, ``.files.ca_cert`` its CA."""
    server = TlsRedisServer(make_tls_files())
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(server.workdir, ignore_errors=True)
        shutil.rmtree(server.files.directory, ignore_errors=True)
