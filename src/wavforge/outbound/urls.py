"""Rules for URLs wavforge will call. The address guard against internal networks arrives
with signed webhooks; until then only the URL's shape is checked."""

from __future__ import annotations

from urllib.parse import urlsplit

from wavforge.errors import InvalidRequest, TooLarge

MAX_URL_LENGTH = 2048
SCHEMES = ("http", "https")


def check_url(url: str, *, what: str) -> str:
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
    return url
