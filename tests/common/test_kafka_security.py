"""Kafka clients connect as the settings say: TLS (a CA, a client certificate) and SASL
(PLAIN, SCRAM). No SASL broker here: the options every client is built with are checked, and
the default (PLAINTEXT) is what the rest of the suite runs on."""

import datetime
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from faststream.kafka.security import parse_security

from mgrecs.common.consume import security
from mgrecs.common.kafka import connection_options, make_admin, make_consumer, make_producer
from mgrecs.common.settings import Settings


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate and its key (PEM files): the CA and the client certificate of a test."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mgrecs-test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_plaintext_by_default() -> None:
    options = connection_options(Settings(kafka_bootstrap="kafka:9092"))
    assert options == {"bootstrap_servers": "kafka:9092", "security_protocol": "PLAINTEXT"}


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_ssl_with_a_ca_and_a_client_certificate(tmp_path: Path, mechanism: str) -> None:
    cert, key = self_signed(tmp_path)
    settings = Settings(
        kafka_bootstrap="kafka:9093",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism=mechanism,
        kafka_sasl_username="mgrecs",
        kafka_sasl_password="s3cret",
        kafka_ssl_cafile=str(cert),
        kafka_ssl_certfile=str(cert),
        kafka_ssl_keyfile=str(key),
    )
    options = connection_options(settings)
    context = options.pop("ssl_context")
    assert options == {
        "bootstrap_servers": "kafka:9093",
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": mechanism,
        "sasl_plain_username": "mgrecs",
        "sasl_plain_password": "s3cret",
    }
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    (ca,) = context.get_ca_certs()
    assert dict(entry[0] for entry in ca["subject"])["commonName"] == "mgrecs-test"


def test_ssl_without_sasl_and_sasl_without_ssl(tmp_path: Path) -> None:
    cert, _ = self_signed(tmp_path)
    tls = connection_options(Settings(kafka_security_protocol="SSL", kafka_ssl_cafile=str(cert)))
    assert "sasl_mechanism" not in tls and isinstance(tls["ssl_context"], ssl.SSLContext)
    sasl = connection_options(
        Settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_password="pw")
    )
    assert "ssl_context" not in sasl and sasl["sasl_plain_password"] == "pw"


@pytest.mark.parametrize(
    "protocol", ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"], ids=str.lower
)
def test_faststream_brokers_connect_as_the_plain_clients(tmp_path: Path, protocol: str) -> None:
    cert, key = self_signed(tmp_path)
    settings = Settings(
        kafka_security_protocol=protocol,
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="mgrecs",
        kafka_sasl_password="s3cret",
        kafka_ssl_cafile=str(cert),
        kafka_ssl_certfile=str(cert),
        kafka_ssl_keyfile=str(key),
    )
    plain = connection_options(settings)
    del plain["bootstrap_servers"]
    brokers = parse_security(security(settings)) or {"security_protocol": "PLAINTEXT"}
    if brokers.get("ssl_context") is None:
        brokers.pop("ssl_context", None)
    assert brokers.keys() == plain.keys()
    assert {k: v for k, v in brokers.items() if k != "ssl_context"} == {
        k: v for k, v in plain.items() if k != "ssl_context"
    }


async def test_every_client_is_built_with_the_security_settings() -> None:
    settings = Settings(
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username="u",
        kafka_sasl_password="p",
    )
    producer, consumer = make_producer(settings), make_consumer(settings, "orders")
    admin = make_admin(settings)
    for client in (producer.client, consumer._client, admin._client):
        assert client._security_protocol == "SASL_PLAINTEXT"
        assert client._sasl_mechanism == "SCRAM-SHA-256"
        assert (client._sasl_plain_username, client._sasl_plain_password) == ("u", "p")
    await producer.stop()
    await admin.close()
