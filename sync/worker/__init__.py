"""What runs against providers on a connection's behalf: one run of one stream (`runner`), the worker that
claims due streams and drives the outbound deliveries and the purges (`scheduler`), and the writes a
request makes to a provider with the answer cached in the same request (`writeback`).

May import: every other `sync` package (`storage`, `tenancy`, `cache`, `webhooks`) and `connectors`; never
`resolvers`, `schema` or `gateway`.
"""
