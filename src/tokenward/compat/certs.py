"""A local certificate authority and a server certificate, for TLS on the compatibility port.

The Python SDK always speaks TLS for gRPC, so trying it on one machine needs a certificate its
client trusts. ``tokenward certs dev --out DIR`` writes:

* ``ca.pem`` — a self-signed CA (EC P-256, 10 years, ``CA:TRUE, pathlen:0``), to hand to the
  clients: ``GRPC_DEFAULT_SSL_ROOTS_FILE_PATH`` (gRPC in Python), ``REQUESTS_CA_BUNDLE``
  (requests, the Python SDK's REST calls), ``NODE_EXTRA_CA_CERTS`` (Node);
* ``server.pem`` and ``server-key.pem`` — a leaf for ``localhost``, ``127.0.0.1`` and ``::1``
  (398 days, ``serverAuth``) signed by that CA, for ``serve --tls-cert/--tls-key``.

The CA's key is not kept: nothing else can ever be signed with it, so trusting ``ca.pem`` trusts
this one server certificate only. Private keys are written with mode 0600.
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
SERVER_DAYS = 398
HOSTS = ("localhost",)
ADDRESSES = ("127.0.0.1", "::1")


@dataclass(frozen=True)
class DevCertificates:
    ca: Path
    cert: Path
    key: Path

    def environment(self) -> dict[str, str]:
        """What each client needs to trust the server certificate."""
        ca = str(self.ca)
        return {
            "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": ca,
            "REQUESTS_CA_BUNDLE": ca,
            "NODE_EXTRA_CA_CERTS": ca,
        }


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tokenward development"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fd = os.open(path, flags, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    if private:
        os.chmod(path, 0o600)


def create_dev_certificates(out: Path, *, now: dt.datetime | None = None) -> DevCertificates:
    """Write ``ca.pem``, ``server.pem`` and ``server-key.pem`` into ``out`` (created if needed)."""
    out.mkdir(parents=True, exist_ok=True)
    start = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("tokenward development CA")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=CA_DAYS))
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName(h) for h in HOSTS]
    names += [x509.IPAddress(ipaddress.ip_address(a)) for a in ADDRESSES]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=SERVER_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = DevCertificates(out / "ca.pem", out / "server.pem", out / "server-key.pem")
    _write(paths.ca, ca_cert.public_bytes(serialization.Encoding.PEM))
    _write(paths.cert, cert.public_bytes(serialization.Encoding.PEM))
    _write(
        paths.key,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        private=True,
    )
    return paths
