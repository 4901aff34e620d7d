"""Rules for URLs wavforge will call: shape, scheme, length, and where the host points.

The address check here resolves the host and refuses internal addresses before connecting.
It does not yet pin the connection to the checked address (a DNS answer that changes between
check and connect is not caught); that, and the IPv6 transition forms, come with the full
egress guard of the signed-webhooks work.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from wavforge.errors import InvalidRequest, TooLarge

MAX_URL_LENGTH = 2048
SCHEMES = ("http", "https")


def check_url(url: str, *, what: str, allow_private: bool) -> str:
    """Return ``url`` if wavforge may call it, else raise the contract's 400 or 413."""
    if len(url) > MAX_URL_LENGTH:
        raise TooLarge(f"{what} is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise InvalidRequest(f"{what} is not a valid URL") from None
    if parts.scheme.lower() not in SCHEMES:
        raise InvalidRequest(f"{what} must use http or https")
    if not parts.hostname:
        raise InvalidRequest(f"{what} has no host")
    if parts.username is not None or parts.password is not None:
        raise InvalidRequest(f"{what} must not contain credentials")
    if not allow_private:
        _refuse_internal(parts.hostname, parts.port or 443, what)
    return url


def _refuse_internal(host: str, port: int, what: str) -> None:
    try:
        answers = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        raise InvalidRequest(f"{what}: host {host!r} could not be resolved") from None
    for answer in answers:
        address = ipaddress.ip_address(str(answer[4][0]).split("%")[0])
        if not _is_public(address):
            raise InvalidRequest(f"{what} points to a private or internal address")


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast
