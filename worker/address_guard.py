"""Which URLs the worker may fetch: http(s) only, never a private address unless allowed.

The host is resolved here, every address it resolves to is checked, and the fetcher then
connects to the checked address (so a DNS answer that changes between check and connect
cannot smuggle in a private address). Private, loopback, link-local, multicast, reserved
and unspecified ranges (IPv4 and IPv6, IPv4-mapped included) are refused unless they fall
in an allow-listed network (e.g. ``127.0.0.0/8`` for tests and the demo).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class FetchRefused(Exception):
    """The URL may not be fetched. ``reason`` is a short code for metrics."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # path + query, at least "/"


@dataclass
class AddressGuard:
    allow_networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = field(
        default_factory=list
    )

    @classmethod
    def from_strings(cls, networks: Iterable[str]) -> AddressGuard:
        return cls([ipaddress.ip_network(n, strict=False) for n in networks])

    def parse(self, url: str) -> Target:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise FetchRefused("bad_url", str(exc)) from exc
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise FetchRefused("scheme", scheme or "(none)")
        if parts.username or parts.password:
            raise FetchRefused("bad_url", "credentials in URL")
        host = (parts.hostname or "").rstrip(".")
        if not host:
            raise FetchRefused("bad_url", "no host")
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        return Target(scheme, host, port or (443 if scheme == "https" else 80), path)

    def allowed(self, addr: IPAddress) -> bool:
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        if any(addr in net for net in self.allow_networks):
            return True
        return addr.is_global and not (
            addr.is_private
            or addr.is_loopback
            or addr.is_link_local
            or addr.is_multicast
            or addr.is_reserved
            or addr.is_unspecified
        )

    async def resolve(self, target: Target) -> list[IPAddress]:
        """Every address of the host, all checked; raises FetchRefused."""
        try:
            literal = ipaddress.ip_address(target.host.strip("[]"))
            addrs = [literal]
        except ValueError:
            loop = asyncio.get_running_loop()
            try:
                infos = await loop.getaddrinfo(
                    target.host, target.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
                )
            except (socket.gaierror, UnicodeError) as exc:
                raise FetchRefused("dns", str(exc)) from exc
            addrs = list(dict.fromkeys(ipaddress.ip_address(i[4][0]) for i in infos))
        if not addrs:
            raise FetchRefused("dns", "no address")
        bad = [a for a in addrs if not self.allowed(a)]
        if bad:
            raise FetchRefused("private_address", f"{target.host} -> {bad[0]}")
        return addrs
