"""The data plane, in five packages layered bottom-up: `storage` at the bottom; `tenancy` and `cache` on it
(neither uses the other); `webhooks` on those three; `worker` on top. Each package's docstring lists what it
may import. Nothing here imports `resolvers`, `schema` or `gateway`.
"""
