"""Every request wavforge itself makes: callback POSTs and import downloads, and the rules
for the URLs they go to. This package is the door: callers import from ``wavforge.outbound``,
not from its modules.

httpx errors are translated here and nowhere else.
"""

from wavforge.outbound.fetch import download
from wavforge.outbound.post import Attempt, post_json, sent_headers
from wavforge.outbound.signing import canonical_body, signature_headers
from wavforge.outbound.urls import check_url, needs_dns

__all__ = [
    "Attempt",
    "canonical_body",
    "check_url",
    "download",
    "needs_dns",
    "post_json",
    "sent_headers",
    "signature_headers",
]
