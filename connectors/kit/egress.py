"""The egress policy: where xkit may send a request.

Every outbound connection — provider calls, passthrough, token endpoints, webhook deliveries — is opened by
`EgressPolicy`. It resolves the host once, refuses it when any address it resolves to is not a public unicast
address (loopback, private, shared, link-local, multicast, reserved, IPv4 embedded in IPv6...), and connects to
the address it checked: a DNS answer that changes between the check and the connect cannot move the
connection. TLS (SNI, certificate) and the Host header keep the name.

An operator allowlist lets named internal targets through: host names (`sandbox.internal`), `host:port`
pairs and CIDRs (`10.1.0.0/16`). Providers are further held to the host patterns their connector declares
(`*.my.salesforce.com`), over https, unless the operator allowlisted the target.

A refused target, a refused connection, a closed port and a timeout all fail the same way, with one message,
so nothing the caller sees tells one internal port from another.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit

import anyio
import httpcore2
import httpx2
from httpcore2 import AsyncNetworkBackend, AsyncNetworkStream

log = logging.getLogger(__name__)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
# (host, port) -> the addresses the host resolves to, as text. Injectable: tests stand in for DNS with it.
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

UNREACHABLE = "the target could not be reached"
DEFAULT_PORTS = {"http": 80, "https": 443}
# The well-known NAT64 prefix (RFC 6052): the last 32 bits are the IPv4 address really reached.
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
SHARED = ipaddress.IPv4Network("100.64.0.0/10")
# RFC 6761: these names mean this machine, whatever a resolver says.
LOCAL_NAMES = ("localhost", ".localhost", "localhost.localdomain")


class EgressRefused(Exception):
    """The policy refuses this target; the message says why (for input errors and the operator's log)."""


class Unresolvable(EgressRefused):
    """The name has no address (now)."""


class Unreachable(httpcore2.ConnectError):
    """Every failure to open a connection, whatever its cause: the HTTP client reports it as a ConnectError."""

    def __init__(self) -> None:
        super().__init__(UNREACHABLE)


async def system_resolver(host: str, port: int) -> list[str]:
    answers = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(sockaddr[0]) for *_, sockaddr in answers]


def normalize_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def literal_address(host: str) -> Address | None:
    """The address a host names by itself, in any notation a resolver accepts: `127.0.0.1`, `[::1]`, and the
    old IPv4 forms `2130706433`, `0x7f000001`, `0177.0.0.1`, `127.1`."""
    host = normalize_host(host)
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    if not host or any(c not in "0123456789abcdefx." for c in host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def forbidden_reason(address: Address) -> str | None:
    """Why an address is no place to send a request, or None for a public unicast address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return "an IPv4-mapped IPv6 address"
        if address in NAT64:
            return forbidden_reason(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if address.sixtofour is not None and forbidden_reason(address.sixtofour):
            return "a 6to4 address embedding a non-public IPv4 address"
        if address.is_site_local:
            return "a site-local address"
    checks = (
        (address.is_unspecified, "an unspecified address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (address.is_reserved, "a reserved address"),
        (address.is_private, "a private address"),
        (address in SHARED, "a shared (carrier-grade NAT) address"),
        (not address.is_global, "not a public address"),
    )
    for refused, reason in checks:
        if refused:
            return reason
    return None


@dataclass(frozen=True)
class HostPatterns:
    """Host names a provider serves from: exact names, or `*.example.com` for any name below it."""

    patterns: tuple[str, ...]

    def matches(self, host: str) -> bool:
        host = normalize_host(host)
        for pattern in self.patterns:
            if pattern.startswith("*."):
                if host.endswith(pattern[1:]) and len(host) > len(pattern) - 1:
                    return True
            elif host == pattern:
                return True
        return False


@dataclass(frozen=True)
class ProviderHosts:
    """Where a provider's API (base URLs, an instance URL from a token) and its OAuth endpoints may be."""

    api: HostPatterns
    oauth: HostPatterns


def _host_key(host: str) -> str:
    """One spelling per host: an address in its canonical form, a name in lower case."""
    address = literal_address(host)
    return str(address) if address is not None else normalize_host(host)


@dataclass(frozen=True)
class _Allowlist:
    hosts: frozenset[tuple[str, int | None]]  # (host, port), port None for any
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

    @classmethod
    def parse(cls, entries: Iterable[str]) -> _Allowlist:
        hosts: set[tuple[str, int | None]] = set()
        networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in (e.strip() for e in entries):
            if not entry:
                continue
            try:
                host, port = _host_and_port(entry)
                address = literal_address(host)
                if "/" in host:
                    networks.append(ipaddress.ip_network(host, strict=False))
                elif address is not None and port is None:
                    networks.append(ipaddress.ip_network(address))
                else:
                    hosts.add((_host_key(host), port))
            except ValueError:
                raise ValueError(f"egress allowlist entry {entry!r} is not a host, host:port or CIDR") from None
        return cls(frozenset(hosts), tuple(networks))

    def names(self, host: str, port: int) -> bool:
        key = _host_key(host)
        return (key, None) in self.hosts or (key, port) in self.hosts

    def covers(self, address: Address) -> bool:
        return any(address in network for network in self.networks)


def _host_and_port(entry: str) -> tuple[str, int | None]:
    """`host`, `host:port`, `[v6]:port`, a bare IPv6 address or a CIDR."""
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else None
    if entry.count(":") == 1:
        host, port = entry.split(":")
        return host, int(port)
    return entry, None


class EgressPolicy:
    """Checks every outbound target and opens the connection to the address it checked."""

    def __init__(self, allow: Iterable[str] = (), *, resolver: Resolver = system_resolver) -> None:
        self._allow = _Allowlist.parse(allow)
        self._resolver = resolver
        self._ssl_context: ssl.SSLContext | None = None

    def allowlisted(self, host: str, port: int) -> bool:
        """Named by the operator: by name (or name and port), or an address literal inside an allowed CIDR."""
        if self._allow.names(host, port):
            return True
        address = literal_address(host)
        return address is not None and self._allow.covers(address)

    def refusal(self, address: Address) -> str | None:
        return None if self._allow.covers(address) else forbidden_reason(address)

    async def addresses(self, host: str, port: int) -> list[Address]:
        """The addresses to connect to, each checked; refused when any of them is forbidden."""
        literal = literal_address(host)
        if literal is not None:
            found = [literal]
        else:
            if self._names_this_machine(host) and not self._allow.names(host, port):
                raise EgressRefused(f"{host} names this machine")
            try:
                answers = await self._resolver(normalize_host(host), port)
            except (OSError, ValueError):  # ValueError: a name IDNA cannot encode
                raise Unresolvable(f"{host} does not resolve") from None
            found = [ipaddress.ip_address(a.split("%", 1)[0]) for a in answers]
            if not found:
                raise Unresolvable(f"{host} does not resolve")
        if self._allow.names(host, port):
            return found
        for address in found:
            reason = self.refusal(address)
            if reason is None:
                continue
            if literal is None:
                raise EgressRefused(f"{host} resolves to {address}, {reason}")
            spelled = "" if normalize_host(host) == str(address) else f" ({address})"
            raise EgressRefused(f"{host}{spelled} is {reason}")
        return found

    @staticmethod
    def _names_this_machine(host: str) -> bool:
        host = normalize_host(host)
        return host == LOCAL_NAMES[0] or host.endswith(LOCAL_NAMES[1]) or host == LOCAL_NAMES[2]

    def check_provider_url(self, url: str, hosts: HostPatterns) -> None:
        """A provider URL: https on one of the provider's hosts, unless the operator allowlisted the target."""
        parts = _split(url)
        host, port = parts.hostname or "", _port(parts)
        if self.allowlisted(host, port):
            return
        if parts.scheme != "https":
            raise EgressRefused("must be an https URL")
        if not hosts.matches(host):
            raise EgressRefused(f"{host} is not one of the provider's hosts ({', '.join(hosts.patterns)})")

    async def check_destination(self, url: str) -> None:
        """A URL anyone may name (a webhook destination): refused when it points inside. A name that does not
        resolve now passes; it is checked again on every connection."""
        parts = _split(url)
        host, port = parts.hostname or "", _port(parts)
        with contextlib.suppress(Unresolvable):
            await self.addresses(host, port)

    # -- the HTTP clients that go through the policy

    def transport(self, limits: httpx2.Limits | None = None) -> httpx2.AsyncHTTPTransport:
        return _PolicedTransport(self, limits or httpx2.Limits())

    def client_options(self, limits: httpx2.Limits | None = None) -> dict[str, Any]:
        """Keyword arguments for an httpx2 client (or authlib's, which passes them on): the policed transport
        and no proxies from the environment, which would connect on the policy's behalf."""
        return {"transport": self.transport(limits), "trust_env": False}

    def client(self, *, limits: httpx2.Limits | None = None, **options: Any) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(**self.client_options(limits), **options)

    @property
    def ssl_context(self) -> ssl.SSLContext:
        # Built once: loading the CA bundle for every token request would cost more than the request.
        if self._ssl_context is None:
            self._ssl_context = httpx2.create_ssl_context(trust_env=False)
        return self._ssl_context


def _split(url: str) -> SplitResult:
    parts = urlsplit(url.strip())
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise EgressRefused("must be an absolute http(s) URL")
    try:
        parts.port  # noqa: B018 - a port out of range raises here
    except ValueError:
        raise EgressRefused("has an invalid port") from None
    return parts


def _port(parts: SplitResult) -> int:
    return int(parts.port or DEFAULT_PORTS[parts.scheme])


class _PinnedBackend(AsyncNetworkBackend):
    """Opens each TCP connection to an address the policy checked, never to a fresh resolution of the name."""

    def __init__(self, policy: EgressPolicy) -> None:
        self._policy = policy
        self._inner = httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> AsyncNetworkStream:
        try:
            with anyio.fail_after(timeout):
                addresses = await self._policy.addresses(host, port)
                # Each address but the last gets its share of the time, so one that never answers (an IPv6
                # route that drops packets) leaves the others their chance.
                share = timeout / len(addresses) if timeout else None
                for address in addresses[:-1]:
                    with anyio.move_on_after(share):
                        try:
                            return await self._inner.connect_tcp(
                                str(address), port, local_address=local_address, socket_options=socket_options
                            )
                        except (httpcore2.ConnectError, httpcore2.ConnectTimeout):
                            pass
                return await self._inner.connect_tcp(
                    str(addresses[-1]), port, local_address=local_address, socket_options=socket_options
                )
        except EgressRefused as refused:
            log.warning("egress refused: %s (port %d)", refused, port)
            raise Unreachable() from None
        except Exception:
            # Whatever stopped it (refused, reset, timed out, TLS-less garbage), the caller learns only this.
            log.debug("could not connect to %s port %d", host, port, exc_info=True)
            raise Unreachable() from None

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> AsyncNetworkStream:
        raise Unreachable()

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _PolicedTransport(httpx2.AsyncHTTPTransport):
    """httpx2's transport over a connection pool whose every connection the policy opens.

    httpx2 (2.16) builds its pool inside the transport with no way to hand it a network backend, so the pool
    is replaced after construction; pyproject pins the minor version and tests/security/test_egress.py
    proves the connections go through the policy.
    """

    def __init__(self, policy: EgressPolicy, limits: httpx2.Limits) -> None:
        super().__init__(verify=policy.ssl_context, trust_env=False, limits=limits)
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=policy.ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_PinnedBackend(policy),
        )
