"""Who owns what: platforms, their API keys, OAuth apps and end users (`platforms`), the connections of
end users with their sealed credentials and stream states (`connections`), the redirect URIs a platform
registered (`redirect_uris`) and the idempotency keys of its writes (`idempotency`).

May import: `sync.storage` and `connectors` (its declarations and kit); never `sync.cache`,
`sync.webhooks`, `sync.worker`, nor `resolvers`, `schema` or `gateway`.
"""
