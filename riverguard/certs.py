"""A deployment's private certificate authority and the certificates it signs.

Everything lives in one directory, in PEM: ``ca.crt`` and ``ca.key``, then
``NAME.crt`` and ``NAME.key`` for each certificate. Keys are written 0600.

Running again is safe. The authority is kept unless a new one is asked for
(a new authority invalidates every certificate in the field). A certificate
is kept while it is still good: signed by the current authority, for the
same names and purpose, and more than ``RENEW_BEFORE`` from its end; any
other is issued again, with a new key.

What a deployment needs (``plan``): the hub's HTTPS and the central broker
(server certificates for the hub's names), the hub's own MQTT client
certificate, per site an edge client certificate and, where the site's
names are given, a site broker server certificate, and optionally one client
certificate per device. A client certificate's common name is its MQTT
identity (Mosquitto ``use_identity_as_username``).

CertificateError (riverguard.errors.RiverguardError): a name or file that cannot be used.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from riverguard.errors import RiverguardError

KeyType = Literal["ec", "rsa"]
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

CA_DAYS = 3650
# The longest validity browsers accept for a server certificate (CA/Browser
# Forum, before 2026 rules shorten it); also fine for MQTT clients.
LEAF_DAYS = 825
RENEW_BEFORE = dt.timedelta(days=30)
# Certificates start a little in the past: a device whose clock lags must not
# find a fresh certificate "not yet valid".
BACKDATE = dt.timedelta(minutes=5)
CA_COMMON_NAME = "Riverguard private CA"
# NAME.crt / NAME.key: a file name, never a path.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_DNS_LABEL = re.compile(r"^(\*|[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)$")


class CertificateError(RiverguardError):
    """A certificate name, host name or file that cannot be used."""


@dataclass(frozen=True)
class Authority:
    certificate: x509.Certificate
    key: PrivateKey
    cert_path: Path


@dataclass(frozen=True)
class Request:
    """One certificate a deployment needs."""

    name: str
    server: bool
    client: bool
    dns: tuple[str, ...] = ()
    ips: tuple[IPAddress, ...] = ()
    # The subject's common name; the file name by default.
    common_name: str | None = None
    what: str = ""


@dataclass(frozen=True)
class Outcome:
    name: str
    action: Literal["made", "kept", "renewed"]
    reason: str
    cert_path: Path
    key_path: Path
    not_after: dt.datetime
    what: str


# --- host names --------------------------------------------------------------


def split_hosts(hosts: Iterable[str]) -> tuple[tuple[str, ...], tuple[IPAddress, ...]]:
    """Host names and addresses, as given on the command line, into DNS and IP SANs."""
    dns: list[str] = []
    ips: list[IPAddress] = []
    for raw in hosts:
        host = raw.strip()
        if not host:
            continue
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            dns.append(_dns_name(host))
        else:
            if address not in ips:
                ips.append(address)
    return tuple(dict.fromkeys(dns)), tuple(ips)


def _dns_name(host: str) -> str:
    name = host.rstrip(".").lower()
    labels = name.split(".")
    if len(name) > 253 or not all(_DNS_LABEL.match(label) for label in labels):
        raise CertificateError(f"not a DNS name or IP address: {host!r}")
    if "*" in labels[1:] or (labels[0] == "*" and len(labels) < 3):
        raise CertificateError(
            f"a wildcard may only be the first of three or more labels: {host!r}"
        )
    return name


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise CertificateError(
            f"certificate name {name!r}: letters, digits, '.', '_' and '-' only (a file name)"
        )
    return name


# --- files -------------------------------------------------------------------


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write through a temporary file and a rename: a reader never sees half a key,
    and a key is never readable by others, not even for a moment."""
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)  # the umask may have narrowed a 0644
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)


def _write_key(path: Path, key: PrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write(path, pem, 0o600)


def _write_cert(path: Path, certificate: x509.Certificate) -> None:
    _write(path, certificate.public_bytes(serialization.Encoding.PEM), 0o644)


def _new_key(key_type: KeyType) -> PrivateKey:
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    return ec.generate_private_key(ec.SECP256R1())


def _load_key(path: Path) -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise CertificateError(f"cannot read the private key {path}: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise CertificateError(f"{path}: only EC and RSA keys are supported")
    return key


def _load_cert(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise CertificateError(f"cannot read the certificate {path}: {exc}") from exc


def _public_der(public: object) -> bytes:
    if not isinstance(public, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        raise CertificateError("only EC and RSA keys are supported")
    return public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _now(now: dt.datetime | None) -> dt.datetime:
    return now if now is not None else dt.datetime.now(dt.UTC)


# --- the authority -----------------------------------------------------------


def load_or_create_ca(
    directory: Path,
    *,
    days: int = CA_DAYS,
    key_type: KeyType = "ec",
    common_name: str = CA_COMMON_NAME,
    new: bool = False,
    now: dt.datetime | None = None,
) -> tuple[Authority, Outcome]:
    """The authority of ``directory``: the one there, or a new one when there is
    none or ``new`` is set (which replaces it)."""
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "ca.crt", directory / "ca.key"
    if not new and (cert_path.exists() or key_path.exists()):
        if not (cert_path.exists() and key_path.exists()):
            raise CertificateError(
                f"{directory} holds only one of ca.crt and ca.key; "
                "restore the other, or ask for a new authority"
            )
        certificate, key = _load_cert(cert_path), _load_key(key_path)
        if _public_der(certificate.public_key()) != _public_der(key.public_key()):
            raise CertificateError(f"{cert_path} and {key_path} do not belong together")
        outcome = Outcome(
            "ca", "kept", "exists", cert_path, key_path, certificate.not_valid_after_utc, "CA"
        )
        return Authority(certificate, key, cert_path), outcome
    if days < 1:
        raise CertificateError("a validity must be at least one day")
    start = _now(now)
    key = _new_key(key_type)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Riverguard"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    public = key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start - BACKDATE)
        .not_valid_after(start + dt.timedelta(days=days))
        # path_length 0: it signs leaf certificates only, never another authority.
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    # Key first: a certificate is never on disk without its key.
    _write_key(key_path, key)
    _write_cert(cert_path, certificate)
    action: Literal["made", "renewed"] = "renewed" if new else "made"
    outcome = Outcome(
        "ca", action, "asked for" if new else "none yet", cert_path, key_path,
        certificate.not_valid_after_utc, "CA",
    )  # fmt: skip
    return Authority(certificate, key, cert_path), outcome


# --- leaf certificates ---------------------------------------------------------


def _usages(request: Request) -> list[x509.ObjectIdentifier]:
    usages = []
    if request.server:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    if request.client:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    return usages


def _signed_by(certificate: x509.Certificate, ca: Authority) -> bool:
    if certificate.issuer != ca.certificate.subject:
        return False
    public = ca.certificate.public_key()
    algorithm = certificate.signature_hash_algorithm
    try:
        if isinstance(public, ec.EllipticCurvePublicKey) and algorithm is not None:
            public.verify(
                certificate.signature, certificate.tbs_certificate_bytes, ec.ECDSA(algorithm)
            )
        elif isinstance(public, rsa.RSAPublicKey) and algorithm is not None:
            public.verify(
                certificate.signature,
                certificate.tbs_certificate_bytes,
                padding.PKCS1v15(),
                algorithm,
            )
        else:
            return False
    except InvalidSignature:
        return False
    return True


_Extension = TypeVar("_Extension", bound=x509.ExtensionType)


def _extension(certificate: x509.Certificate, kind: type[_Extension]) -> _Extension | None:
    try:
        return certificate.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _stale(
    certificate: x509.Certificate, request: Request, ca: Authority, now: dt.datetime
) -> str | None:
    """Why an existing certificate cannot serve ``request`` any more, or None."""
    usage = _extension(certificate, x509.ExtendedKeyUsage)
    names = _extension(certificate, x509.SubjectAlternativeName)
    dns = set(names.get_values_for_type(x509.DNSName)) if names else set()
    ips = set(names.get_values_for_type(x509.IPAddress)) if names else set()
    common_names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    reasons = [
        (not _signed_by(certificate, ca), "signed by another authority"),
        (certificate.not_valid_after_utc - RENEW_BEFORE < now, "expires within 30 days"),
        (usage is None or set(usage) != set(_usages(request)), "another purpose"),
        (dns != set(request.dns) or ips != set(request.ips), "other host names"),
        (
            [request.common_name or request.name] != [cn.value for cn in common_names],
            "another common name",
        ),
    ]
    return next((reason for stale, reason in reasons if stale), None)


def issue(
    ca: Authority,
    directory: Path,
    request: Request,
    *,
    days: int = LEAF_DAYS,
    key_type: KeyType = "ec",
    now: dt.datetime | None = None,
) -> Outcome:
    """``NAME.crt`` and ``NAME.key`` for ``request``: kept while still good, else (re)made."""
    name = _check_name(request.name)
    if name == "ca":
        raise CertificateError("'ca' is the authority's own file name")
    if not (request.server or request.client):
        raise CertificateError(f"{name}: a certificate is for a server, a client or both")
    if request.server and not (request.dns or request.ips):
        raise CertificateError(f"{name}: a server certificate needs a host name or address")
    if days < 1:
        raise CertificateError("a validity must be at least one day")
    start = _now(now)
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    action: Literal["made", "renewed"] = "made"
    reason = "none yet"
    if cert_path.exists() and key_path.exists():
        existing = _load_cert(cert_path)
        stale = _stale(existing, request, ca, start)
        if stale is None:
            return Outcome(
                name, "kept", "still good", cert_path, key_path,
                existing.not_valid_after_utc, request.what,
            )  # fmt: skip
        action, reason = "renewed", stale
    key = _new_key(key_type)
    public = key.public_key()
    common_name = request.common_name or name
    builder = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Riverguard"),
                    x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                ]
            )
        )
        .issuer_name(ca.certificate.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start - BACKDATE)
        # Never beyond the authority: a chain is only as long-lived as its root.
        .not_valid_after(min(start + dt.timedelta(days=days), ca.certificate.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                # RSA key exchange (TLS 1.2 without forward secrecy) encrypts with the key.
                key_encipherment=isinstance(key, rsa.RSAPrivateKey),
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(_usages(request)), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
    )
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in request.dns]
    names += [x509.IPAddress(ip) for ip in request.ips]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    certificate = builder.sign(ca.key, hashes.SHA256())
    _write_key(key_path, key)
    _write_cert(cert_path, certificate)
    return Outcome(
        name, action, reason, cert_path, key_path, certificate.not_valid_after_utc, request.what
    )


# --- a deployment --------------------------------------------------------------


def _safe(part: str) -> str:
    """A site or device id as part of a file name."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", part)


def plan(
    hub_hosts: Sequence[str],
    sites: Sequence[tuple[str, Sequence[str]]],
    *,
    broker_hosts: Sequence[str] = (),
    devices: Sequence[tuple[str, str]] = (),
    clients: Sequence[str] = (),
) -> list[Request]:
    """The certificates of a deployment.

    ``hub_hosts``: the hub machine's names and addresses (its HTTPS; the central
    broker's too unless ``broker_hosts`` are given). ``sites``: (site, the site
    broker's names and addresses; none: no site broker certificate).
    ``devices``: (site, device) pairs that get a client certificate each.
    """
    requests: list[Request] = []
    hub_dns, hub_ips = split_hosts(hub_hosts)
    if hub_dns or hub_ips:
        requests.append(Request("hub-https", True, False, hub_dns, hub_ips, what="hub HTTPS"))
        broker_dns, broker_ips = split_hosts(broker_hosts) if broker_hosts else (hub_dns, hub_ips)
        requests.append(
            Request("broker-central", True, False, broker_dns, broker_ips, what="central broker")
        )
    requests.append(
        Request("hub-mqtt", False, True, common_name="riverguard-hub", what="hub MQTT client")
    )
    for site, hosts in sites:
        dns, ips = split_hosts(hosts)
        if dns or ips:
            requests.append(
                Request(f"broker-{_safe(site)}", True, False, dns, ips, what=f"{site} broker")
            )
        requests.append(
            Request(
                f"edge-{_safe(site)}", False, True, common_name=f"edge-{site}",
                what=f"{site} edge MQTT client",
            )
        )  # fmt: skip
    for site, device in devices:
        requests.append(
            Request(
                f"device-{_safe(site)}-{_safe(device)}", False, True, common_name=device,
                what=f"{site} device",
            )
        )  # fmt: skip
    for client in clients:
        requests.append(Request(_check_name(client), False, True, what="MQTT client"))
    seen: set[str] = set()
    for request in requests:
        if request.name in seen:
            raise CertificateError(f"two certificates would be named {request.name!r}")
        seen.add(request.name)
    return requests


def make_all(
    directory: Path,
    requests: Sequence[Request],
    *,
    days: int = LEAF_DAYS,
    ca_days: int = CA_DAYS,
    key_type: KeyType = "ec",
    new_ca: bool = False,
    now: dt.datetime | None = None,
) -> list[Outcome]:
    """The authority and every requested certificate in ``directory``."""
    ca, outcome = load_or_create_ca(directory, days=ca_days, key_type=key_type, new=new_ca, now=now)
    outcomes = [outcome]
    for request in requests:
        outcomes.append(issue(ca, directory, request, days=days, key_type=key_type, now=now))
    return outcomes
