"""Vendor profiles: how one vendor of a dialect family numbers its errors and sets the HTTP
status, so that a client written for that vendor reads wavforge's errors as it reads theirs.

The dialect decides the shape of an answer (``dialects.suno``, ``dialects.unified``); the
profile decides the number in it. sunoapi.org answers "no credits" with 429 and "too
frequent" with 430, kie.ai with 402 and 429: a kie client that receives 429 for an empty
balance tells its user to slow down. A profile belongs to an account or to one of its keys
(the key's wins) and is chosen by name; docs/api.md lists each number with the vendor page it
comes from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from wavforge.errors import (
    InsufficientCredits,
    InvalidRequest,
    Maintenance,
    MalformedBody,
    QuotaExceeded,
    TooFrequent,
    TooLarge,
    WavforgeError,
)

__all__ = ["DEFAULT", "PROFILES", "Profile", "check", "named"]


@dataclass(frozen=True)
class Profile:
    """A vendor's numbering of wavforge's errors."""

    name: str
    vendor: str
    source: str
    """The vendor page the numbering comes from."""
    codes: Mapping[type[WavforgeError], int] = field(default_factory=dict)
    """Codes that differ from the contract's own (``WavforgeError.code``)."""
    errors_as_http_200: bool = False
    """Whether an error travels as HTTP 200 with its code only in the body."""

    def code(self, error: WavforgeError) -> int:
        """The number this vendor gives ``error``: its own where it differs, else the
        contract's."""
        for kind in type(error).__mro__:
            if kind in self.codes:
                return self.codes[kind]
        return error.code

    def http_status(self, code: int) -> int:
        return 200 if self.errors_as_http_200 else code


SUNOAPI = Profile(
    name="sunoapi",
    vendor="sunoapi.org",
    source="https://docs.sunoapi.org/suno-api/convert-to-wav-format",
)
# kie.ai numbers validation 422 and keeps 400 for a body that is not JSON ("Format Error"),
# has no 405 (its 429 is "request limit exceeded") and no 430, and answers its errors with
# HTTP 200 and the code in the body; only an unknown path gets a real HTTP 404.
KIE = Profile(
    name="kie",
    vendor="kie.ai",
    source="https://docs.kie.ai/suno-api/convert-to-wav",
    codes={
        MalformedBody: 400,
        InvalidRequest: 422,
        QuotaExceeded: 429,
        InsufficientCredits: 402,
        TooFrequent: 429,
    },
    errors_as_http_200=True,
)
# vidgo.ai and PoYo serve the same unified API from the same documentation: 402 for credits,
# 429 for any limit, 400 for a value too long ("content_too_long_error"), 503 for a service
# that is down, and the HTTP status equal to the code.
_UNIFIED_FAMILY: Mapping[type[WavforgeError], int] = {
    TooLarge: 400,
    QuotaExceeded: 429,
    InsufficientCredits: 402,
    TooFrequent: 429,
    Maintenance: 503,
}
VIDGO = Profile(
    name="vidgo",
    vendor="vidgo.ai",
    source="https://docs.vidgo.ai/api-manual/error-codes",
    codes=_UNIFIED_FAMILY,
)
POYO = Profile(
    name="poyo",
    vendor="PoYo (poyo.ai)",
    source="https://goseallc.mintlify.app/api-manual/error-codes",
    codes=_UNIFIED_FAMILY,
)

PROFILES: Mapping[str, Profile] = {profile.name: profile for profile in (SUNOAPI, KIE, VIDGO, POYO)}
DEFAULT = SUNOAPI


def named(name: str | None, default: Profile = DEFAULT) -> Profile:
    """The profile stored under ``name``; None (or a name this build no longer has) is
    ``default``, so a request never fails for its profile."""
    return PROFILES.get(name or "", default)


def check(name: str) -> str:
    """``name`` if it is a profile, else a ValueError listing the profiles."""
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of: {', '.join(PROFILES)}")
    return name
