"""The egress guard, table-driven: hostile spellings of internal addresses, all refused.

No test here sends a packet anywhere but loopback: numeric hosts are judged without DNS, and
the guard refuses before it connects.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import anyio
import httpx
import pytest

from wavforge.errors import InvalidRequest, TooLarge
from wavforge.outbound.addresses import literal_address
from wavforge.outbound.urls import check_url, pinned_stream, resolve_target

HOSTILE = [
    # IPv4 loopback, in every spelling inet_aton accepts
    "http://127.0.0.1/",
    "http://127.1/",
    "http://127.0.1/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0x7f.0x0.0x0.0x1/",
    "http://0177.0.0.1/",
    "http://0177.1/",
    "http://017700000001/",
    "http://127.0.0.1./",
    "http://127.255.255.254:8080/",
    # private, shared, link-local and the metadata endpoint
    "http://10.0.0.1/",
    "http://012.1.2.3/",
    "http://172.16.0.1/",
    "http://172.31.255.255/",
    "http://192.168.1.1/",
    "http://0xc0a80101/",
    "http://3232235777/",
    "http://100.64.0.1/",
    "http://100.127.255.254/",
    "http://169.254.169.254/latest/meta-data/",
    "http://0xa9fea9fe/",
    "http://2852039166/",
    # unspecified, multicast, reserved, broadcast, documentation, benchmarking
    "http://0.0.0.0/",
    "http://0/",
    "http://224.0.0.1/",
    "http://239.255.255.250/",
    "http://240.0.0.1/",
    "http://255.255.255.255/",
    "http://192.0.2.10/",
    "http://198.18.0.1/",
    # IPv6 loopback, unspecified, unique local, link-local, site-local, multicast
    "http://[::1]/",
    "http://[0:0:0:0:0:0:0:1]/",
    "http://[::]/",
    "http://[fc00::1]/",
    "http://[fd12:3456:789a::1]/",
    "http://[fe80::1]/",
    "http://[fe80::1%25eth0]/",
    "http://[fec0::1]/",
    "http://[ff02::1]/",
    # IPv6 forms that carry an internal IPv4
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[::127.0.0.1]/",
    "http://[::ffff:10.0.0.1]/",
    "http://[64:ff9b::127.0.0.1]/",
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://[64:ff9b:1::10.0.0.1]/",
    "http://[2002:7f00:1::]/",
    "http://[2002:a9fe:a9fe::1]/",
    "http://[2001:0:7f00:1::1]/",
    "https://[::ffff:192.168.0.1]:8443/",
    # IPv4-translated (RFC 2765) and ISATAP (RFC 5214, under any prefix)
    "http://[::ffff:0:127.0.0.1]/",
    "http://[::ffff:0:a00:1]/",
    "http://[2606:4700::5efe:10.0.0.1]/",
    "http://[2606:4700::200:5efe:169.254.169.254]/",
]

MALFORMED = [
    ("ftp://example.com/", "http or https"),
    ("file:///etc/passwd", "http or https"),
    ("gopher://127.0.0.1/", "http or https"),
    ("http://user:pw@example.com/", "credentials"),
    ("http://user@example.com/", "credentials"),
    ("http:///nohost", "no host"),
    ("http://example.com:99999/", "not a valid URL"),
    ("http://exa mple.com/", "spaces"),
    ("http://example.com/\r\nX-Injected: 1", "control characters"),
]

PUBLIC = [
    "http://8.8.8.8/",
    "https://1.1.1.1:8443/hook",
    "http://[2606:4700:4700::1111]/",
    "http://[::ffff:8.8.8.8]/",
    "http://[64:ff9b::808:808]/",
    "http://134744072/",  # 8.8.8.8 as one number: still public, and judged as such
]


@pytest.mark.parametrize("url", HOSTILE)
def test_internal_addresses_are_refused(url: str) -> None:
    with pytest.raises(InvalidRequest, match="private or internal"):
        check_url(url, what="callback URL", allow_private=False)


def test_the_table_is_large_enough() -> None:
    assert len(HOSTILE) >= 40


@pytest.mark.parametrize(("url", "words"), MALFORMED)
def test_malformed_urls_are_refused_whatever_the_setting(url: str, words: str) -> None:
    for allow_private in (False, True):
        with pytest.raises(InvalidRequest, match=words):
            check_url(url, what="callback URL", allow_private=allow_private)


def test_over_long_url_is_413() -> None:
    with pytest.raises(TooLarge):
        check_url("http://8.8.8.8/" + "a" * 2048, what="callback URL", allow_private=False)


@pytest.mark.parametrize("url", PUBLIC)
def test_public_addresses_pass_without_any_traffic(url: str) -> None:
    assert check_url(url, what="callback URL", allow_private=False) == url


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("10.1", "10.0.0.1"),
        ("[::ffff:7f00:1]", "::ffff:7f00:1"),
        ("example.com", None),
        ("1.2.3.4.example", None),
        ("0x", None),
    ],
)
def test_numeric_hosts_are_normalised_before_any_lookup(host: str, address: str | None) -> None:
    found = literal_address(host)
    assert (str(found) if found else None) == address


def test_a_hostname_that_resolves_to_loopback_is_refused() -> None:
    assert any(info[4][0] in ("127.0.0.1", "::1") for info in socket.getaddrinfo("localhost", 80))
    with pytest.raises(InvalidRequest, match=r"private or internal address \(loopback\)"):
        check_url("http://localhost:9/cb", what="callback URL", allow_private=False)


@pytest.fixture
def host_echo() -> Iterator[tuple[int, list[str]]]:
    """A loopback server that records the Host header of each request."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Host", ""))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], seen
    server.shutdown()
    server.server_close()


def test_the_connection_goes_to_the_checked_address(
    host_echo: tuple[int, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Resolve once, connect to that address: the name is never looked up again, so a DNS
    answer that changes after the check (rebinding) cannot redirect the request."""
    port, seen = host_echo
    real = socket.getaddrinfo
    names: list[str] = []

    def fake(host: str, *args: object, **kwargs: object) -> object:
        if literal_address(str(host)) is not None:
            return real(host, *args, **kwargs)  # type: ignore[arg-type]
        names.append(str(host))
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    target = resolve_target(
        f"http://hooks.example:{port}/cb", what="callback URL", allow_private=True
    )
    assert target.connect_url() == f"http://127.0.0.1:{port}/cb"

    async def fetch() -> int:
        async with (
            httpx.AsyncClient(trust_env=False) as client,
            pinned_stream(client, "GET", target) as response,
        ):
            return response.status_code

    threads = threading.active_count()
    assert anyio.run(fetch) == 204
    # anyio's lookup thread idles 10 s before it leaves; later tests in this process need
    # it gone (the engine splits long MP3s only where no other thread runs).
    deadline = time.monotonic() + 15
    while threading.active_count() > threads and time.monotonic() < deadline:
        time.sleep(0.1)
    assert names == ["hooks.example"]  # looked up by the guard only
    assert seen == [f"hooks.example:{port}"]  # and the server saw the real host name
