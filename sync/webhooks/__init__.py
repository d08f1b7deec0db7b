"""Webhooks both ways: provider deliveries in, verified and applied to the cache (`intake`), and the change
log POSTed out, signed, to the destinations platforms registered (`outbound`).

May import: `sync.storage`, `sync.tenancy`, `sync.cache` and `connectors`; never `sync.worker`, nor
`resolvers`, `schema` or `gateway`.
"""
