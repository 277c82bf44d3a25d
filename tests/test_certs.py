"""``riverguard certs``: the private CA and its certificates, checked by real TLS handshakes."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from riverguard import certs
from riverguard.cli import main

HOSTS = ["localhost", "127.0.0.1"]


def make(directory: Path, **kwargs: object) -> list[certs.Outcome]:
    requests = certs.plan(HOSTS, [("danshui-bridge", ["edge.example", "10.1.0.2"])])
    return certs.make_all(directory, requests, **kwargs)  # type: ignore[arg-type]


def server_context(directory: Path, name: str, *, require_client: bool = True) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(directory / f"{name}.crt", directory / f"{name}.key")
    if require_client:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(directory / "ca.crt")
    return context


def client_context(ca_dir: Path, cert: tuple[Path, str] | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca_dir / "ca.crt")
    if cert is not None:
        directory, name = cert
        context.load_cert_chain(directory / f"{name}.crt", directory / f"{name}.key")
    return context


@asynccontextmanager
async def echo_server(context: ssl.SSLContext) -> AsyncIterator[int]:
    """A TLS echo server on loopback; yields its port."""

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(await reader.readline())
            await writer.drain()
        except (ssl.SSLError, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=context)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def exchange(port: int, context: ssl.SSLContext, hostname: str = "localhost") -> bytes:
    """Handshake, one line there and back (TLS 1.3 reports a refused client
    certificate only on the first read)."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname=hostname), 10
    )
    try:
        writer.write(b"ping\n")
        await writer.drain()
        return await asyncio.wait_for(reader.readline(), 10)
    finally:
        writer.close()
        with suppress(ssl.SSLError, ConnectionError):
            await writer.wait_closed()


async def refused(port: int, context: ssl.SSLContext) -> bool:
    """The server ended the connection without an answer: an alert or a bare close."""
    try:
        return b"" == await exchange(port, context)
    except (ssl.SSLError, ConnectionError):
        return True


async def test_a_server_and_a_client_certificate_complete_a_mutual_handshake(
    tmp_path: Path,
) -> None:
    """The central broker's certificate against the hub's client certificate, both ways
    verified, by host name and by IP address."""
    make(tmp_path)
    async with echo_server(server_context(tmp_path, "broker-central")) as port:
        context = client_context(tmp_path, (tmp_path, "hub-mqtt"))
        assert b"ping\n" == await exchange(port, context, "localhost")
        assert b"ping\n" == await exchange(port, context, "127.0.0.1")


async def test_a_name_the_certificate_does_not_carry_is_refused(tmp_path: Path) -> None:
    make(tmp_path)
    async with echo_server(server_context(tmp_path, "hub-https", require_client=False)) as port:
        with pytest.raises(ssl.SSLCertVerificationError, match=r"Hostname mismatch|IP address"):
            await exchange(port, client_context(tmp_path), "hub.elsewhere.example")
        with pytest.raises(ssl.SSLCertVerificationError):
            await exchange(port, client_context(tmp_path), "10.9.9.9")


async def test_a_server_certificate_of_another_authority_is_refused(tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    make(ours)
    make(theirs)
    async with echo_server(server_context(theirs, "hub-https", require_client=False)) as port:
        with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer"):
            await exchange(port, client_context(ours))


async def test_a_client_certificate_of_another_authority_or_none_is_refused(
    tmp_path: Path,
) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    make(ours)
    make(theirs)
    async with echo_server(server_context(ours, "broker-central")) as port:
        assert await refused(port, client_context(ours, (theirs, "hub-mqtt")))
        assert await refused(port, client_context(ours))
        # The server is still there for a good client.
        assert b"ping\n" == await exchange(port, client_context(ours, (ours, "hub-mqtt")))


async def test_an_expired_certificate_is_refused(tmp_path: Path) -> None:
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=400)
    ca, _ = certs.load_or_create_ca(tmp_path)
    outcome = certs.issue(
        ca, tmp_path, certs.Request("old", True, False, ("localhost",)), days=30, now=long_ago
    )
    assert outcome.not_after < dt.datetime.now(dt.UTC)
    async with echo_server(server_context(tmp_path, "old", require_client=False)) as port:
        with pytest.raises(ssl.SSLCertVerificationError, match="certificate has expired"):
            await exchange(port, client_context(tmp_path))


async def test_a_client_certificate_cannot_serve_as_a_server(tmp_path: Path) -> None:
    """Key usage is enforced: an edge's client certificate does not make a broker."""
    make(tmp_path)
    ca, _ = certs.load_or_create_ca(tmp_path)
    certs.issue(ca, tmp_path, certs.Request("client-only", False, True, ("localhost",)))
    async with echo_server(server_context(tmp_path, "client-only", require_client=False)) as port:
        with pytest.raises(ssl.SSLCertVerificationError, match="certificate purpose"):
            await exchange(port, client_context(tmp_path))


def test_certificates_carry_the_names_purposes_and_validity_asked_for(tmp_path: Path) -> None:
    make(tmp_path, days=90, ca_days=365)
    ca = x509.load_pem_x509_certificate((tmp_path / "ca.crt").read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    assert 365 == (ca.not_valid_after_utc - ca.not_valid_before_utc - certs.BACKDATE).days

    site = x509.load_pem_x509_certificate((tmp_path / "broker-danshui-bridge.crt").read_bytes())
    names = site.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ["edge.example"] == names.get_values_for_type(x509.DNSName)
    assert ["10.1.0.2"] == [str(ip) for ip in names.get_values_for_type(x509.IPAddress)]
    assert 90 == (site.not_valid_after_utc - site.not_valid_before_utc - certs.BACKDATE).days
    usage = site.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert [ExtendedKeyUsageOID.SERVER_AUTH] == list(usage)
    key_usage = site.extensions.get_extension_for_class(x509.KeyUsage).value
    assert key_usage.digital_signature
    assert not key_usage.key_cert_sign

    edge = x509.load_pem_x509_certificate((tmp_path / "edge-danshui-bridge.crt").read_bytes())
    usage = edge.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert [ExtendedKeyUsageOID.CLIENT_AUTH] == list(usage)
    assert "edge-danshui-bridge" == edge.subject.rfc4514_string().split(",")[0].split("=")[1]


def test_keys_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    make(tmp_path)
    keys = sorted(tmp_path.glob("*.key"))
    assert len(keys) == 6  # ca, hub-https, broker-central, hub-mqtt, the site's broker and edge
    for key in keys:
        assert 0o600 == stat.S_IMODE(key.stat().st_mode), key
    assert 0o644 == stat.S_IMODE((tmp_path / "ca.crt").stat().st_mode)


def test_running_again_keeps_the_authority_and_every_good_certificate(tmp_path: Path) -> None:
    make(tmp_path)
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    outcomes = make(tmp_path)
    assert {"kept"} == {outcome.action for outcome in outcomes}
    assert before == {path.name: path.read_bytes() for path in tmp_path.iterdir()}


def test_a_new_authority_only_when_asked_and_then_every_certificate_again(
    tmp_path: Path,
) -> None:
    make(tmp_path)
    old_ca = (tmp_path / "ca.crt").read_bytes()
    outcomes = make(tmp_path, new_ca=True)
    assert old_ca != (tmp_path / "ca.crt").read_bytes()
    assert ["renewed"] * len(outcomes) == [outcome.action for outcome in outcomes]
    assert {"signed by another authority"} == {outcome.reason for outcome in outcomes[1:]}


def test_changed_names_or_a_near_end_renew_one_certificate(tmp_path: Path) -> None:
    make(tmp_path)
    requests = certs.plan(["localhost", "127.0.0.2"], [("danshui-bridge", [])])
    outcomes = {o.name: o for o in certs.make_all(tmp_path, requests)}
    assert ("renewed", "other host names") == (
        outcomes["hub-https"].action,
        outcomes["hub-https"].reason,
    )
    assert "kept" == outcomes["edge-danshui-bridge"].action
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=certs.LEAF_DAYS - 10)
    outcomes = {o.name: o for o in certs.make_all(tmp_path, requests, now=later)}
    assert "expires within 30 days" == outcomes["edge-danshui-bridge"].reason


def test_a_lone_ca_key_or_certificate_is_an_error_not_a_silent_new_authority(
    tmp_path: Path,
) -> None:
    make(tmp_path)
    (tmp_path / "ca.key").unlink()
    with pytest.raises(certs.CertificateError, match=r"only one of ca\.crt and ca\.key"):
        make(tmp_path)


@pytest.mark.parametrize(
    ("hub", "site", "message"),
    [
        (["hub.example"], "../../etc/x", "a file name"),
        (["bad host!"], "s", "not a DNS name"),
        (["*.example"], "s", "wildcard"),
        (["a.*.example"], "s", "wildcard"),
    ],
)
def test_names_that_would_escape_the_folder_or_are_not_hosts_are_refused(
    tmp_path: Path, hub: list[str], site: str, message: str
) -> None:
    def attempt() -> None:
        certs.make_all(tmp_path, certs.plan(hub, [("s", [])], clients=[site]))

    with pytest.raises(certs.CertificateError, match=message):
        attempt()
    assert not (tmp_path.parent.parent / "etc").exists()


def test_the_command_makes_a_deployment_and_says_what_it_did(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["certs", "--dir", str(tmp_path), "--hub", "hub.example", "--hub", "10.0.0.5"]
    argv += ["--site", "danshui-bridge=10.1.0.2", "--devices", "--days", "30"]
    argv += ["--config", str(Path(__file__).parent.parent / "examples" / "danshui.toml")]
    assert 0 == main(argv)
    out = capsys.readouterr().out
    assert "made" in out
    assert "kept" not in out
    assert (tmp_path / "device-danshui-bridge-db-fence-01.crt").exists()
    assert (tmp_path / "broker-danshui-bridge.crt").exists()
    assert 0 == main(argv)
    assert "made" not in capsys.readouterr().out
    assert 1 == main(["certs", "--dir", str(tmp_path), "--hub", "not a host"])
    assert "not a DNS name" in capsys.readouterr().err


def test_with_a_configuration_and_no_site_every_site_gets_its_edge_certificate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = Path(__file__).parent.parent / "examples" / "danshui.toml"
    argv = ["certs", "--dir", str(tmp_path / "tls"), "--hub", "hub.example"]
    assert 0 == main([*argv, "--config", str(config), "--devices"])
    assert (tmp_path / "tls" / "edge-danshui-bridge.crt").exists()
    assert (tmp_path / "tls" / "edge-xiyong-wharf.crt").exists()
    assert (tmp_path / "tls" / "device-xiyong-wharf-xy-fence-01.crt").exists()
    assert not list((tmp_path / "tls").glob("broker-danshui*"))
    capsys.readouterr()
    assert 1 == main([*argv, "--config", str(tmp_path / "missing.toml")])
    assert "riverguard certs:" in capsys.readouterr().err
