"""The bottom of the data plane: the database and what every process holds beside it.

Holds the engines (`db`), the owner-only files (`files`), the tables and their column types (`tables`,
`types`), the Alembic migrations (`migrate`, `migrations/`), the `Store` handed to everything above with
what it carries (the change-log wake-ups `bus`, the credential `crypto` vault, the key `revocation`
announcements), and the encoding of the API's opaque ids (`ids`).

May import: nothing else in `sync`, and nothing of `connectors`, `resolvers`, `schema` or `gateway`.
"""
