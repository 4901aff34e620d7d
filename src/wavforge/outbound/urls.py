"""The egress guard: which URLs wavforge will call, and calling them only where it checked.

A URL passes when its shape is sound (http/https, at most 2048 characters, a host, no
userinfo) and every address its host resolves to is public (see ``addresses``). The guard
runs at submission (a 400 for the client) and again right before every connection, and the
connection is made to the address that was checked — the host name travels only in the
``Host`` header and TLS SNI — so a DNS answer that changes in between (rebinding) cannot
redirect the request inward.
"""

from __future__ import annotations

import functools
import socket
import ssl
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

import anyio
import anyio.to_thread
import httpx

from wavforge.errors import InvalidRequest, TooLarge
from wavforge.outbound.addresses import IPAddress, forbidden_reason, literal_address

__all__ = [
    "MAX_URL_LENGTH",
    "PEER_ERRORS",
    "Target",
    "Unresolved",
    "check_url",
    "needs_dns",
    "pinned_stream",
    "resolve_target",
    "resolve_target_async",
]

MAX_URL_LENGTH = 2048
DNS_THREADS = 16
# What httpx raises for a peer's fault: its transport errors, and a malformed URL or host
# name in what the peer sent (httpx reads a redirect's Location even when it does not follow
# it, and its IDNA decoding raises UnicodeError).
PEER_ERRORS: tuple[type[Exception], ...] = (httpx.HTTPError, httpx.InvalidURL, UnicodeError)
SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Target:
    """A URL that passed the guard, with the address to connect to."""

    url: str
    parts: SplitResult
    host: str
    port: int
    address: IPAddress

    def connect_url(self) -> str:
        """The URL with its host replaced by the checked address."""
        literal = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        return urlunsplit(self.parts._replace(netloc=f"{literal}:{self.port}"))

    def host_header(self) -> str:
        default = DEFAULT_PORTS[self.parts.scheme.lower()]
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if self.port == default else f"{name}:{self.port}"


def check_url(url: str, *, what: str, allow_private: bool, unresolved_ok: bool = False) -> str:
    """Return ``url`` if wavforge may call it, else raise the contract's 400 or 413.

    With ``unresolved_ok`` a host name that does not resolve passes: what is refused then is
    only what is provably bad (shape, credentials, an internal address by literal or by DNS
    answer). A callback is checked again before every attempt, so a name that never
    resolves fails its deliveries, each recorded, and not the submission — as the vendors
    accept any well-formed callback URL, and clients send fixed placeholders.
    """
    try:
        resolve_target(url, what=what, allow_private=allow_private)
    except Unresolved:
        if not unresolved_ok:
            raise
    return url


def needs_dns(url: str) -> bool:
    """Whether checking ``url`` would ask DNS (a host name, not an address), which may block."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return False  # refused by its shape before any lookup
    return bool(host) and literal_address(host or "") is None


def resolve_target(url: str, *, what: str, allow_private: bool) -> Target:
    """Check ``url`` and pick the address to connect to; every resolved address must pass."""
    parts = _shape(url, what)
    host = parts.hostname or ""
    scheme = parts.scheme.lower()
    port = parts.port or DEFAULT_PORTS[scheme]
    addresses = _resolve(host, port, what)
    if not allow_private:
        for address in addresses:
            reason = forbidden_reason(address)
            if reason:
                raise InvalidRequest(f"{what} points to a private or internal address ({reason})")
    return Target(url=url, parts=parts, host=host, port=port, address=addresses[0])


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One verifying TLS context for every outbound client: building one costs ~25 ms of CPU
    (it parses the CA bundle), which a client per callback would pay each time."""
    return httpx.create_ssl_context()


def outbound_client(timeout: float | httpx.Timeout) -> httpx.AsyncClient:
    """A client for calls to URLs users gave: no proxies from the environment, no redirects.

    Asynchronous, so a call can be given a total deadline (``anyio.fail_after``) that ends
    it wherever it is: httpx's own timeouts bound each read, and a peer that sends one byte
    every few seconds never trips them."""
    return httpx.AsyncClient(
        timeout=timeout, follow_redirects=False, trust_env=False, verify=tls_context()
    )


def pinned_stream(
    client: httpx.AsyncClient, method: str, target: Target, **kwargs: Any
) -> AbstractAsyncContextManager[httpx.Response]:
    """``client.stream`` to the checked address, with the original host in Host and SNI."""
    headers = {**kwargs.pop("headers", {}), "Host": target.host_header()}
    extensions = {"sni_hostname": target.host} if target.parts.scheme.lower() == "https" else {}
    return client.stream(
        method, target.connect_url(), headers=headers, extensions=extensions, **kwargs
    )


async def resolve_target_async(url: str, *, what: str, allow_private: bool) -> Target:
    """:func:`resolve_target` for an event loop: a DNS lookup runs in a thread of its own
    small pool (never the one the API's database work uses), and a deadline around the
    caller abandons it."""
    check = functools.partial(resolve_target, url, what=what, allow_private=allow_private)
    if not needs_dns(url):
        return check()
    return await anyio.to_thread.run_sync(check, abandon_on_cancel=True, limiter=_dns_slots())


@functools.cache
def _dns_slots() -> anyio.CapacityLimiter:
    return anyio.CapacityLimiter(DNS_THREADS)


def _shape(url: str, what: str) -> SplitResult:
    if len(url) > MAX_URL_LENGTH:
        raise TooLarge(f"{what} is longer than {MAX_URL_LENGTH} characters")
    if any(ord(char) < 0x21 or ord(char) == 0x7F for char in url):
        raise InvalidRequest(f"{what} must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise InvalidRequest(f"{what} is not a valid URL") from None
    if parts.scheme.lower() not in SCHEMES:
        raise InvalidRequest(f"{what} must use http or https")
    if not parts.hostname:
        raise InvalidRequest(f"{what} has no host")
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        raise InvalidRequest(f"{what} must not contain credentials")
    return parts


class Unresolved(InvalidRequest):
    """The URL's host name has no address (the name does not exist, or DNS failed)."""


def _resolve(host: str, port: int, what: str) -> list[IPAddress]:
    """The addresses ``host`` stands for: itself when numeric (any spelling), else DNS."""
    literal = literal_address(host)
    if literal is not None:
        return [literal]
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise Unresolved(f"{what}: its host {host!r} could not be resolved") from None
    found: list[IPAddress] = []
    for *_, sockaddr in answers:
        address = literal_address(str(sockaddr[0]))
        if address is not None and address not in found:
            found.append(address)
    if not found:
        raise Unresolved(f"{what}: its host {host!r} could not be resolved")
    return found
