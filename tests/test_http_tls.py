"""TLS per request: verification on by default, a CA bundle, verify: false (warned), mTLS."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from oauthcli.errors import NetworkError
from oauthcli.request.resolved import ResolvedProfile, ResolvedTLS
from oauthcli.secret import Secret
from oauthcli.tokens import grants
from oauthcli.transport.sending import Sender
from tests.servers import LoopbackServer
from tests.test_sending import request


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write(
    folder: Path, stem: str, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate
) -> None:
    (folder / f"{stem}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / f"{stem}.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files."""
    folder = tmp_path_factory.mktemp("pki")
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("test ca"))
        .issuer_name(_name("test ca"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    _write(folder, "ca", ca_key, ca)
    for stem, usage in (("server", "server"), ("client", "client")):
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(stem))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
            )
        )
        if usage == "server":
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
        _write(folder, stem, key, builder.sign(ca_key, hashes.SHA256()))
    return folder


def _server(pki: Path, *, require_client_cert: bool) -> LoopbackServer:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki / "server.pem", pki / "server.key")
    if require_client_cert:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(pki / "ca.pem")
    server = LoopbackServer("127.0.0.1", tls=context)
    server.reply("/x", 200, b"secure")
    return server


@pytest.fixture
def https(pki: Path) -> Iterator[LoopbackServer]:
    server = _server(pki, require_client_cert=False)
    yield server
    server.close()


@pytest.fixture
def mtls(pki: Path) -> Iterator[LoopbackServer]:
    server = _server(pki, require_client_cert=True)
    yield server
    server.close()


def test_unknown_ca_is_a_tls_network_error(https: LoopbackServer) -> None:
    with Sender() as sender, pytest.raises(NetworkError, match="TLS error: .*certificate verify"):
        sender.send(request(https.url("/x")))


def test_ca_bundle_verifies(https: LoopbackServer, pki: Path) -> None:
    req = replace(request(https.url("/x")), tls=ResolvedTLS(ca_bundle=str(pki / "ca.pem")))
    with Sender() as sender:
        assert sender.send(req).body == b"secure"


def test_verify_false_warns_every_time(https: LoopbackServer) -> None:
    warnings: list[str] = []
    req = replace(request(https.url("/x")), tls=ResolvedTLS(verify=False))
    with Sender(warn=warnings.append) as sender:
        assert sender.send(req).status == 200
        assert sender.send(req).status == 200
    assert len(warnings) == 2 and "verification is off" in warnings[0]


def test_client_certificate_is_presented(mtls: LoopbackServer, pki: Path) -> None:
    tls = ResolvedTLS(
        ca_bundle=str(pki / "ca.pem"),
        client_cert=str(pki / "client.pem"),
        client_key=str(pki / "client.key"),
    )
    with Sender() as sender:
        assert sender.send(replace(request(mtls.url("/x")), tls=tls)).body == b"secure"
        without = replace(request(mtls.url("/x")), tls=ResolvedTLS(ca_bundle=str(pki / "ca.pem")))
        with pytest.raises(NetworkError):
            sender.send(without)


# -- the token endpoint over TLS --------------------------------------------------
#
# requests lets REQUESTS_CA_BUNDLE (set in many CI images) override a Session's
# verify; a profile's tls: must still be what the token request uses.

TOKEN = b'{"access_token": "tls-token-1", "token_type": "Bearer", "expires_in": 60}'


def _profile(server: LoopbackServer, tls: ResolvedTLS) -> ResolvedProfile:
    return ResolvedProfile(
        name="tls",
        source=Path("tls.yaml"),
        grant_type="client_credentials",
        token_url=server.url("/token"),
        client_id="app",
        client_auth="client_secret_post",
        client_secret=Secret("tls-secret-1"),
        tls=tls,
    )


@pytest.fixture
def system_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    """A CA bundle from the environment that does not know the test CA."""
    import certifi

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    monkeypatch.setenv("CURL_CA_BUNDLE", certifi.where())


@pytest.mark.usefixtures("system_bundle")
def test_token_request_uses_the_profiles_ca_bundle(https: LoopbackServer, pki: Path) -> None:
    https.reply("/token", 200, TOKEN, Content_Type="application/json")
    answer = grants.fetch(_profile(https, ResolvedTLS(ca_bundle=str(pki / "ca.pem"))))
    assert answer.access_token == "tls-token-1"


@pytest.mark.usefixtures("system_bundle")
def test_token_request_honours_verify_false(https: LoopbackServer) -> None:
    https.reply("/token", 200, TOKEN, Content_Type="application/json")
    answer = grants.fetch(_profile(https, ResolvedTLS(verify=False)))
    assert answer.access_token == "tls-token-1"


@pytest.mark.usefixtures("system_bundle")
def test_token_request_without_the_ca_is_refused(https: LoopbackServer) -> None:
    https.reply("/token", 200, TOKEN, Content_Type="application/json")
    with pytest.raises(grants.GrantError, match="TLS error .*certificate verify failed"):
        grants.fetch(_profile(https, ResolvedTLS()))


@pytest.mark.usefixtures("system_bundle")
def test_token_request_presents_the_client_certificate(mtls: LoopbackServer, pki: Path) -> None:
    mtls.reply("/token", 200, TOKEN, Content_Type="application/json")
    tls = ResolvedTLS(
        ca_bundle=str(pki / "ca.pem"),
        client_cert=str(pki / "client.pem"),
        client_key=str(pki / "client.key"),
    )
    assert grants.fetch(_profile(mtls, tls)).access_token == "tls-token-1"
