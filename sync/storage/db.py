"""Engines for the embedded SQLite default and PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from sync.storage.files import private_sqlite_database


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"cannot store {type(value).__name__} as JSON")


def dumps_json(value: Any) -> str:
    return orjson.dumps(value, default=_json_default).decode()


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


# Connections per process, all kept open. Twenty is the cap PostgreSQL's default of 100 connections leaves
# room for with a few processes; a pool of ten plus ten overflow (the cap before) opened and closed an
# overflow connection, a connect and a TLS setup, for every request beyond the tenth.
POOL_SIZE = 20


def create_engine(url: str, *, pool_size: int = POOL_SIZE) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            private_sqlite_database(Path(parsed.database))
        engine = create_async_engine(
            url, json_serializer=dumps_json, json_deserializer=orjson.loads, connect_args={"timeout": 30}
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            # WAL lets the API read while the syncer writes; foreign keys make deletes cascade.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_async_engine(
        url,
        json_serializer=dumps_json,
        json_deserializer=orjson.loads,
        pool_size=pool_size,
        max_overflow=0,
        pool_pre_ping=False,
    )
