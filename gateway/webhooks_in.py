"""`POST /webhooks/{provider}`: a provider's webhook, its body bounded, handed to the intake."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from connectors.kit.errors import BadInput, NotFound, ProviderError, XkitError
from connectors.kit.webhooks import WebhookMalformed, WebhookRejected, WebhookRequest
from gateway.bodies import BodyTooLarge, read_body
from gateway.errors import error_response
from gateway.runtime import Runtime
from sync.webhooks.intake import receive

log = logging.getLogger("xkit")


async def provider_webhook(request: Request) -> Response:
    """`POST /webhooks/{provider}`: 401 for a bad signature or a stale timestamp (nothing changes), 404 for a
    provider without webhooks, 200 once the changed records are in the cache, 503 when the provider could
    not be read (the provider retries; polling catches up meanwhile)."""
    runtime: Runtime = request.app.state.runtime
    try:
        body = await read_body(request, runtime.settings.webhook_max_bytes)
    except BodyTooLarge as too_large:
        return error_response(413, too_large)
    except BadInput as malformed:
        return error_response(400, malformed)
    headers = {k.lower(): v for k, v in request.headers.items()}
    query = f"?{request.url.query}" if request.url.query else ""
    # Signed over the URL the provider was given: as it reached us, or behind a proxy the public one.
    public = f"{runtime.settings.resolved_public_url}{request.url.path}{query}"
    webhook = WebhookRequest(request.method, str(request.url), headers, body)
    try:
        result = await receive(
            runtime.store,
            runtime.kit,
            runtime.services.discoveries,
            request.path_params["provider"],
            webhook,
            also_addressed_as=[public],
        )
    except WebhookRejected as rejected:
        return error_response(401, rejected)
    except NotFound as missing:
        return error_response(404, missing)
    except WebhookMalformed as malformed:
        return error_response(400, malformed)
    except ProviderError as failed:
        log.warning("webhook from %s: %s", request.path_params["provider"], failed.message)
        return error_response(503, failed)
    except XkitError as refused:
        return error_response(400, refused)
    return JSONResponse(
        {"events": result.events, "fetched": result.fetched, "deleted": result.deleted, "replay": result.replay}
    )
