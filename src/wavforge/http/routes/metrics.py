"""``GET /metrics``: the Prometheus scrape, left out of the API reference.

With ``WAVFORGE_METRICS_TOKEN`` set, a scrape must send ``Authorization: Bearer <token>``;
unset, the endpoint is open, and operators keep it off the public proxy (docs/operations.md).
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import SecretStr

from wavforge.errors import Unauthorized
from wavforge.http.deps import ContextDep
from wavforge.observability.metrics import scrape_registry
from wavforge.observability.queue_depth import QueueDepth

router = APIRouter(include_in_schema=False)

REFUSED = "unauthorized: send 'Authorization: Bearer <metrics token>'"


@router.get("/metrics")
def metrics(request: Request, ctx: ContextDep) -> Response:
    """A plain function: FastAPI runs it in a thread, where the queue-depth query may wait."""
    authorize(ctx.settings.metrics_token, request.headers.get("authorization", ""))
    body = generate_latest(scrape_registry(QueueDepth(ctx.db)))
    return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})


def authorize(token: SecretStr | None, authorization: str) -> None:
    """Refuse a scrape without the token, when there is one; compared in constant time."""
    if token is None:
        return
    scheme, _, presented = authorization.partition(" ")
    expected = token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), expected):
        raise Unauthorized(REFUSED, headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
