"""Self-authorising download links: HMAC-signed, expiring, checked in constant time.

A link names what it serves (``kind``/``ident``/``filename``) and when it stops working; the
signature covers all of it, so changing any part, or the signature itself, invalidates the link.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from calendar import timegm
from datetime import datetime
from enum import Enum
from urllib.parse import quote, urlencode


class LinkState(Enum):
    VALID = "valid"
    FORGED = "forged"
    EXPIRED = "expired"


class LinkSigner:
    def __init__(self, secret: bytes, base_url: str) -> None:
        self._secret = secret
        self._base_url = base_url.rstrip("/")

    def url(self, kind: str, ident: str, filename: str, expires_at: datetime) -> str:
        expires = timegm(expires_at.timetuple())
        query = urlencode(
            {"expires": expires, "signature": self._sign(kind, ident, filename, expires)}
        )
        return f"{self._base_url}/files/{kind}/{ident}/{quote(filename)}?{query}"

    def check(
        self, kind: str, ident: str, filename: str, expires: str, signature: str, now: datetime
    ) -> LinkState:
        # isdigit() alone takes "²" and other digits int() refuses: ASCII digits only.
        if not (expires.isascii() and expires.isdigit()) or len(expires) > 12:
            return LinkState.FORGED
        expected = self._sign(kind, ident, filename, int(expires))
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            return LinkState.FORGED
        if int(expires) <= timegm(now.timetuple()):
            return LinkState.EXPIRED
        return LinkState.VALID

    def _sign(self, kind: str, ident: str, filename: str, expires: int) -> str:
        message = f"{kind}\n{ident}\n{filename}\n{expires}".encode()
        digest = hmac.new(self._secret, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
