"""What one ordinary key can send to break a request: each answers its 4xx in the envelope,
and a real server error is logged once. On loopback, against a real server, both modes."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import Server, assert_envelope

GENERATE = "/api/v1/wav/generate"
IMPORT = "/api/v1/music/import"


def server_log(server: Server) -> list[dict[str, Any]]:
    path = server.data_dir.parent / f"serve-{server.port}.log"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def tracebacks(server: Server) -> int:
    return sum("Traceback" in str(entry.get("exc_info", "")) for entry in server_log(server))


def test_a_download_link_with_a_non_ascii_digit_is_403(api: httpx.Client) -> None:
    """``"²".isdigit()`` is true, yet ``int("²")`` fails: it must not reach it."""
    link = "/files/wav/abc/x.wav?expires=%C2%B2&signature=x"
    assert_envelope(api.get(link), 403)


def test_half_a_surrogate_pair_in_an_id_is_400(api: httpx.Client) -> None:
    body = b'{"taskId": "\\ud800", "callBackUrl": "https://example.com/cb"}'
    response = api.post(GENERATE, content=body, headers={"content-type": "application/json"})
    assert "Unicode" in assert_envelope(response, 400)["msg"]
    unified = api.post(
        "/api/generate/submit",
        content=b'{"model": "convert-to-wav", "input": {"audio_id": "\\udfff"}}',
        headers={"content-type": "application/json"},
    )
    assert unified.status_code == 400 and unified.json()["code"] == 400


@pytest.mark.parametrize("depth", [500, 900, 960, 990, 1000, 1100, 5000, 100_000])
def test_deeply_nested_json_with_an_idempotency_key_is_refused_or_run(
    api: httpx.Client, depth: int
) -> None:
    """Deep enough to break a recursive walk somewhere: never a 500."""
    nested = "[" * depth + "]" * depth
    body = f'{{"audioId": "x", "callBackUrl": "https://example.com/cb", "deep": {nested}}}'
    response = api.post(
        GENERATE,
        content=body.encode(),
        headers={"content-type": "application/json", "Idempotency-Key": f"deep-{depth}"},
    )
    assert response.status_code in (400, 404), response.text
    assert response.json()["code"] == response.status_code


# Locations that are no URL: a bad port, an A-label that is not Punycode (httpx's IDNA
# decoding raises UnicodeError reading it, even when it does not follow the redirect).
BAD_LOCATIONS = ["http://[::1", "http://xn--/"]


@pytest.fixture(params=BAD_LOCATIONS)
def redirector(request: pytest.FixtureRequest) -> Iterator[str]:
    """An import URL that redirects to something that is not a URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", request.param)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return None

    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{http.server_address[1]}/song.mp3"
    http.shutdown()
    http.server_close()


def test_an_import_redirected_to_a_malformed_url_is_400(api: httpx.Client, redirector: str) -> None:
    response = api.post(IMPORT, json={"urls": [redirector]})
    assert "import URL" in assert_envelope(response, 400)["msg"]


def test_a_chunked_body_over_the_limit_is_413(api: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"audioId": "'
        for _ in range(20):
            yield b"a" * 100_000
        yield b'"}'

    response = api.post(GENERATE, content=chunks(), headers={"content-type": "application/json"})
    assert_envelope(response, 413)


def test_a_json_import_body_is_held_to_the_json_limit(api: httpx.Client) -> None:
    """Uploads may be large; a list of URLs may not (it is parsed in one piece)."""
    urls = [f"https://example.com/{i:07d}.mp3" for i in range(50_000)]  # about 1.6 MB
    response = api.post(IMPORT, json={"urls": urls})
    assert_envelope(response, 413)


def test_none_of_these_leaves_a_traceback(
    server: Server, api: httpx.Client, redirector: str
) -> None:
    before = tracebacks(server)
    api.get("/files/wav/abc/x.wav?expires=%C2%B2&signature=x")
    api.post(
        GENERATE,
        content=b'{"taskId": "\\ud800", "callBackUrl": "https://example.com/cb"}',
        headers={"content-type": "application/json"},
    )
    api.post(IMPORT, json={"urls": [redirector]})
    assert tracebacks(server) == before


def test_a_server_error_is_logged_once(own_server: Server, mp3: Path) -> None:
    own_server.start()
    own_server.break_storage()
    with own_server.client(own_server.create_key()["key"]) as api, mp3.open("rb") as handle:
        response = api.post(IMPORT, files={"file": ("song.mp3", handle)})
    assert_envelope(response, 500)
    request_id = response.headers["x-request-id"]
    errors = [e for e in server_log(own_server) if e["level"] == "ERROR"]
    mine = [e for e in errors if e.get("request_id") == request_id]
    assert len(mine) == 1 and "Traceback" in mine[0]["exc_info"]
    assert [e for e in errors if e["logger"] == "uvicorn.error"] == []
