"""The record cache and its change log: the cached records (`records`), the log of every change applied to
them (`changes`), the per-process fan-out to live subscribers (`feed`), the PostgreSQL LISTEN that wakes
other processes (`listen`), and what streams discover from the provider, cached (`discovery`).

May import: `sync.storage` and `connectors` (its declarations and kit); never `sync.tenancy`,
`sync.webhooks`, `sync.worker`, nor `resolvers`, `schema` or `gateway`.
"""
