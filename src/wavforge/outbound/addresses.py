"""Which IP addresses wavforge may connect to on a user's behalf, and how hosts spell them.

A callback or import URL is chosen by the client, so it must never reach the machine's own
services, the local network or a cloud metadata endpoint. Attackers spell those addresses in
every form a resolver accepts — ``2130706433``, ``0x7f.1``, ``0177.0.0.1``, ``[::ffff:7f00:1]``,
a NAT64, 6to4 or ISATAP address wrapping a private IPv4 — so a host is first normalised to
the address it denotes, and an IPv6 address that carries an IPv4 inside is judged by that
IPv4 as well.

The networks are listed here rather than taken from ``ipaddress.is_global``, whose tables
change between Python versions; the table-driven tests pin the behaviour.
"""

from __future__ import annotations

import ipaddress
import re
import socket

__all__ = ["IPAddress", "forbidden_reason", "literal_address"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

_FORBIDDEN_V4: tuple[tuple[ipaddress.IPv4Network, str], ...] = (
    (_V4("0.0.0.0/8"), "unspecified"),
    (_V4("10.0.0.0/8"), "private"),
    (_V4("100.64.0.0/10"), "shared (CGNAT)"),
    (_V4("127.0.0.0/8"), "loopback"),
    (_V4("169.254.0.0/16"), "link-local"),
    (_V4("172.16.0.0/12"), "private"),
    (_V4("192.0.0.0/24"), "reserved"),
    (_V4("192.0.2.0/24"), "documentation"),
    (_V4("192.88.99.0/24"), "reserved"),
    (_V4("192.168.0.0/16"), "private"),
    (_V4("198.18.0.0/15"), "benchmarking"),
    (_V4("198.51.100.0/24"), "documentation"),
    (_V4("203.0.113.0/24"), "documentation"),
    (_V4("224.0.0.0/4"), "multicast"),
    (_V4("240.0.0.0/4"), "reserved"),
)
_FORBIDDEN_V6: tuple[tuple[ipaddress.IPv6Network, str], ...] = (
    (_V6("::/128"), "unspecified"),
    (_V6("::1/128"), "loopback"),
    (_V6("100::/64"), "discard"),
    (_V6("2001:db8::/32"), "documentation"),
    (_V6("fc00::/7"), "unique local"),
    (_V6("fe80::/10"), "link-local"),
    (_V6("fec0::/10"), "site-local"),
    (_V6("ff00::/8"), "multicast"),
)
# IPv6 prefixes whose low 32 bits are an IPv4 address (RFC 4291 mapped and compatible,
# RFC 2765 translated, RFC 6052 NAT64 well-known and local-use).
_EMBEDS_V4_LOW = (
    _V6("::ffff:0:0/96"),
    _V6("::ffff:0:0:0/96"),
    _V6("::/96"),
    _V6("64:ff9b::/96"),
    _V6("64:ff9b:1::/48"),
)
# ISATAP (RFC 5214): under any prefix, an interface id of 0000:5efe or 0200:5efe (the
# universal/local bit set) followed by the IPv4 address.
_ISATAP_IDS = (0x00005EFE, 0x02005EFE)
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}\.?$", re.IGNORECASE)


def literal_address(host: str) -> IPAddress | None:
    """The address ``host`` spells without DNS (IPv6, or IPv4 in any inet_aton form), or None.

    ``inet_aton`` is what resolvers use for numeric hosts, so ``127.1``, ``2130706433`` and
    ``0x7f.0.0.1`` all come out as 127.0.0.1 here exactly as they would on the wire.
    """
    text = host.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if _NUMERIC_HOST.match(text):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(text.rstrip(".")))
        except OSError:
            return None
    return None


def forbidden_reason(address: IPAddress) -> str | None:
    """Why wavforge must not connect to ``address`` (e.g. "loopback"), or None if it may."""
    if isinstance(address, ipaddress.IPv4Address):
        return _match(address, _FORBIDDEN_V4)
    reason = _match(address, _FORBIDDEN_V6)
    if reason:
        return reason
    for embedded in _embedded_v4(address):
        inner = _match(embedded, _FORBIDDEN_V4)
        if inner:
            return f"{inner} (inside an IPv6 address)"
    return None


def _match(address: IPAddress, table: tuple[tuple[object, str], ...]) -> str | None:
    for network, reason in table:
        if address in network:  # type: ignore[operator]
            return reason
    return None


def _embedded_v4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """Every IPv4 address an IPv6 address carries: mapped, translated, compatible, NAT64,
    ISATAP, 6to4, Teredo."""
    found: list[ipaddress.IPv4Address] = []
    low = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if any(address in prefix for prefix in _EMBEDS_V4_LOW):
        found.append(low)
    if (int(address) >> 32) & 0xFFFFFFFF in _ISATAP_IDS:
        found.append(low)
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)  # (server, client)
    return found
