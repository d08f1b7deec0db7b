from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry

from connectors.kit.errors import BadInput
from connectors.kit.oauth import OAuthApp
from resolvers import connections as resolve
from resolvers.connections import CredentialsInput as Credentials
from resolvers.ids import parse_connection_id
from resolvers.passthrough import passthrough as run_passthrough
from schema.connection import LinkedAccount
from schema.context import Info
from schema.field_mappings import FieldMappingMutation
from schema.scalars import RawJSON


def _object(value: object, field: str) -> dict[str, Any] | None:
    if value is None or isinstance(value, dict):
        return value
    raise BadInput(f"{field} must be a JSON object", field=field)


@strawberry.input(description="Existing tokens to import: OAuth tokens, or an API key for key-based providers.")
class CredentialsInput:
    access_token: str | None = None
    refresh_token: str | None = None
    expires_at: datetime | None = None
    api_key: str | None = None
    email: str | None = strawberry.field(
        default=None, description="The account's login, for API keys sent with it (Zendesk: {email}/token)."
    )


@strawberry.input
class CreateConnectionInput:
    provider: str = strawberry.field(description='The connector\'s lowercase name, e.g. "hubspot".')
    external_user_id: str
    credentials: CredentialsInput
    base_url: str | None = strawberry.field(default=None, description="Point the connection at another host.")
    sync_interval_seconds: int | None = None
    inputs: RawJSON | None = strawberry.field(
        default=None, description='What the provider needs to find the account, e.g. Zendesk {"subdomain": "acme"}.'
    )


@strawberry.input
class ProviderAppInput:
    provider: str
    client_id: str
    client_secret: str
    authorize_url: str | None = None
    base_url: str | None = None
    webhook_secret: str | None = strawberry.field(
        default=None,
        description="The secret the provider signs webhooks with, where it is not the client secret: Stripe's "
        "endpoint secret (whsec_...) of the platform's Connect webhook endpoint. Write-only.",
    )


@strawberry.type
class ProviderApp:
    provider: str
    client_id: str
    authorize_url: str | None
    base_url: str | None
    has_webhook_secret: bool = strawberry.field(
        description="Whether webhooks are verified with a secret of their own rather than the client secret."
    )


@strawberry.type
class DeletedConnection:
    id: strawberry.ID


@strawberry.input(description="Any request to the connection's provider; xkit adds the credentials.")
class PassthroughInput:
    connection_id: strawberry.ID
    method: str
    path: str = strawberry.field(description="A path on the connection's API host, e.g. /crm/v3/objects/contacts.")
    query: RawJSON | None = strawberry.field(default=None, description="Query parameters: name -> value or list.")
    headers: RawJSON | None = strawberry.field(default=None, description="Extra headers: name -> value.")
    body: RawJSON | None = strawberry.field(default=None, description="A JSON body.")
    body_text: str | None = strawberry.field(default=None, description="A body sent as is (set Content-Type).")


@strawberry.type(description="The provider's answer, as it gave it.")
class PassthroughResponse:
    status: int
    headers: RawJSON
    body: str
    json: RawJSON | None = strawberry.field(description="The body as JSON, when it is JSON.")


@strawberry.type
class Mutation(FieldMappingMutation):
    @strawberry.mutation(description="Create a connection from existing credentials.")
    async def create_connection(self, info: Info, input: CreateConnectionInput) -> LinkedAccount:
        given = input.credentials
        row = await resolve.create_connection(
            info.context,
            provider=input.provider,
            external_user_id=input.external_user_id,
            credentials=Credentials(
                given.access_token, given.refresh_token, given.expires_at, given.api_key, given.email
            ),
            base_url=input.base_url,
            sync_interval_seconds=input.sync_interval_seconds,
            inputs=input.inputs,
        )
        return LinkedAccount.build(row)

    @strawberry.mutation(description="Your own OAuth app at a provider, so the consent screen shows your brand.")
    async def set_provider_app(self, info: Info, input: ProviderAppInput) -> ProviderApp:
        provider = input.provider.strip().lower()
        app = OAuthApp(
            input.client_id,
            input.client_secret,
            input.authorize_url,
            input.base_url,
            webhook_secret=input.webhook_secret,
        )
        await resolve.save_provider_app(info.context, provider, app)
        return ProviderApp(
            provider=provider,
            client_id=app.client_id,
            authorize_url=app.authorize_url,
            base_url=app.base_url,
            has_webhook_secret=app.webhook_secret is not None,
        )

    @strawberry.mutation(description="Delete a connection and everything cached for it.")
    async def delete_connection(self, info: Info, id: strawberry.ID) -> DeletedConnection:
        await resolve.delete_connection(info.context, parse_connection_id(id, field="id"))
        return DeletedConnection(id=id)

    @strawberry.mutation(description="Send any request to the provider with the connection's credentials.")
    async def passthrough(self, info: Info, input: PassthroughInput) -> PassthroughResponse:
        result = await run_passthrough(
            info.context,
            parse_connection_id(input.connection_id),
            method=input.method,
            path=input.path,
            query=_object(input.query, "query"),
            headers=_object(input.headers, "headers"),
            json_body=input.body,
            text_body=input.body_text,
        )
        return PassthroughResponse(
            status=result.status,
            headers=RawJSON(result.headers),
            body=result.text,
            json=RawJSON(result.json_text) if result.json_text is not None else None,
        )

    @strawberry.mutation(description="Run every stream of the connection now instead of at its next interval.")
    async def sync_now(self, info: Info, connection_id: strawberry.ID) -> LinkedAccount:
        return LinkedAccount.build(await resolve.sync_now(info.context, parse_connection_id(connection_id)))
