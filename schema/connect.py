"""The OAuth connect flow: connect links for end users and the redirect URIs they may come back to."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Optional

import strawberry

from resolvers import connect_flow, redirect_uris
from schema.context import Info
from schema.scalars import RawJSON

CONNECT_INPUTS = Annotated[
    Optional[RawJSON],  # noqa: UP045
    strawberry.argument(
        description='What the provider needs before authorization, e.g. Zendesk {"subdomain": "acme"}.'
    ),
]


@strawberry.type(
    description="Open `url` in the end user's browser (it is bound to the first browser that opens it); "
    "after consent they come back to your redirectUri with connection_id, or with error."
)
class ConnectUrl:
    url: str
    state: str
    expires_at: datetime


@strawberry.type
class ConnectQuery:
    @strawberry.field(description="Where end users may be sent back after connecting (connectUrl's redirectUri).")
    async def redirect_uris(self, info: Info) -> list[str]:
        return await redirect_uris.list_redirect_uris(info.context)


@strawberry.type
class ConnectMutation:
    @strawberry.mutation(
        description="Start the OAuth flow for one end user: a link to open in their browser. "
        "redirectUri must be registered (exact match)."
    )
    async def connect_url(
        self,
        info: Info,
        provider: str,
        external_user_id: str,
        redirect_uri: str,
        inputs: CONNECT_INPUTS = None,
    ) -> ConnectUrl:
        link = await connect_flow.connect_url(info.context, provider, external_user_id, redirect_uri, inputs)
        return ConnectUrl(url=link.url, state=link.state, expires_at=link.expires_at)

    @strawberry.mutation(
        description="Register a redirect URI: absolute https (http only for localhost), no fragment. "
        "Returns every registered URI."
    )
    async def add_redirect_uri(self, info: Info, uri: str) -> list[str]:
        return await redirect_uris.add_redirect_uri(info.context, uri)

    @strawberry.mutation(description="Unregister a redirect URI; links already issued for it stop working.")
    async def remove_redirect_uri(self, info: Info, uri: str) -> list[str]:
        return await redirect_uris.remove_redirect_uri(info.context, uri)

    @strawberry.mutation(description="Replace every registered redirect URI with these.")
    async def set_redirect_uris(self, info: Info, uris: list[str]) -> list[str]:
        return await redirect_uris.set_redirect_uris(info.context, uris)
