"""Tracks in bulk, through the import API as a client would send them."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

MAX_IMPORT_FILES = 20  # files per POST /api/v1/music/import, the API's own limit


def import_tracks(
    client: httpx.Client,
    audio: Path | bytes,
    count: int,
    *,
    name: str = "t.mp3",
    parallel: int = 1,
) -> list[str]:
    """``count`` distinct tracks of the same audio, 20 files a request, ``parallel`` requests
    at a time; their ids, in order. A refused request raises with the server's answer."""
    data = audio.read_bytes() if isinstance(audio, Path) else audio

    def batch(start: int) -> list[str]:
        size = min(MAX_IMPORT_FILES, count - start)
        files = [("file", (f"{start + i}-{name}", data)) for i in range(size)]
        response = client.post("/api/v1/music/import", files=files)
        if response.status_code != 200 or response.json().get("code") != 200:
            raise AssertionError(f"import refused: {response.status_code} {response.text}")
        return [track["id"] for track in response.json()["data"]["tracks"]]

    with ThreadPoolExecutor(parallel) as pool:
        batches = pool.map(batch, range(0, count, MAX_IMPORT_FILES))
        return [track for ids in batches for track in ids]
