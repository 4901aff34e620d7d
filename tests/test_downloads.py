"""Signed download links: bare GETs work, any alteration is refused, ranges are served."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from conftest import import_file


@pytest.fixture
def link(api: httpx.Client, mp3: Path) -> str:
    return str(import_file(api, mp3)["tracks"][0]["audioUrl"])


def altered(url: str, **query: str) -> str:
    parts = urlsplit(url)
    params = {k: v[0] for k, v in parse_qs(parts.query).items()} | query
    return urlunsplit(parts._replace(query=urlencode(params)))


def test_a_bare_get_downloads_with_length_and_type(link: str, mp3: Path) -> None:
    response = httpx.get(link)
    assert response.status_code == 200
    assert response.headers["content-type"] == "audio/mpeg"
    assert int(response.headers["content-length"]) == mp3.stat().st_size
    assert response.headers["accept-ranges"] == "bytes"
    assert 'filename="Song_Title.mp3"' in response.headers["content-disposition"]


@pytest.mark.parametrize(
    "tamper",
    [
        lambda url: altered(url, signature="A" * 43),
        lambda url: altered(url, expires=str(int(parse_qs(urlsplit(url).query)["expires"][0]) + 1)),
        lambda url: url.replace("/files/source/", "/files/wav/"),
        lambda url: url.replace("Song_Title.mp3", "Other.mp3"),
        lambda url: url.split("?")[0],
        lambda url: altered(url, expires="soon"),
    ],
)
def test_an_altered_link_is_forbidden(link: str, tamper) -> None:
    response = httpx.get(tamper(link))
    assert response.status_code == 403
    assert response.json()["code"] == 403


def test_ranges_and_head(link: str, mp3: Path) -> None:
    content = mp3.read_bytes()
    part = httpx.get(link, headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == content[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(content)}"
    tail = httpx.get(link, headers={"Range": "bytes=-5"})
    assert tail.status_code == 206 and tail.content == content[-5:]
    assert httpx.get(link, headers={"Range": f"bytes={len(content)}-"}).status_code == 416
    head = httpx.head(link)
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == len(content)
