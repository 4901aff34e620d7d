"""What each vendor's clients expect of an error, by vendor profile, with the page it comes from.

``tests/test_profiles.py`` drives every endpoint of both dialects against a running server with
a key of each profile and checks the answers against these rows; ``tests/test_docs.py`` checks
that docs/api.md cites every source named here. A row is (the body's ``code``, the HTTP status).
"""

from __future__ import annotations

from dataclasses import dataclass

SUNOAPI_WAV = "https://docs.sunoapi.org/suno-api/convert-to-wav-format"
SUNOAPI_CREDITS = "https://docs.sunoapi.org/suno-api/get-remaining-credits"
KIE_WAV = "https://docs.kie.ai/suno-api/convert-to-wav"
KIE_CREDITS = "https://docs.kie.ai/common-api/get-account-credits"
KIE_HTTP_200 = "https://apifox.com/apiskills/kie-ai-api/"
VIDGO_ERRORS = "https://docs.vidgo.ai/api-manual/error-codes"
POYO_ERRORS = "https://goseallc.mintlify.app/api-manual/error-codes"

PROFILES = ("sunoapi", "kie", "vidgo", "poyo")


@dataclass(frozen=True)
class Expected:
    code: int
    http: int
    source: str


def _suno(code: int) -> Expected:
    return Expected(code, code, SUNOAPI_WAV)


def _kie(code: int) -> Expected:
    """kie.ai answers its errors with HTTP 200 and the code in the body."""
    return Expected(code, 200, KIE_HTTP_200)


def _unified(code: int, source: str) -> Expected:
    return Expected(code, code, source)


def _unified_family(code: int) -> dict[str, Expected]:
    return {"vidgo": _unified(code, VIDGO_ERRORS), "poyo": _unified(code, POYO_ERRORS)}


# case -> profile -> what the client receives
ERRORS: dict[str, dict[str, Expected]] = {
    "validation": {"sunoapi": _suno(400), "kie": _kie(422), **_unified_family(400)},
    "not_json": {"sunoapi": _suno(400), "kie": _kie(400), **_unified_family(400)},
    "not_found": {"sunoapi": _suno(404), "kie": _kie(404), **_unified_family(404)},
    "conflict": {"sunoapi": _suno(409), "kie": _kie(409), **_unified_family(409)},
    "too_long": {"sunoapi": _suno(413), "kie": _kie(413), **_unified_family(400)},
    "no_credits": {
        "sunoapi": Expected(429, 429, SUNOAPI_CREDITS),
        "kie": Expected(402, 200, KIE_CREDITS),
        **_unified_family(402),
    },
    "too_frequent": {"sunoapi": _suno(430), "kie": _kie(429), **_unified_family(429)},
    "maintenance": {"sunoapi": _suno(455), "kie": _kie(455), **_unified_family(503)},
}

# The unified dialect's ``error.type`` for each case (the vendors' error-codes page).
UNIFIED_TYPES = {
    "validation": "validation_error",
    "not_json": "validation_error",
    "not_found": "resource_not_found_error",
    "conflict": "conflict_error",
    "too_long": "content_too_long_error",
    "no_credits": "insufficient_credits_error",
    "too_frequent": "rate_limit_error",
    "maintenance": "service_error",
}

SOURCES = sorted(
    {row.source for rows in ERRORS.values() for row in rows.values()} | {SUNOAPI_WAV, KIE_WAV}
)
